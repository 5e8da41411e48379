"""A part damaged on its way to storage (S3's ``400 BadDigest``): `dds data put` sends it
again from its buffer, a bounded number of times, then fails the file clearly.

The storage here is a real HTTP server on a real socket that does what S3 and the local
store do with a checksummed part (compare the body's CRC32 with the signed
``x-amz-checksum-crc32``); the "network" in between damages the first ``damaged``
bodies it carries by flipping one byte."""

from __future__ import annotations

import os
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cli import put as cli_put
from cli.errors import CliError
from cli.transfer import storage_client


class _Storage:
    def __init__(self, damaged: int) -> None:
        self.damaged = damaged
        self.seen: list[tuple[str, bool]] = []  # (header, body matched it)
        self.lock = threading.Lock()
        storage = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_PUT(self) -> None:
                body = bytearray(self.rfile.read(int(self.headers["Content-Length"])))
                with storage.lock:
                    if storage.damaged > 0:
                        storage.damaged -= 1
                        body[len(body) // 2] ^= 0x01
                    claimed = self.headers.get("x-amz-checksum-crc32", "")
                    ok = claimed == cli_put.crc32_b64(bytes(body))
                    storage.seen.append((claimed, ok))
                if ok:
                    self.send_response(200)
                    self.send_header("ETag", f'"{zlib.crc32(body):08x}"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                answer = (b"<Error><Code>BadDigest</Code><Message>The CRC32 you specified "
                          b"did not match the calculated checksum.</Message></Error>")
                self.send_response(400)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/bucket/key?signed"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def uploader() -> Iterator[cli_put.Uploader]:
    up = cli_put.Uploader.__new__(cli_put.Uploader)  # only what _put_part uses
    up.cancel = threading.Event()
    up.http = storage_client(1)
    yield up
    up.http.close()


def _store(damaged: int) -> Iterator[_Storage]:
    s = _Storage(damaged)
    yield s
    s.close()


@pytest.fixture
def once_damaged() -> Iterator[_Storage]:
    yield from _store(1)


@pytest.fixture
def always_damaged() -> Iterator[_Storage]:
    yield from _store(10 ** 6)


def test_a_damaged_part_is_sent_again_and_stored(uploader, once_damaged) -> None:
    part = os.urandom(3 * 1024 * 1024 + 17)
    crcs: dict[int, str] = {}
    etag = uploader._put_part(cli_put._FixedUrl(once_damaged.url), 4, part,
                              checksum=True, crcs=crcs)
    want = cli_put.crc32_b64(part)
    # the first body arrived damaged and was refused; the second, the same bytes, matched
    assert once_damaged.seen == [(want, False), (want, True)]
    assert etag == f"{zlib.crc32(part):08x}"
    assert crcs == {4: want}  # the complete names the CRC32 storage verified


def test_a_part_damaged_every_time_fails_the_file_clearly(uploader, always_damaged) -> None:
    part = os.urandom(1024 * 1024)
    crcs: dict[int, str] = {}
    with pytest.raises(CliError) as exc:
        uploader._put_part(cli_put._FixedUrl(always_damaged.url), 1, part,
                           checksum=True, crcs=crcs)
    assert len(always_damaged.seen) == cli_put.PART_ATTEMPTS  # bounded
    assert not any(ok for _, ok in always_damaged.seen)
    assert "arrived damaged" in exc.value.message and "BadDigest" in exc.value.message
    assert exc.value.status == 400
    assert crcs == {}
