"""Downloads in the browser: decrypted on the server while streaming, verified at the end.

The portal cannot run Crypt4GH in the browser, so the server decrypts, but it uses the
same path as the CLI: ``transfers.services.downloads.files_download_prepare`` re-encrypts the
stored headers to a one-off X25519 key made here for this response (so the project
private key is never handed around, the permission and status rules are the API's, the
download time is recorded and audited), then the segments are read from storage in
chunks, decrypted and decompressed, and sent on. Memory stays constant whatever the size.

Integrity: ``c4gh.Decryptor`` checks every segment and, at the end, the size and
SHA-256 of the original. The last piece of plaintext is held back until that check
passes, so a tampered, truncated or reordered object never reaches the client as a
complete download: the generator raises, the server cuts the connection, and the
browser reports a failed transfer (Content-Length is announced for single files; a zip
is left without its central directory).

The user is told, too: a damaged file is noted in their session, and the project page
(where the browser leaves them) explains it and names the facility to tell. If the damage
shows before the first byte (a small file), the answer is that explanation itself (502:
what storage returned is not what was uploaded), never a generic error.
"""

from __future__ import annotations

import io
import itertools
import logging
import socket
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.http import content_disposition_header

import c4gh
from accounts.models import User
from core import metrics
from projects.models import Project
from transfers.errors import NotFound, StorageUnavailable
from transfers.paths import path_normalise
from transfers.services.downloads import DownloadItem, files_download_prepare
from transfers.storage import LocalBackend, StorageBackend, storage_for_project

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

log = logging.getLogger(__name__)

READ_CHUNK = 16 * c4gh.CIPHER_SEGMENT_SIZE  # ~1 MiB of ciphertext per read
# Files per files_download_prepare call while zipping: small enough that the presigned
# URLs of a batch (valid at most an hour) are used well before they expire.
ZIP_BATCH = 100
#: Session key: {project id: [paths]} of downloads that failed verification, shown (once)
#: on the project page.
DAMAGED_SESSION_KEY = "portal_damaged_files"
#: Status when the damage shows before the response starts: storage (upstream) returned
#: data that is not what was uploaded.
DAMAGED_STATUS = 502


@dataclass
class Item:
    """A file to stream, as files_download_prepare gave it; its header is addressed to
    ``reader_sk`` only."""

    file: DownloadItem
    reader_sk: bytes


@dataclass
class _Reading:
    """Which file a response is decrypting now: the one to name if it proves damaged."""

    path: str = ""


def _prepare(*, project: Project, user: User, kek: bytes, ip: str | None,
             paths: Sequence[str] | None = None, folder: str | None = None, after: str = "",
             limit: int = ZIP_BATCH) -> tuple[list[Item], str | None]:
    sk, pk = c4gh.generate_keypair()
    out = files_download_prepare(project=project, user=user, kek=kek, recipient_public_key=pk,
                                 paths=paths, folder=folder, after=after, limit=limit, ip=ip)
    return [Item(f, sk) for f in out["files"]], out["next"]


def object_chunks(backend: StorageBackend, bucket: str, item: Item) -> Iterator[bytes]:
    """The stored object's bytes in chunks: straight from disk for the local backend,
    over the presigned GET URL for S3 (the server's credentials stay in boto3)."""
    f = item.file
    if isinstance(backend, LocalBackend):
        if f["size_stored"] == 0:
            return
        try:
            yield from backend.iter_range(bucket, f["object_key"], 0, f["size_stored"] - 1,
                                          chunk=READ_CHUNK)
        except OSError as exc:
            raise StorageUnavailable(f"Local storage failed ({exc.strerror}).")
        return
    try:
        with httpx.stream("GET", f["url"], timeout=httpx.Timeout(60, connect=5)) as r:
            if r.status_code != 200:
                raise StorageUnavailable(f"Object storage answered {r.status_code}.")
            yield from r.iter_bytes(READ_CHUNK)
    except httpx.HTTPError as exc:
        raise StorageUnavailable(f"Object storage is unreachable ({type(exc).__name__}).")


def _as_bytes(piece: bytes | bytearray | memoryview) -> bytes:
    # The decryptor hands out bytes; a response body must be bytes (Django would render
    # a bytearray as its repr), so anything else is copied.
    return piece if isinstance(piece, bytes) else bytes(piece)


