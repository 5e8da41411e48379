"""`dds data get`: ephemeral key → headers re-encrypted by the server → streamed decrypt.

The project's private key never leaves the server: this run makes a throw-away X25519 key
pair and the server re-addresses each file's Crypt4GH header to it. Each object then
streams through decrypt → decompress → SHA-256 into a hidden ``.NAME.dds-partial`` file
next to the destination, renamed into place only when the checksum matches (hashed once,
by the engine, as the plaintext is written; segments are authenticated into recycled
buffers). The body of a plain HTTP/1.1 answer with a Content-Length is received with
``recv_into`` straight into one reused buffer (:func:`_body`): through httpx/h11 the
same 1 GiB cost 0.86-0.92 CPU-s to receive, read this way 0.21-0.23. A network
failure keeps the partial file so the next run continues with a Range request; a
verification failure deletes it, so nothing unverified is ever left under the real name.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import os
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.progress import TaskID

import c4gh
from cli import config
from cli.client import Api
from cli.errors import Cancelled, CliError
from cli.transfer import Bars, Summary, run_files, storage_client

BATCH = 1000
READ = 1024 * 1024
#: Ciphertext received per buffer fill: whole segments (~4.2 MB), so the engine slices
#: segments out of it without re-assembling any (only the first, after what the HTTP
#: parser already held, may straddle two reads).
RECV = 64 * c4gh.CIPHER_SEGMENT_SIZE
PARTIAL = ".dds-partial"
Bytes = bytes | bytearray | memoryview


@dataclass
class Item:
    path: str
    header: bytes
    checksum: str
    size_original: int
    size_stored: int
    compressed: bool
    url: str


def _items(got: dict[str, Any]) -> list[Item]:
    return [Item(f["path"], base64.b64decode(f["header"]), f["checksum"].lower(),
                 f["size_original"], f["size_stored"], f["compressed"], f["url"])
            for f in got["files"]]


class Downloader:
    def __init__(self, api: Api, project: str, destination: Path, *, threads: int,
                 bars_factory: Callable[[int], Bars], summary: Summary, break_on_fail: bool,
                 keep_encrypted: bool = False, recipient_pk: bytes | None = None) -> None:
        self.api, self.project, self.dest = api, project, destination
        self.threads, self.bars_factory = threads, bars_factory
        self.summary, self.break_on_fail = summary, break_on_fail
        self.keep_encrypted, self.recipient_pk = keep_encrypted, recipient_pk
        # Ephemeral: lives only in this process; the server re-encrypts headers to it.
        self.sk, self.pk = c4gh.generate_keypair()
        self.http = storage_client(threads)
        self.cancel = threading.Event()
        self.path = f"projects/{project}/files/download"

    def _request(self, **body: Any) -> dict[str, Any]:
        got: dict[str, Any] = self.api.post(
            self.path, {"public_key": base64.b64encode(self.pk).decode(), **body})
        return got

    # ---------------------------------------------------------------- what to fetch

    def resolve(self, sources: list[str] | None) -> list[Item]:
        """Items for the given paths (files or folders), or everything when ``None``."""
        if sources is None:
            return self._folder("")
        items: list[Item] = []
        wanted = [s.strip("/") for s in sources]
        missing: list[str] = []
        for i in range(0, len(wanted), BATCH):
            got = self._request(paths=wanted[i:i + BATCH])
            items += _items(got)
            missing += got["missing"]
        for name in missing:  # not a file: perhaps a folder
            try:
                found = self._folder(name)
            except CliError as exc:
                self.summary.fail(name, exc.message, status=exc.status)
                continue
            if not found:
                self.summary.fail(name, "no such file or folder in the project (see `dds "
                                  f"data ls -p {self.project}`)", unusable=True)
            items += found
        unique = {it.path: it for it in items}
        return [unique[p] for p in sorted(unique)]

    def _folder(self, folder: str) -> list[Item]:
        items: list[Item] = []
        after = ""
        while True:
            got = self._request(folder=folder, after=after)
            items += _items(got)
            if not got.get("next"):
                return items
            after = got["next"]

    def _fresh_url(self, item: Item) -> str:
        got = self._request(paths=[item.path])
        if not got["files"]:
            raise CliError("the file was removed from the project meanwhile")
        fresh = _items(got)[0]
        item.header, item.url = fresh.header, fresh.url
        return item.url

    # ---------------------------------------------------------------- one file

    def target(self, item: Item) -> Path:
        target = self.dest.joinpath(*item.path.split("/"))
        if self.keep_encrypted:
            # A compressed file's segments hold a zstd stream: the suffix tells the reader
            # that `crypt4gh decrypt` gives .zst bytes (then `zstd -d`).
            target = target.with_name(target.name + (".zst" if item.compressed else "")
                                      + ".c4gh")
        # Server paths are normalised already; this guards the disk against a bad server.
        if not target.resolve().is_relative_to(self.dest.resolve()):
            raise CliError("refusing a path outside the destination")
        return target

    def get(self, item: Item, bars: Bars) -> str | None:
        """Fetch one file; returns a reason when it was skipped."""
        if self.cancel.is_set():
            raise Cancelled()
        target = self.target(item)
        if target.exists():
            if not self.keep_encrypted and target.stat().st_size == item.size_original \
                    and _sha256_file(target) == item.checksum:
                bars.advance(None, item.size_original)
                return "already downloaded (checksum matches)"
            raise CliError(f"{target} exists with other content; remove it or choose "
                           "another --destination")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CliError(f"cannot create {target.parent}: {exc.strerror or exc}")
        partial = target.with_name("." + target.name + PARTIAL)
        task = bars.file(item.path, item.size_original)
        try:
            keys = c4gh.parse_header(item.header, self.sk).session_keys
            if self.keep_encrypted:
                self._get_encrypted(item, keys, partial, bars, task)
            else:
                self._get_plain(item, keys, partial, bars, task)
            os.replace(partial, target)
        except c4gh.C4GHError as exc:
            partial.unlink(missing_ok=True)
            raise CliError(f"failed verification ({type(exc).__name__}: {exc}); nothing was "
                           "written. The stored copy is damaged or was tampered with: "
                           "tell the unit")
        except OSError as exc:
            partial.unlink(missing_ok=True)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise CliError(f"the destination disk is full ({target.parent}); free space "
                               "and run again")
            raise CliError(f"cannot write {target}: {exc.strerror or exc}")
        except httpx.TransportError as exc:
            raise CliError(f"network error ({exc}); run the same command again to resume")
        except Cancelled:
            if self.break_on_fail and self.summary.failed:
                # Stopped because another file failed (--break-on-fail), not by the user:
                # nothing half-done stays behind.
                partial.unlink(missing_ok=True)
                raise CliError("stopped after an earlier failure (--break-on-fail); "
                               "nothing was kept") from None
            raise  # Ctrl-C: the partial file is kept so that a rerun resumes it
        finally:
            bars.finish(task)
        return None

    def _open(self, item: Item, offset: int) -> httpx.Response:
        """A streaming GET of the object from ``offset``; refreshes an expired URL once."""
        # identity: the raw body is the object's bytes (read without re-chunking below)
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        for attempt in range(2):
            request = self.http.build_request("GET", item.url, headers=headers)
            r = self.http.send(request, stream=True)
            if r.status_code in (200, 206):
                return r
            body = r.read()[:200].decode(errors="replace")
            r.close()
            if r.status_code == 403 and attempt == 0:
                self._fresh_url(item)  # presigned URLs last an hour at most
                continue
            raise CliError(f"storage answered HTTP {r.status_code}: {body.strip()}")
        raise AssertionError("unreachable")

    def _chunks(self, response: httpx.Response, bars: Bars | None = None,
                task: TaskID | None = None, shown: list[int] | None = None,
                ) -> Iterator[Bytes]:
        # Each item is valid until the next one is asked for (the engine copies what it
        # keeps of a chunk: at most one partial segment).
        try:
            for chunk in _body(response, self.http.timeout.read):
                if self.cancel.is_set():
                    raise Cancelled()
                if bars is not None and shown is not None:  # ~ its plaintext; corrected at the end
                    n = len(chunk) * c4gh.SEGMENT_SIZE // c4gh.CIPHER_SEGMENT_SIZE
                    bars.advance(task, n)
                    shown[0] += n
                yield chunk
        finally:
            response.close()

    def _get_plain(self, item: Item, keys: list[bytes], partial: Path, bars: Bars,
                   task: TaskID | None) -> None:
        sha = hashlib.sha256()
        kept = 0
        if partial.exists() and not item.compressed:
            # Uncompressed data maps segment for segment: plaintext segment k starts at
            # ciphertext byte k * 65 564, so the download continues at a segment boundary.
            # (A zstd stream cannot restart mid-way: a compressed file starts over.)
            kept = min(partial.stat().st_size, item.size_original)
            kept -= kept % c4gh.SEGMENT_SIZE
        offset = kept // c4gh.SEGMENT_SIZE * c4gh.CIPHER_SEGMENT_SIZE
        response = self._open(item, offset) if item.size_stored else None
        if offset and response is not None and response.status_code != 206:
            kept = offset = 0  # storage ignored the range: take the whole object
        mode = "r+b" if kept else "wb"
        with open(partial, mode if partial.exists() else "wb") as out:
            if kept:
                out.truncate(kept)
                for block in iter(lambda: out.read(READ), b""):
                    sha.update(block)
                bars.advance(task, kept)
            dec = c4gh.Decryptor(keys, compressed=item.compressed,
                                 expected_sha256=item.checksum,
                                 expected_size=item.size_original - kept,
                                 expected_stored_size=item.size_stored - offset)
            shown = [0]
            chunks: Iterator[Bytes] = (self._chunks(response, bars, task, shown)
                                       if response is not None else iter(()))
            out.flush()
            # Hashes (continuing over the kept prefix), writes with two pwrite threads (new
            # file pages cost the kernel more than decrypting them) and checks the SHA-256.
            dec.run(chunks, fd=out.fileno(), offset=kept, sha=sha)
            bars.advance(task, item.size_original - kept - shown[0])

    def _get_encrypted(self, item: Item, keys: list[bytes], partial: Path, bars: Bars,
                       task: TaskID | None) -> None:
        """A standard .c4gh file (header + segments), verified by decrypting on the way."""
        recipient = self.recipient_pk
        assert recipient is not None  # --keep-encrypted always has one (cli.commands.data)
        header = c4gh.reencrypt_header(item.header, self.sk, [recipient])
        dec = c4gh.Decryptor(keys, compressed=item.compressed,
                             expected_sha256=item.checksum, expected_size=item.size_original,
                             expected_stored_size=item.size_stored)
        response = self._open(item, 0) if item.size_stored else None
        with open(partial, "wb") as out:
            out.write(header)

            def tee() -> Iterator[Bytes]:
                for chunk in (self._chunks(response) if response is not None else ()):
                    out.write(chunk)
                    bars.advance(task, len(chunk))
                    yield chunk

            dec.run(tee(), lambda _piece: None)  # plaintext discarded: only the checks

    # ---------------------------------------------------------------- all files

    def run(self, items: list[Item]) -> None:
        total = sum(it.size_original for it in items)
        with self.bars_factory(total) as bars:
            try:
                run_files(items, lambda it: self.get(it, bars), lambda it: it.path,
                          threads=self.threads, summary=self.summary, cancel=self.cancel,
                          break_on_fail=self.break_on_fail)
            finally:
                self.http.close()


def _direct_socket(response: httpx.Response) -> tuple[socket.socket, int] | None:
    """The connection's socket and the body's length, when the body can be read from the
    socket directly: HTTP/1.1, identity, a Content-Length, plain TCP or TLS on that socket
    (not TLS inside a TLS proxy tunnel, whose socket carries the proxy's records)."""
    headers = response.headers
    if response.http_version != "HTTP/1.1" \
            or headers.get("Content-Encoding", "identity") not in ("identity", "") \
            or "Transfer-Encoding" in headers:
        return None
    length = headers.get("Content-Length", "")
    stream = response.extensions.get("network_stream")
    if not length.isdigit() or stream is None:
        return None
    sock = stream.get_extra_info("socket")
    if not isinstance(sock, socket.socket) or (
            stream.get_extra_info("ssl_object") is not None
            and not isinstance(sock, ssl.SSLSocket)):
        return None
    return sock, int(length)


def _body(response: httpx.Response, timeout: float | None) -> Iterator[Bytes]:
    """The raw body: views of one reused buffer filled with ``recv_into`` when
    :func:`_direct_socket` allows it, else httpx's chunks (decoded if storage encoded them).

    Read directly (bodies over ``RECV``), the bytes bypass the HTTP parser, so the
    connection is not reused:
    closing the response then closes it (httpcore sees a message it did not finish).
    The parser's own buffer (the body's first bytes, read with the headers) comes first,
    through ``iter_raw``. Errors are httpx's: a short body is ``RemoteProtocolError``,
    a socket error or time-out ``ReadError`` / ``ReadTimeout`` (transport errors: the
    partial file is kept for a resume).
    """
    direct = _direct_socket(response)
    if direct is None or direct[1] <= RECV:
        # Small bodies through the parser: the connection then stays reusable (a body read
        # past h11 closes it), and their copies cost nothing worth a new connection.
        encoded = response.headers.get("Content-Encoding", "identity") not in ("identity", "")
        yield from (response.iter_bytes() if encoded else response.iter_raw())
        return
    sock, length = direct
    # What h11 holds already (or one read). The generator stays referenced until the
    # end: closing it (as garbage) would close the response, and the socket with it.
    raw = response.iter_raw()
    first = next(raw, b"") if length else b""
    got = len(first)
    if first:
        yield first
    if got >= length:
        return
    buf = bytearray(RECV)
    view = memoryview(buf)
    try:
        sock.settimeout(timeout)
        while got < length:
            # up to a segment boundary of the body: whole segments in every later chunk
            want = min(length - got, RECV - got % c4gh.CIPHER_SEGMENT_SIZE)
            filled = 0
            while filled < want:
                n = sock.recv_into(view[filled:want])
                if not n:
                    raise httpx.RemoteProtocolError(
                        f"storage closed the connection after {got + filled} of {length} "
                        "bytes")
                filled += n
            got += filled
            yield view[:filled]
    except TimeoutError as exc:
        raise httpx.ReadTimeout(f"no data from storage for {timeout} s") from exc
    except OSError as exc:  # ssl.SSLError included
        raise httpx.ReadError(str(exc) or type(exc).__name__) from exc
    finally:
        close = getattr(raw, "close", None)  # a generator (typed as an iterator)
        if close is not None:
            close()


def _sha256_file(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def local_keypair() -> tuple[Path, bytes]:
    """This user's own Crypt4GH key pair for --keep-encrypted (made once, 0600)."""
    directory = config.config_dir() / "keys"
    sec, pub = directory / "dds.sec", directory / "dds.pub"
    if not pub.exists() or config.read_private(sec) is None:
        sk, pk = c4gh.generate_keypair()
        config.write_private(sec, c4gh.export_private_key(sk, None, "dds keep-encrypted"))
        pub.write_bytes(c4gh.export_public_key(pk))
    return sec, c4gh.load_public_key(pub.read_bytes())
