"""`dds data get`'s body reader against a real HTTP/1.1 server on loopback.

The object's bytes are read from the socket with ``recv_into`` (cli.get._body); these
tests check that the fast path is the one taken with the installed httpx/httpcore (an
upgrade that changes what it relies on falls back, and this test says so), that the
bytes are exact, that a short body is a transport error (the partial file is kept for a
resume), and that verification still refuses a wrong checksum or a damaged segment.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

import c4gh
from cli import get as cli_get
from cli.errors import CliError
from cli.get import Downloader, Item


class _Server:
    """Serves ``body`` at any path; ``cut`` bytes short (then closes) when set;
    ``chunked`` answers without a Content-Length; honours ``Range: bytes=N-``."""

    def __init__(self) -> None:
        self.body = b""
        self.cut = 0
        self.chunked = False
        self.ranges: list[str] = []
        self.peers: list[int] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                pass

            def do_GET(self) -> None:  # http.server's name
                body, status = outer.body, 200
                outer.peers.append(self.client_address[1])
                rng = self.headers.get("Range")
                if rng:
                    outer.ranges.append(rng)
                    start = int(rng.split("=")[1].rstrip("-"))
                    body, status = body[start:], 206
                self.send_response(status)
                if outer.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for i in range(0, len(body), 300_000):
                        piece = body[i:i + 300_000]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.write(b"0\r\n\r\n")
                    return
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[:len(body) - outer.cut])
                if outer.cut:
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/obj"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.close()


class _Bars:
    def advance(self, *_a: Any) -> None:
        pass

    def file(self, *_a: Any) -> None:
        return None

    def finish(self, *_a: Any) -> None:
        pass


def _stored(plain: bytes) -> tuple[Downloader, Item, bytes]:
    """A downloader (no API: the URL never expires here) and the item of ``plain``."""
    d = Downloader(None, "P", Path("."), threads=1, bars_factory=None,  # type: ignore[arg-type]
                   summary=None, break_on_fail=False)  # type: ignore[arg-type]
    whole, _ = c4gh.encrypt_bytes(plain, [d.pk], compress=False)
    hlen = c4gh.header_length(whole)
    item = Item("dir/f.bin", whole[:hlen], hashlib.sha256(plain).hexdigest(), len(plain),
                len(whole) - hlen, False, "")
    return d, item, whole[hlen:]


def test_the_body_comes_from_the_socket_and_is_exact(server: _Server,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    server.body = os.urandom(3 * cli_get.RECV + 12345)
    with httpx.Client() as http:
        with http.stream("GET", server.url) as r:
            assert cli_get._direct_socket(r) is not None, \
                "httpx/httpcore changed: the body is no longer read from the socket"
            pieces = [bytes(p) for p in cli_get._body(r, 5)]
    assert b"".join(pieces) == server.body
    # after the parser's first chunk, every chunk ends on a segment boundary of the body
    pos = len(pieces[0])
    for p in pieces[1:-1]:
        pos += len(p)
        assert pos % c4gh.CIPHER_SEGMENT_SIZE == 0


def test_small_bodies_keep_the_connection(server: _Server) -> None:
    server.body = os.urandom(cli_get.RECV)
    with httpx.Client() as http:
        for _ in range(3):
            with http.stream("GET", server.url) as r:
                assert b"".join(bytes(p) for p in cli_get._body(r, 5)) == server.body
    assert len(set(server.peers)) == 1


def test_a_chunked_body_falls_back_to_httpx(server: _Server) -> None:
    server.body, server.chunked = os.urandom(1_000_000), True
    with httpx.Client() as http, http.stream("GET", server.url) as r:
        assert cli_get._direct_socket(r) is None
        assert b"".join(bytes(p) for p in cli_get._body(r, 5)) == server.body


def test_a_short_body_is_a_transport_error(server: _Server) -> None:
    server.body, server.cut = os.urandom(2 * cli_get.RECV), 1000
    with httpx.Client() as http, http.stream("GET", server.url) as r:
        with pytest.raises(httpx.RemoteProtocolError, match="closed the connection"):
            for _ in cli_get._body(r, 5):
                pass


def test_get_verifies_and_renames(server: _Server, tmp_path: Path) -> None:
    plain = os.urandom(5 * c4gh.SEGMENT_SIZE + 77)
    d, item, server.body = _stored(plain)
    item.url, d.dest = server.url, tmp_path
    assert d.get(item, _Bars()) is None  # type: ignore[arg-type]
    assert (tmp_path / "dir" / "f.bin").read_bytes() == plain


def test_a_wrong_checksum_fails_the_get(server: _Server, tmp_path: Path) -> None:
    plain = os.urandom(3 * c4gh.SEGMENT_SIZE)
    d, item, server.body = _stored(plain)
    item.url, d.dest = server.url, tmp_path
    item.checksum = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(CliError, match="ChecksumMismatchError"):
        d.get(item, _Bars())  # type: ignore[arg-type]
    assert list((tmp_path / "dir").iterdir()) == []  # neither the file nor a partial


def test_a_damaged_segment_fails_the_get(server: _Server, tmp_path: Path) -> None:
    plain = os.urandom(3 * c4gh.SEGMENT_SIZE)
    d, item, body = _stored(plain)
    damaged = bytearray(body)
    damaged[c4gh.CIPHER_SEGMENT_SIZE + 100] ^= 1
    server.body, item.url, d.dest = bytes(damaged), server.url, tmp_path
    with pytest.raises(CliError, match="SegmentAuthError"):
        d.get(item, _Bars())  # type: ignore[arg-type]
    assert list((tmp_path / "dir").iterdir()) == []


def test_a_cut_download_keeps_its_partial_and_resumes(server: _Server,
                                                      tmp_path: Path) -> None:
    plain = os.urandom(200 * c4gh.SEGMENT_SIZE + 5)
    d, item, server.body = _stored(plain)
    item.url, d.dest = server.url, tmp_path
    server.cut = 70 * c4gh.CIPHER_SEGMENT_SIZE + 10
    with pytest.raises(CliError, match="network error"):
        d.get(item, _Bars())  # type: ignore[arg-type]
    partial = tmp_path / "dir" / ".f.bin.dds-partial"
    kept = partial.stat().st_size
    assert kept >= c4gh.SEGMENT_SIZE and not (tmp_path / "dir" / "f.bin").exists()
    server.cut = 0
    assert d.get(item, _Bars()) is None  # type: ignore[arg-type]
    assert (tmp_path / "dir" / "f.bin").read_bytes() == plain
    want = kept - kept % c4gh.SEGMENT_SIZE
    assert server.ranges == [f"bytes={want // c4gh.SEGMENT_SIZE * c4gh.CIPHER_SEGMENT_SIZE}-"]