def plaintext(item: Item, chunks: Iterator[bytes], reading: _Reading) -> Iterator[bytes]:
    """Decrypted (and decompressed) bytes of one file; raises if any check fails.

    One piece is always held back until ``finish()`` has verified size and SHA-256, so
    the stream can only end complete if the file is exactly the one uploaded.
    """
    f = item.file
    dec = c4gh.Decryptor(header=f["header"], reader_sk=item.reader_sk,
                         compressed=f["compressed"], expected_sha256=f["checksum"],
                         expected_size=f["size_original"],
                         expected_stored_size=f["size_stored"])
    reading.path = f["path"]
    held = b""
    try:
        for chunk in chunks:
            for piece in dec.feed(chunk):
                if piece:
                    if held:
                        yield held
                    held = _as_bytes(piece)
        tail = [_as_bytes(p) for p in dec.finish() if p]
    except c4gh.C4GHError as exc:
        log.warning("download aborted: %s failed verification: %s", f["path"],
                    type(exc).__name__)
        raise
    if held:
        yield held
    yield from tail


def _check_stored(backend: StorageBackend, bucket: str, item: Item) -> None:
    # Before the response starts, a missing object is still a clean error page.
    if backend.head_size(bucket, item.file["object_key"]) is None:
        raise StorageUnavailable(f"The stored data of {item.file['path']} cannot be read; "
                                 "try again later or contact the facility.")


# --------------------------------------------------------------------------- damage


def damaged_note(request: HttpRequest | None, project: Project, path: str) -> None:
    """Remember in the user's session that ``path`` failed verification (the response
    is already streaming, so the session is saved here, not by its middleware)."""
    metrics.transfer_failed(direction="download", reason="damaged")
    if request is None or not hasattr(request, "session"):
        return
    try:
        notes = dict(request.session.get(DAMAGED_SESSION_KEY) or {})
        paths = notes.get(project.public_id, [])
        if path not in paths:
            notes[project.public_id] = (paths + [path])[-20:]
        request.session[DAMAGED_SESSION_KEY] = notes
        request.session.save()
    except Exception:
        log.exception("could not note the damaged download of %s", path)


def damaged_notes_pop(request: HttpRequest, project: Project) -> list[str]:
    """Paths of ``project`` whose download failed verification since the page was last
    shown (each is shown once)."""
    notes = dict(request.session.get(DAMAGED_SESSION_KEY) or {})
    paths = notes.pop(project.public_id, [])
    if paths:
        request.session[DAMAGED_SESSION_KEY] = notes
    return paths


def _drop_connection(request: HttpRequest | None) -> None:
    """Close the client's connection at once, so that a cut download cannot look finished
    and the browser does not wait for the announced rest. gunicorn closes it after the
    error anyway; Django's development server (``make run``) would keep it open."""
    if request is None:
        return
    environ = request.META
    sock = environ.get("gunicorn.socket")
    if sock is None:
        # runserver: wsgi.input is a LimitedStream over the socket's buffered reader.
        reader = getattr(getattr(environ.get("wsgi.input"), "_read", None), "__self__", None)
        sock = getattr(getattr(reader, "raw", None), "_sock", None)
    if isinstance(sock, socket.socket):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _damaged_response(request: HttpRequest | None, project: Project,
                      path: str) -> HttpResponse:
    body = render_to_string("portal/damaged.html", {"project": project, "paths": [path]},
                            request=request)
    return HttpResponse(body, status=DAMAGED_STATUS)


def _guarded(request: HttpRequest | None, project: Project, chunks: Iterator[bytes],
             reading: _Reading,
             make_response: Callable[[Iterator[bytes]], HttpResponseBase]) -> HttpResponseBase:
    """Start ``chunks`` before answering: damage found before the first byte becomes the
    explanation page; damage found later notes it and drops the connection."""
    try:
        first = next(chunks, None)
    except c4gh.C4GHError:
        damaged_note(request, project, reading.path)
        return _damaged_response(request, project, reading.path)

    def rest() -> Iterator[bytes]:
        try:
            yield from chunks
        except c4gh.C4GHError:
            damaged_note(request, project, reading.path)
            _drop_connection(request)
            raise

    head = [first] if first is not None else []
    return make_response(itertools.chain(head, rest()))


def _headers(response: HttpResponse | StreamingHttpResponse, filename: str) -> None:
    response["Content-Disposition"] = content_disposition_header(True, filename)
    response["Cache-Control"] = "no-store"


def file_response(*, project: Project, user: User, kek: bytes, path: str,
                  ip: str | None = None,
                  request: HttpRequest | None = None) -> HttpResponseBase:
    path = path_normalise(path)
    items, _ = _prepare(project=project, user=user, kek=kek, ip=ip, paths=[path], limit=1)
    if not items:
        raise NotFound(f"No file {path!r} in {project.public_id}.")
    item = items[0]
    backend = storage_for_project(project)
    _check_stored(backend, project.bucket, item)

    def respond(chunks: Iterator[bytes]) -> StreamingHttpResponse:
        response = StreamingHttpResponse(chunks, content_type="application/octet-stream")
        # A known length lets the browser tell a cut transfer from a finished one.
        response["Content-Length"] = str(item.file["size_original"])
        _headers(response, path.rpartition("/")[2])
        return response

    reading = _Reading()
    return _guarded(request, project,
                    plaintext(item, object_chunks(backend, project.bucket, item), reading),
                    reading, respond)


class _ZipSink(io.RawIOBase):
    """Write-only, unseekable target for zipfile: collects what it writes until taken.

    zipfile sees a stream it cannot seek, so it writes sizes and CRCs in data
    descriptors after each member instead of going back: nothing is buffered beyond the
    piece just written.
    """

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._pos = 0

    def writable(self) -> bool:
        return True

    def write(self, b: ReadableBuffer) -> int:
        data = bytes(b)
        self._parts.append(data)
        self._pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self._pos

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def zip_chunks(items: Iterator[Item], *, backend: StorageBackend, bucket: str, strip: str,
               prefix: str, reading: _Reading) -> Iterator[bytes]:
    """A ZIP64 archive (stored, no compression: the data is mostly compressed already)
    of the decrypted files, produced piece by piece. An error ends the generator before
    the central directory is written, so the archive is visibly broken."""
    sink = _ZipSink()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED,
                         allowZip64=True) as zf:
        for item in items:
            f = item.file
            name = f["path"][len(strip):].lstrip("/") if strip else f["path"]
            info = zipfile.ZipInfo(f"{prefix}/{name}",
                                   date_time=timezone.localtime(f["uploaded_at"]).timetuple()[:6])
            info.compress_type = zipfile.ZIP_STORED
            info.file_size = f["size_original"]
            with zf.open(info, mode="w", force_zip64=True) as member:
                for piece in plaintext(item, object_chunks(backend, bucket, item), reading):
                    member.write(piece)
                    yield sink.take()
            yield sink.take()
    yield sink.take()


def folder_response(*, project: Project, user: User, kek: bytes, folder: str,
                    ip: str | None = None,
                    request: HttpRequest | None = None) -> HttpResponseBase:
    folder = path_normalise(folder, allow_root=True)
    first, after = _prepare(project=project, user=user, kek=kek, ip=ip, folder=folder)
    if not first:
        raise NotFound(f"No files under {folder or 'the project root'!r} in "
                       f"{project.public_id}.")
    backend = storage_for_project(project)
    _check_stored(backend, project.bucket, first[0])

    def items() -> Iterator[Item]:
        # Later batches are prepared (and recorded) only when the stream reaches them.
        batch, cursor = first, after
        while True:
            yield from batch
            if not cursor:
                return
            batch, cursor = _prepare(project=project, user=user, kek=kek, ip=ip,
                                     folder=folder, after=cursor)

    name = folder.rpartition("/")[2] if folder else project.public_id
    reading = _Reading()
    chunks = zip_chunks(items(), backend=backend, bucket=project.bucket, strip=folder,
                        prefix=name, reading=reading)

    def respond(pieces: Iterator[bytes]) -> StreamingHttpResponse:
        response = StreamingHttpResponse(pieces, content_type="application/zip")
        _headers(response, f"{name}.zip")
        return response

    return _guarded(request, project, (c for c in chunks if c), reading, respond)
