"""`dds data put`: read → SHA-256 → zstd when useful → Crypt4GH → multipart parts.

Each file streams through ``c4gh.Encryptor`` (its chunks are exactly the upload's
parts, in a few recycled part buffers) straight to presigned part URLs: nothing is staged
on disk. Several files are encrypted at once, and each file has several parts in flight,
bounded so that memory stays flat whatever the file size. Multi-part uploads are journaled
(``cli.journal``) so that a killed run resumes from the parts storage already holds.
Small files (batches) are encrypted in-line (``c4gh.encrypt_inline``): a pipeline's
thread and buffers cost more than sealing a few KiB.
"""

from __future__ import annotations

import base64
import errno
import logging
import os
import stat
import threading
import time
import unicodedata
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol, cast

import httpx
import zstandard
from rich.progress import TaskID

import c4gh
from cli.client import Api
from cli.errors import Cancelled, CliError, LoginRequired, UsageError
from cli.journal import Journal
from cli.transfer import (
    RECORDED,
    Bars,
    Result,
    Summary,
    backoff,
    run_files,
    storage_client,
)

log = logging.getLogger(__name__)

#: zstd's multi-threaded output is identical for any worker count >= 1, but not equal to
#: the single-threaded output: a fixed count keeps a resumed file's compressed stream the
#: same bytes as the parts already stored.
ZSTD_THREADS = 2
MATCH_BATCH = 10_000
PART_ATTEMPTS = 5
#: Files up to this size go in batches (one request starts many, one completes them).
SMALL_MAX = 1024 * 1024
#: Part URLs asked for with each batched upload: one. With the default part size (>= 128
#: segments) SMALL_MAX fits in one part; a server configured with smaller parts costs
#: such a file one part-urls call, instead of every file 16 presigned URLs never used.
SMALL_FIRST_PARTS = 1
#: Recycled part buffers per file (parts being encrypted, waiting or in flight).
PART_BUFFERS = 4
#: Files per batch request (the server takes up to 200).
BATCH_FILES = 100
#: Bytes of the files of one batch: a batch's files are encrypted before it starts (their
#: exact stored sizes go in the start, for single PUTs), so this bounds their memory.
BATCH_BYTES = 8 * 1024 * 1024


#: An API answer or request body.
JSON = dict[str, Any]
#: The bytes of one part: a view of a recycled buffer, or bytes.
Chunk = bytes | bytearray | memoryview
#: Parts storage already holds: part number -> (ETag, size, CRC32 storage verified).
Stored = dict[int, tuple[str, int, str | None]]
#: What `dds` asks for at start: a CRC32 per part, signed into its URL, checked by storage.
PART_CHECKSUM = "crc32"
#: A checksummed part's URL can be asked for only once its bytes are known: parts wait
#: for this many of the file's parts to be ready, while others are still being sent, so
#: one part-urls request serves several (docs/cli.md, "Part checksums").
CHECKSUM_GROUP = 2
#: ... but no longer than this (seconds) for the group to fill.
CHECKSUM_LINGER = 0.5


def zstd_tag() -> str:
    """What makes our compressed stream what it is: zstandard's version and our settings.
    A compressed upload resumes only under the same tag (its remaining parts must
    continue the very stream whose first parts are stored)."""
    settings = ",".join(f"{k}={v}" for k, v in sorted(c4gh.compression.ZSTD_PARAMS.items()))
    return f"{zstandard.__version__};{settings}"


def journal_resumable(entry: JSON, st: os.stat_result) -> bool:
    """Whether a journal entry's upload can go on from the parts it stored: the same file
    (size, mtime) and, if compressed, the same zstd (a newer dds, or zstandard, would
    compress the rest differently and the object would not decrypt)."""
    if (entry.get("size"), entry.get("mtime_ns")) != (st.st_size, st.st_mtime_ns):
        return False
    return not entry.get("compressed") or entry.get("zstd") == zstd_tag()


def crc32_b64(data: Chunk) -> str:
    """The CRC32 of ``data`` as S3 takes it (``x-amz-checksum-crc32``): base64 of its 4
    big-endian bytes. (zlib releases the GIL for large buffers.)"""
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def _bad_digest(r: httpx.Response) -> bool:
    """Storage says the body did not match the CRC32 signed into the URL (S3's BadDigest,
    also the local store's)."""
    return r.status_code == 400 and "BadDigest" in r.text


@dataclass
class Source:
    local: Path
    remote: str
    size: int
    #: A whole Crypt4GH file (header + segments) already encrypted to the project's key:
    #: sent as it is (``--already-encrypted``).
    encrypted: bool = False


#: Suffix of Crypt4GH files; dropped from the name in the project (the data is the file).
C4GH_SUFFIX = ".c4gh"
#: Enough of a file's start to hold any Crypt4GH header the server accepts (64 KiB).
HEADER_READ = 64 * 1024 + 16


def original_from_stored(stored: int) -> int | None:
    """Plaintext size of ``stored`` bytes of standard 64 KiB segments (None: not a whole
    number of segments, i.e. a truncated file)."""
    full, rem = divmod(stored, c4gh.CIPHER_SEGMENT_SIZE)
    if rem and rem <= c4gh.CIPHER_SEGMENT_SIZE - c4gh.SEGMENT_SIZE:
        return None
    return full * c4gh.SEGMENT_SIZE + (rem - (c4gh.CIPHER_SEGMENT_SIZE - c4gh.SEGMENT_SIZE)
                                       if rem else 0)


class _Outcome(Protocol):
    """What a complete needs of an encryption's outcome (``c4gh.EncryptResult``'s)."""

    @property
    def stored_size(self) -> int: ...
    @property
    def original_size(self) -> int: ...
    @property
    def compressed(self) -> bool: ...
    @property
    def sha256(self) -> str: ...


class _Sealed(Protocol):
    """What a complete needs of an encryption: its header and, once done, its outcome."""

    @property
    def header(self) -> bytes: ...
    @property
    def result(self) -> _Outcome: ...


@dataclass
class _Inline:
    """A small file encrypted in memory."""

    header: bytes
    result: c4gh.EncryptResult


@dataclass(frozen=True)
class _Result:
    stored_size: int
    original_size: int
    compressed: bool
    sha256: str


@dataclass(frozen=True)
class _Checked:
    """A file encrypted elsewhere, accepted by the server: its header, its session keys
    (re-addressed to this run's key) and the size of its original."""

    header: bytes
    session_keys: list[bytes]
    original: int


class _Passthrough:
    """The segments of a file encrypted elsewhere, in upload parts, unchanged; decrypted
    on the way (with the session key the server re-addressed to us) so that the SHA-256
    and size of the original are known and every segment is authenticated before the
    upload completes. Offers what ``_put`` uses of ``c4gh.Encryptor``."""

    compressed = False
    session_key = b""

    def __init__(self, fh: BinaryIO, checked: _Checked, *, part_size: int) -> None:
        self.fh, self.header, self.part_size = fh, checked.header, part_size
        self._dec = c4gh.Decryptor(checked.session_keys, expected_size=checked.original,
                                   expected_stored_size=c4gh.stored_size(checked.original))
        self._result: _Result | None = None

    @property
    def result(self) -> _Result:
        if self._result is None:
            raise RuntimeError("not read to the end yet")
        return self._result

    def __iter__(self) -> Iterator[bytes]:
        self.fh.seek(len(self.header))
        stored = 0
        while True:
            chunk = self.fh.read(self.part_size)
            if not chunk:
                break
            stored += len(chunk)
            self._dec.feed(chunk)  # plaintext discarded: only its hash and size matter
            yield chunk
        self._dec.finish()
        assert self._dec.size is not None and self._dec.sha256 is not None  # set by finish
        self._result = _Result(stored_size=stored, original_size=self._dec.size,
                               compressed=False, sha256=self._dec.sha256)


# --------------------------------------------------------------------------- walking


def _remote_join(*parts: str) -> str:
    joined = "/".join(p.strip("/") for p in parts if p and p.strip("/"))
    # The server stores names NFC-normalised; comparing in that form finds existing files.
    return unicodedata.normalize("NFC", joined)


def collect_sources(paths: list[str], destination: str, summary: Summary, *,
                    encrypted: bool = False) -> list[Source]:
    """Files under ``paths`` (folders recursively, symlinks followed, loops refused).

    ``encrypted``: the files are Crypt4GH files; their ``.c4gh`` suffix is dropped from the
    name in the project (researchers get the decrypted file)."""
    found = _collect(paths, destination, summary)
    if not encrypted:
        return found
    for src in found:
        src.encrypted = True
        if src.remote.endswith(C4GH_SUFFIX) and len(src.remote.rpartition("/")[2]) > 5:
            src.remote = src.remote[:-len(C4GH_SUFFIX)]
    return found


def _collect(paths: list[str], destination: str, summary: Summary) -> list[Source]:
    """The files under ``paths``. A path given that cannot be used (it does not exist, is a
    broken link or a loop, is not a file or folder) fails alone, as not worth a rerun; when
    no path given can be used there is nothing to upload: a usage error naming them,
    before anything is sent."""
    out: list[Source] = []
    unusable: list[tuple[str, str]] = []
    for raw in paths:
        path = Path(raw)
        try:
            st = path.stat()
        except FileNotFoundError:
            unusable.append((raw, "broken symbolic link" if path.is_symlink()
                             else "no such file or directory"))
            continue
        except OSError as exc:
            unusable.append((raw, _os_reason(exc)))
            continue
        name = path.resolve().name if raw in (".", "..") or raw.endswith("/.") else path.name
        if stat.S_ISDIR(st.st_mode):
            _walk(path, _remote_join(destination, name), {(st.st_dev, st.st_ino)}, out,
                  summary)
        elif stat.S_ISREG(st.st_mode):
            out.append(Source(path, _remote_join(destination, name), st.st_size))
        else:
            unusable.append((raw, "not a regular file or folder"))
    if unusable and len(unusable) == len(paths):
        raise UsageError("Nothing to upload: " + "; ".join(f"{raw}: {why}" for raw, why
                                                          in unusable) + ".")
    for raw, why in unusable:
        summary.fail(raw, why, unusable=True)
    return out


def _os_reason(exc: OSError) -> str:
    return "symbolic link loop" if exc.errno == errno.ELOOP else exc.strerror or str(exc)


def _walk(folder: Path, remote: str, ancestors: set[tuple[int, int]], out: list[Source],
          summary: Summary) -> None:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        summary.fail(str(folder), f"cannot list folder: {exc.strerror or exc}",
                     unusable=True)
        return
    for entry in entries:
        path = Path(entry.path)
        try:
            st = os.stat(entry.path)  # follows symlinks
        except OSError as exc:
            summary.fail(entry.path, "broken symbolic link" if (
                exc.errno == errno.ENOENT and entry.is_symlink()) else _os_reason(exc),
                unusable=True)
            continue
        child = _remote_join(remote, entry.name)
        if stat.S_ISDIR(st.st_mode):
            ident = (st.st_dev, st.st_ino)
            if ident in ancestors:
                # A link back to a folder we are inside would make the walk endless.
                summary.fail(entry.path, "symbolic link loop (points to a parent folder)",
                             unusable=True)
                continue
            _walk(path, child, ancestors | {ident}, out, summary)
        elif stat.S_ISREG(st.st_mode):
            out.append(Source(path, child, st.st_size))
        else:
            summary.fail(entry.path, "not a regular file (device, socket or pipe)",
                         unusable=True)


# --------------------------------------------------------------------------- uploading


class _Grew(Exception):
    """Compression made the file larger than the parts reserved for it."""


class _Gone(Exception):
    """The server no longer has this file's unfinished upload: start the file over."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def upload_gone(exc: CliError) -> bool:
    """The answer says the upload itself no longer exists or was given up (aborted as
    stale, its multipart gone from storage after a failed complete): resuming it can never
    work, starting the file again can."""
    body = exc.body or {}
    if exc.status in (404, 410):
        return True
    if exc.status == 409 and body.get("upload_status") not in (None, "completed"):
        return True
    return (exc.status == 400 and exc.code == "storage_rejected"
            and body.get("storage_code") in ("NoSuchUpload", "NoSuchBucket"))


def upload_completed(exc: CliError) -> bool:
    """A complete answered "already completed": an earlier call went through."""
    return exc.status == 409 and (exc.body or {}).get("upload_status") == "completed"


class Uploader:
    def __init__(self, api: Api, project: str, *, overwrite: bool, threads: int,
                 bars: Bars, summary: Summary, break_on_fail: bool,
                 notify: Callable[[str], None] = print) -> None:
        self.api, self.project, self.notify = api, project, notify
        self.base = f"projects/{project}/"
        self.overwrite, self.threads = overwrite, threads
        self.bars, self.summary, self.break_on_fail = bars, summary, break_on_fail
        self.journal = Journal(api.url, project)
        self.http = storage_client(threads)
        self.cancel = threading.Event()
        pk_file = api.request("GET", self.base + "public-key").content
        self.public_key = c4gh.load_public_key(pk_file)
        part_workers = max(4, threads * 2)
        self.parts = ThreadPoolExecutor(part_workers, thread_name_prefix="dds-part")
        # Small files of the batches in flight: each encrypts in memory and PUTs its part.
        self.small = ThreadPoolExecutor(part_workers, thread_name_prefix="dds-small")
        # Parts waiting or in flight, across files: bounds memory whatever the file sizes.
        self.in_flight = threading.BoundedSemaphore(part_workers + 2)

    def close(self) -> None:
        self.small.shutdown(wait=True, cancel_futures=True)
        self.parts.shutdown(wait=True, cancel_futures=True)
        self.http.close()

    # ---------------------------------------------------------------- one file

    def put(self, src: Source) -> None:
        if self.cancel.is_set():
            raise Cancelled()
        try:
            self._put_restartable(src)
        except _Grew:
            # Rare: a file that looked compressible grew under zstd. Send it as it is.
            self._put_restartable(src, force_plain=True)

    def _put_restartable(self, src: Source, force_plain: bool = False) -> None:
        try:
            self._put(src, force_plain)
        except _Gone as gone:
            # Once: a fresh upload that is gone again is a real failure, not a stale one.
            self.journal.drop(src.remote)
            self.notify(f"Restarting {src.remote}: {gone.why}")
            try:
                self._put(src, force_plain)
            except _Gone as again:
                raise CliError(f"the server gave up the upload twice ({again.why})",
                               status=None)

    def _put(self, src: Source, force_plain: bool = False) -> None:
        try:
            before = os.stat(src.local)
        except OSError as exc:
            raise CliError(f"cannot read: {exc.strerror or exc}")
        # Checked with the server before anything is uploaded.
        pre = self._encrypted_check(src, before) if src.encrypted else None
        upload, stored, entry = self._resume_or_start(src, before, force_plain, pre)
        part_size = upload["part_size"]
        max_parts = upload["max_parts"]
        if stored:
            self.notify(f"Resumed {src.remote}: {len(stored)} of {max_parts} parts already "
                        "stored.")
        try:
            fh = open(src.local, "rb", buffering=0)
        except OSError as exc:
            self._abort(upload["upload_id"], src.remote)
            raise CliError(f"cannot read: {exc.strerror or exc}")
        task = self.bars.file(src.remote, src.size)
        try:
            with fh:
                enc = (_Passthrough(fh, pre, part_size=part_size) if pre
                       else self._encryptor(fh, part_size, entry, force_plain))
                if max_parts > 1 and entry is None:
                    entry = self._journal_new(src, before, upload, enc)
                etags, crcs = self._send(src, upload, enc, stored, max_parts, task, fh)
            self._check_unchanged(src, before, enc, upload["upload_id"],
                                  pre.original if pre else src.size)
            try:
                self.api.post(self.base + f"uploads/{upload['upload_id']}/complete",
                              _complete_body(enc, etags, crcs))
            except CliError as exc:
                if not upload_completed(exc):  # else: an earlier complete went through
                    if upload_gone(exc):
                        # Aborting also removes an object storage may have assembled.
                        self._abort(upload["upload_id"], src.remote)
                        raise _Gone(f"the server dropped its upload ({exc.message})")
                    raise
            self.journal.drop(src.remote)
        except OSError as exc:
            self._abort(upload["upload_id"], src.remote)
            raise CliError(f"read error: {exc.strerror or exc}")
        except c4gh.C4GHError as exc:  # only a file encrypted elsewhere is decrypted here
            self._abort(upload["upload_id"], src.remote)
            raise CliError(f"the Crypt4GH file is damaged ({type(exc).__name__}: {exc}); "
                           "nothing was stored", status=400)
        finally:
            self.bars.finish(task)

    def _encrypted_check(self, src: Source, st: os.stat_result) -> _Checked:
        """A file encrypted elsewhere: its header must be for the project's key (asked of
        the server, which re-addresses it to our throw-away key so we can verify and
        checksum the data). Returns what ``_Passthrough`` needs."""
        try:
            with open(src.local, "rb") as fh:
                head = fh.read(HEADER_READ)
        except OSError as exc:
            raise CliError(f"cannot read: {exc.strerror or exc}")
        refused = "is not a Crypt4GH file (--already-encrypted takes only those)"
        if not head.startswith(b"crypt4gh"):
            raise CliError(refused, status=400)
        try:
            header = head[:c4gh.header_length(head)]
        except (c4gh.C4GHError, ValueError) as exc:
            raise CliError(f"{refused}: {exc}", status=400)
        original = original_from_stored(st.st_size - len(header))
        if original is None:
            raise CliError("the Crypt4GH file is truncated (it does not end on a segment)",
                           status=400)
        sk, pk = c4gh.generate_keypair()
        try:
            got = self.api.post(self.base + "uploads/header-check", {
                "header": base64.b64encode(header).decode(),
                "public_key": base64.b64encode(pk).decode()})
        except CliError as exc:
            if exc.status == 400:
                raise CliError(f"refused before upload: {exc.message} (`dds project "
                               f"public-key -p {self.project}` prints that key)",
                               status=400, code=exc.code)
            raise
        keys = c4gh.parse_header(base64.b64decode(got["header"]), sk).session_keys
        return _Checked(header=header, session_keys=keys, original=original)

    def _check_unchanged(self, src: Source, before: os.stat_result, enc: _Sealed,
                         upload_id: str, expected: int) -> None:
        after = os.stat(src.local)
        if ((after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns)
                or enc.result.original_size != expected):
            self._abort(upload_id, src.remote)
            raise CliError("the file changed while it was read; nothing was stored — "
                           "put it again when it is complete")

    # ---------------------------------------------------------------- small files

    def put_batch(self, batch: list[Source]) -> Result:
        """Files that fit in one part: one request starts them all (with their part URLs),
        their parts go out in parallel, one request completes them. Each file's outcome
        goes to the summary on its own; returns ``RECORDED``."""
        try:
            self._put_batch(batch)
        except (Cancelled, LoginRequired):
            raise
        except CliError as exc:  # the whole request was refused (e.g. 503): every file
            for src in batch:
                self._fail(src.remote, exc.message, exc.status)
        return RECORDED

    def _fail(self, remote: str, why: str, status: int | None = None) -> None:
        self.summary.fail(remote, why, status=status)
        if self.break_on_fail:
            self.cancel.set()

    def _put_batch(self, batch: list[Source]) -> None:
        if self.cancel.is_set():
            raise Cancelled()
        stats: dict[str, os.stat_result] = {}
        todo: list[Source] = []
        for src in batch:
            try:
                stats[src.remote] = os.stat(src.local)
                todo.append(src)
            except OSError as exc:
                self._fail(src.remote, f"cannot read: {exc.strerror or exc}")
        if not todo:
            return
        # Encrypted before the start (in-line, a few KiB each): the start then names each
        # file's exact stored size, and the server answers one signed PUT per such file.
        sealed: dict[str, _SealedSmall] = {}
        for src, got_one in zip(todo, self.small.map(
                lambda s: self._seal(s, stats[s.remote]), todo), strict=True):
            if isinstance(got_one, CliError):
                self._fail(src.remote, got_one.message, got_one.status)
            else:
                sealed[src.remote] = got_one
        todo = [s for s in todo if s.remote in sealed]
        if not todo:
            return
        got = self.api.post(self.base + "uploads/batch", {
            "first_parts": SMALL_FIRST_PARTS, "single_put": True,
            "part_checksum": PART_CHECKSUM,
            "uploads": [{"path": s.remote, "size_original": stats[s.remote].st_size,
                         "size_stored": len(sealed[s.remote].body),
                         "crc32": crc32_b64(sealed[s.remote].body),
                         "overwrite": self.overwrite} for s in todo]})
        futures: dict[Future[JSON | None], Source] = {}
        for src, item in zip(todo, got["uploads"], strict=True):
            error = item["error"]
            if error is None and item.get("put"):
                futures[self.small.submit(self._put_single, src, sealed.pop(src.remote),
                                          item)] = src
            elif error is None:
                futures[self.small.submit(self._put_small, src, sealed.pop(src.remote),
                                          item)] = src
            elif error["status"] == 409 and error.get("upload_id"):
                # A started upload no journal knows (an interrupted run): the one-file
                # path aborts it and starts over.
                futures[self.small.submit(self.put, src)] = src
            else:
                self._fail(src.remote, error["detail"], error.get("status"))
        wait(futures)
        done: list[tuple[Source, JSON]] = []
        for f, src in futures.items():
            failure = f.exception()
            if isinstance(failure, LoginRequired):
                raise failure
            if failure is not None:
                self._fail(src.remote, "interrupted" if isinstance(failure, Cancelled)
                           else getattr(failure, "message", None) or repr(failure),
                           getattr(failure, "status", None))
            elif (body := f.result()) is None:
                self.summary.ok(src.remote)  # went the one-file way
            else:
                done.append((src, body))
        if not done:
            return
        got = self.api.post(self.base + "uploads/complete-batch",
                            {"uploads": [body for _, body in done]})
        for (src, body), result in zip(done, got["uploads"], strict=True):
            error = result["error"]
            if error is not None:
                refused = CliError(error["detail"], status=error.get("status"),
                                   code=error.get("code"), body=error)
                if upload_completed(refused):
                    error = None
                elif upload_gone(refused):
                    # Started and sent, but the server lost it meanwhile: once more alone
                    # (aborting first also removes an object storage may have assembled).
                    self._abort(body["upload_id"], src.remote)
                    self.notify(f"Restarting {src.remote}: the server dropped its upload "
                                f"({error['detail']})")
                    try:
                        self.put(src)
                        error = None
                    except (Cancelled, LoginRequired):
                        raise
                    except CliError as exc:
                        error = {"detail": exc.message, "status": exc.status}
            if error is None:
                self.summary.ok(src.remote)
            else:
                self._fail(src.remote, error["detail"], error.get("status"))
            self.bars.advance(None, src.size)

    def _seal(self, src: Source, before: os.stat_result) -> _SealedSmall | CliError:
        """Read and encrypt a small file in memory (not larger than uncompressed, so it
        fits what the start reserves); the error that stops it, if any."""
        if self.cancel.is_set():
            return CliError("interrupted")
        try:
            with open(src.local, "rb", buffering=0) as fh:
                data = _read_all(fh, before.st_size)
            body, result = c4gh.encrypt_inline(data, [self.public_key])
            if result.stored_size > c4gh.stored_size(result.original_size):
                body, result = c4gh.encrypt_inline(data, [self.public_key], compress=False)
            after = os.stat(src.local)
        except OSError as exc:
            return CliError(f"read error: {exc.strerror or exc}")
        if ((after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns)
                or result.original_size != src.size):
            return CliError("the file changed while it was read; nothing was stored — "
                            "put it again when it is complete")
        return _SealedSmall(body, _Inline(result.header, result))

    def _put_single(self, src: Source, sealed: _SealedSmall, item: JSON) -> JSON | None:
        """One signed PUT of the whole (encrypted) file; the body of its complete."""
        if self.cancel.is_set():
            raise Cancelled()
        upload, put = item["upload"], item["put"]
        if put["size"] != len(sealed.body):  # (the server signed what we said)
            self._abort(upload["upload_id"], src.remote)
            raise CliError(f"the server signed a PUT of {put['size']} B, not "
                           f"{len(sealed.body)} B")
        try:
            etag = self._put_part(_FixedUrl(put["url"]), 1, sealed.body,
                                  checksum=bool(upload.get("part_checksum")))
        except CliError:
            self._abort(upload["upload_id"], src.remote)
            raise
        return {"upload_id": upload["upload_id"], **_complete_body(sealed.enc, {1: etag})}

    def _put_small(self, src: Source, sealed: _SealedSmall, item: JSON) -> JSON | None:
        """PUT the encrypted file's part(s) of a multipart upload (a server or backend
        without single PUTs); the body of its complete (None: the file went the one-file
        way instead)."""
        if self.cancel.is_set():
            raise Cancelled()
        upload = item["upload"]
        urls = self._part_urls(upload, item["parts"])
        part_size = upload["part_size"]
        view = memoryview(sealed.body)
        chunks: list[Chunk] = [view[i:i + part_size]
                               for i in range(0, len(view), part_size)] or [b""]
        if len(chunks) > upload["max_parts"]:
            # Larger than reserved (cannot happen: _seal keeps it <= uncompressed): start
            # it over, uncompressed, the one-file way.
            self._abort(upload["upload_id"], src.remote)
            self._put(src, force_plain=True)
            return None
        checksum = isinstance(urls, _CheckedPartUrls)
        crcs: dict[int, str] | None = {} if checksum else None
        try:
            etags = {n: self._put_part(urls, n, chunk, checksum=checksum, crcs=crcs)
                     for n, chunk in enumerate(chunks, 1)}
        finally:
            urls.end()
        return {"upload_id": upload["upload_id"], **_complete_body(sealed.enc, etags, crcs)}

    def _part_urls(self, upload: JSON, first: list[JSON] | None = None
                   ) -> _PartUrls | _CheckedPartUrls:
        """Where a multipart upload's part URLs come from: fetched ahead (no checksums;
        ``first``: those the start's answer brought), or in groups of parts whose bytes
        (and so CRC32s) are known."""
        path = self.base + f"uploads/{upload['upload_id']}/part-urls"
        if upload.get("part_checksum") == PART_CHECKSUM:
            return _CheckedPartUrls(self.api, path)
        return _PartUrls(self.api, path, upload["max_parts"], first)

    def _resume_or_start(self, src: Source, st: os.stat_result, force_plain: bool,
                         pre: _Checked | None = None) -> tuple[JSON, Stored, JSON | None]:
        """(upload, {part: (etag, size)} already stored, journal entry or None)."""
        entry = self.journal.load(src.remote)
        if entry is not None and not force_plain:
            if journal_resumable(entry, st):
                try:
                    got = self.api.get(self.base + f"uploads/{entry['upload_id']}/parts")
                    # The CRC32s storage reports, else those journaled as parts landed.
                    sums = self.journal.parts_crc32(src.remote)
                    stored = {p["part_number"]: (p["etag"], p["size"],
                                                 p.get("crc32") or sums.get(p["part_number"]))
                              for p in got["parts"]}
                    return got["upload"], stored, entry
                except CliError as exc:
                    if not upload_gone(exc):
                        raise
                    # Its journal entry can never resume: forget it and start over.
                    self._abort(entry["upload_id"], src.remote)
                    self.notify(f"Restarting {src.remote}: the server no longer has its "
                                f"unfinished upload ({exc.message})")
            else:  # the file changed since: its stored parts are of other bytes
                self._abort(entry["upload_id"], src.remote)
            self.journal.drop(src.remote)
        body = {"path": src.remote, "overwrite": self.overwrite,
                "size_original": pre.original if pre else st.st_size,
                "part_checksum": PART_CHECKSUM,
                # the first URLs come with the answer (a checksummed upload gets none)
                "first_parts": _PartUrls.BATCH}
        try:
            return self.api.post(self.base + "uploads", body), {}, None
        except CliError as exc:
            stale = (exc.body or {}).get("upload_id") if exc.status == 409 else None
            if not stale:
                raise
        # An upload of this path that no journal knows (a killed single-part upload, or a
        # journal lost with its machine): its session key is gone, so start it over.
        self._abort(stale, src.remote)
        return self.api.post(self.base + "uploads", body), {}, None

    def _encryptor(self, fh: BinaryIO, part_size: int, entry: JSON | None,
                   force_plain: bool) -> c4gh.Encryptor:
        # A resumed upload seals its remaining parts with the key of the parts already
        # stored (kept in the 0600 journal).
        return c4gh.Encryptor(
            fh, [self.public_key],
            compress=False if force_plain else (entry["compressed"] if entry else None),
            segments_per_chunk=part_size // c4gh.CIPHER_SEGMENT_SIZE,
            zstd_threads=ZSTD_THREADS,
            session_key=bytes.fromhex(entry["session_key"]) if entry else None,
            header=base64.b64decode(entry["header"]) if entry else None)

    def _journal_new(self, src: Source, st: os.stat_result, upload: JSON,
                     enc: c4gh.Encryptor | _Passthrough) -> JSON:
        entry = {"upload_id": upload["upload_id"], "size": st.st_size,
                 "mtime_ns": st.st_mtime_ns, "local": str(src.local),
                 "zstd": zstd_tag(), "compressed": enc.compressed,
                 "session_key": enc.session_key.hex(),
                 "header": base64.b64encode(enc.header).decode()}
        self.journal.save(src.remote, entry)
        return entry

    def _send(self, src: Source, upload: JSON, enc: c4gh.Encryptor | _Passthrough,
              stored: Stored, max_parts: int, task: TaskID | None,
              fh: BinaryIO) -> tuple[dict[int, str], dict[int, str] | None]:
        """Send the parts storage does not hold yet: (ETags, CRC32s or None: the upload
        is not checksummed) of every part."""
        etags: dict[int, str] = {}
        reported = 0
        futures: list[Future[None]] = []
        urls = self._part_urls(upload, upload.get("parts"))
        checksum = isinstance(urls, _CheckedPartUrls)
        crcs: dict[int, str] | None = {} if checksum else None
        number = 0
        # Parts of the encryptor come in a few recycled buffers, each given back once its
        # PUT is done: no fresh part-sized allocation (page faults) per part.
        stream = (enc.recycled(PART_BUFFERS) if isinstance(enc, c4gh.Encryptor)
                  else ((chunk, None) for chunk in enc))
        try:
            for chunk, release in stream:
                number += 1
                if self.cancel.is_set():
                    raise Cancelled()
                if number > max_parts:
                    self._abort(upload["upload_id"], src.remote)
                    raise _Grew()
                # Progress counts original bytes read (compressed parts hide how many
                # original bytes they hold); the bounded in-flight set keeps it honest.
                pos = min(fh.tell(), src.size)
                self.bars.advance(task, pos - reported)
                reported = pos
                have = stored.get(number)
                # (A checksummed upload's part whose CRC32 storage does not report, e.g.
                # moto's, is sent again: the complete must name it.)
                if (have is not None and have[1] == len(chunk)
                        and (crcs is None or have[2] is not None)):
                    etags[number] = have[0]  # resumed: storage already holds this part
                    if crcs is not None and have[2] is not None:
                        crcs[number] = have[2]
                    if release is not None:
                        release()
                    continue
                futures.append(self._submit(urls, number, chunk, etags, release, crcs,
                                            src.remote if max_parts > 1 else None))
                futures = [f for f in futures if not f.done() or f.exception()]
                self._raise_first(futures)
            if number == 0:  # an empty file is one empty part
                futures.append(self._submit(urls, 1, b"", etags, crcs=crcs))
            urls.end()  # no more parts: those waiting for a group go now
            wait(futures)
            self._raise_first(futures)
            self.bars.advance(task, src.size - reported)
        except BaseException:
            urls.end()
            for f in futures:
                f.cancel()
            wait(futures)
            raise
        return etags, crcs

    @staticmethod
    def _raise_first(futures: list[Future[None]]) -> None:
        for f in futures:
            exc = f.exception() if f.done() else None
            if exc is not None:
                raise exc

    def _submit(self, urls: _PartUrls | _CheckedPartUrls, number: int, chunk: Chunk,
                etags: dict[int, str], release: Callable[[], None] | None = None,
                crcs: dict[int, str] | None = None,
                journaled: str | None = None) -> Future[None]:
        while not self.in_flight.acquire(timeout=0.2):
            if self.cancel.is_set():
                raise Cancelled()

        def run() -> None:
            try:
                etags[number] = self._put_part(urls, number, chunk,
                                               checksum=crcs is not None, crcs=crcs)
                if crcs is not None and journaled is not None:
                    self.journal.part_crc32(journaled, number, crcs[number])
            finally:
                self.in_flight.release()
                if release is not None:
                    release()

        try:
            return self.parts.submit(run)
        except BaseException:
            self.in_flight.release()
            raise

    def _put_part(self, urls: _PartUrls | _CheckedPartUrls | _FixedUrl, number: int,
                  chunk: Chunk, *, checksum: bool = False,
                  crcs: dict[int, str] | None = None) -> str:
        """PUT one part (retried); its ETag. ``checksum``: the part's CRC32 goes in
        ``x-amz-checksum-crc32`` (signed into its URL); storage refusing the body for it
        (BadDigest: damaged on the way) is retried with the part re-read from its buffer
        and checksummed again, a bounded number of times."""
        last: str = ""
        digests = 0
        for attempt in range(PART_ATTEMPTS):
            if self.cancel.is_set():
                raise Cancelled()
            refresh = attempt > 0 and last.startswith("HTTP 403")
            headers = {"Content-Length": str(len(chunk))}
            crc32 = None
            if checksum:
                # In this part's thread (zlib releases the GIL): off the encryptor's path.
                crc32 = headers["x-amz-checksum-crc32"] = crc32_b64(chunk)
            url = urls.get(number, refresh=refresh, crc32=crc32)
            try:
                # Sent in 1 MiB slices of the part itself: handing httpx one bytes object
                # would copy the part twice more (bytes(), then h11's join) per part in
                # flight, which is what bounds memory with 10 MB parts.
                # (httpx sends any buffer; its hint says bytes.)
                r = self.http.put(url, content=cast("Iterator[bytes]", _slices(chunk)),
                                  headers=headers)
            except httpx.TransportError as exc:
                last = f"network error: {exc}"
                log.debug("part %d: %s", number, last)
                backoff(attempt)
                continue
            finally:
                urls.sent(number)
            if r.status_code == 200 and r.headers.get("ETag"):
                if crcs is not None and crc32 is not None:
                    crcs[number] = crc32
                return r.headers["ETag"].strip('"')
            last = f"HTTP {r.status_code}: {r.text.strip()[:200]}"
            log.debug("part %d: storage answered %s", number, last)
            if checksum and _bad_digest(r):
                digests += 1
                continue  # resent at once: nothing of it was stored
            if r.status_code < 500 and r.status_code not in (403, 408, 429):
                break
            backoff(attempt)
        if digests:
            raise CliError(f"storage refused part {number}: its bytes arrived damaged "
                           f"{digests} time(s) in {PART_ATTEMPTS} (the CRC32 did not match, "
                           "BadDigest); nothing damaged was stored — check the network "
                           "path to storage and put the file again", status=400)
        raise CliError(f"storage refused part {number} ({last})")

    def _abort(self, upload_id: str, remote: str) -> None:
        try:
            self.api.delete(self.base + f"uploads/{upload_id}")
        except CliError:
            pass  # the server aborts stale uploads on its own schedule
        self.journal.drop(remote)


def _complete_body(enc: _Sealed, etags: dict[int, str],
                   crcs: dict[int, str] | None = None) -> JSON:
    result = enc.result
    return {"parts": [{"part_number": n, "etag": e} if crcs is None else
                      {"part_number": n, "etag": e, "crc32": crcs[n]}
                      for n, e in sorted(etags.items())],
            "header": base64.b64encode(enc.header).decode(), "checksum": result.sha256,
            "size_original": result.original_size, "size_stored": result.stored_size,
            "compressed": result.compressed}


def _read_all(fh: BinaryIO, size: int) -> bytes:
    """A small file's bytes (``size`` from its stat; a file that grew is caught later)."""
    parts: list[bytes] = []
    got = 0
    while True:
        data = fh.read(max(size - got, 0) + 1)
        if not data:
            return b"".join(parts)
        parts.append(data)
        got += len(data)


def _slices(data: Chunk, size: int = 1024 * 1024) -> Iterator[memoryview]:
    view = memoryview(data)
    for i in range(0, len(view), size):
        yield view[i:i + size]


@dataclass
class _SealedSmall:
    """A small file encrypted in memory: its segments and what its complete says."""

    body: bytearray
    enc: _Inline


@dataclass
class _FixedUrl:
    """A single PUT's one URL (nothing to refresh: it lives as long as the upload may)."""

    url: str

    def get(self, number: int, refresh: bool = False, crc32: str | None = None) -> str:
        return self.url

    def sent(self, number: int) -> None:
        pass


class _PartUrls:
    """Presigned part URLs, 100 per request, refreshed when expired.

    The next hundred are asked for in the background once a part of the second half of
    the ones at hand is sent, so that no part waits for a request (a part-urls request
    took 47-349 ms on the benchmark machine, and every part in flight waited for it).
    The start's answer may bring the first ones (``first``)."""

    BATCH = 100

    def __init__(self, api: Api, path: str, max_parts: int,
                 first: list[JSON] | None = None) -> None:
        self.api, self.path, self.max_parts = api, path, max_parts
        self.urls: dict[int, str] = {p["part_number"]: p["url"] for p in first or ()}
        self.cond = threading.Condition()
        #: the thread of the request in flight (in the background, or a part's own)
        self.ahead: threading.Thread | None = None
        self.renewals = 0  # requests of parts for their own URL, finished
        self.renewed: dict[int, int] = {}  # part -> the last such request that gave its URL
        #: part-urls requests made (tests count them)
        self.requests = 0

    def _fetch(self, start: int) -> dict[int, str]:
        wanted = list(range(start, min(start + self.BATCH, self.max_parts + 1)))
        with self.cond:
            self.requests += 1
        return _part_urls_of(self.api.post(self.path, {"part_numbers": wanted}), wanted)

    def _fetch_ahead(self, start: int) -> None:
        try:
            got = self._fetch(start)
        except Exception as exc:  # noqa: BLE001 - the part that needs it asks again itself
            log.debug("part URLs from %d, asked ahead: %s", start, exc)
            got = {}
        with self.cond:
            for n, url in got.items():
                self.urls.setdefault(n, url)  # (a refreshed URL is as good)
            self.ahead = None
            self.cond.notify_all()

    def get(self, number: int, refresh: bool = False, crc32: str | None = None) -> str:
        with self.cond:
            seen = self.renewals
            # One request at a time: a part whose URL is missing (or expired) waits for
            # the one in flight, which may bring it, rather than asking for it as well.
            while self.ahead is not None and (refresh or number not in self.urls):
                self.cond.wait()
                if refresh and self.renewed.get(number, 0) > seen:
                    refresh = False  # a request made since this part's URL failed renewed it
            if not refresh and number in self.urls:
                top = max(self.urls)
                if (self.ahead is None and top < self.max_parts
                        and number > top - self.BATCH // 2):
                    self.ahead = threading.Thread(target=self._fetch_ahead, args=(top + 1,),
                                                  name="dds-part-urls", daemon=True)
                    self.ahead.start()
                return self.urls[number]
            self.ahead = threading.current_thread()  # this part asks, the others wait
        got: dict[int, str] = {}
        try:
            got = self._fetch(number)
            return got[number]
        finally:
            with self.cond:
                self.renewals += 1
                self.urls.update(got)
                self.renewed.update(dict.fromkeys(got, self.renewals))
                self.ahead = None
                self.cond.notify_all()

    def sent(self, number: int) -> None:
        pass

    def end(self) -> None:
        pass


class _CheckedPartUrls:
    """Part URLs of a checksummed upload: each signs its part's CRC32, so it can be asked
    for only once that part's bytes are known. Parts that are ready wait for each other:
    one request fetches the URLs of every part waiting (up to 100). A part waits while
    fewer than ``CHECKSUM_GROUP`` are waiting *and* other parts of the file are being
    sent (so the file's transfer does not stall), at most ``CHECKSUM_LINGER`` seconds,
    and not at all once the file has no more parts to come (:meth:`end`)."""

    BATCH = 100

    def __init__(self, api: Api, path: str) -> None:
        self.api, self.path = api, path
        self.urls: dict[int, tuple[str, str]] = {}  # number -> (crc32, url)
        self.waiting: dict[int, str] = {}
        self.fetching: set[int] = set()  # the parts of the request in flight
        self.ended = False
        self.sending = 0
        #: part-urls requests made (bench/tests count them)
        self.requests = 0
        self.cond = threading.Condition()

    def get(self, number: int, refresh: bool = False, crc32: str | None = None) -> str:
        assert crc32 is not None
        deadline = time.monotonic() + CHECKSUM_LINGER
        with self.cond:
            have = self.urls.get(number)
            if have is None or have[0] != crc32 or refresh:
                self.urls.pop(number, None)
                self.waiting[number] = crc32
                self.cond.notify_all()
            while True:
                have = self.urls.get(number)
                if have is not None and have[0] == crc32:
                    self.sending += 1
                    return have[1]
                if number not in self.fetching:  # (a failed group gave it back)
                    self.waiting.setdefault(number, crc32)
                if not self.fetching and (
                        self.ended or self.sending == 0
                        or len(self.waiting) >= CHECKSUM_GROUP
                        or time.monotonic() >= deadline):
                    break
                self.cond.wait(None if self.fetching else
                               max(deadline - time.monotonic(), 0.001))
            group = {number: self.waiting.pop(number)}
            for n in list(self.waiting)[:self.BATCH - 1]:
                group[n] = self.waiting.pop(n)
            self.fetching = set(group)
            self.requests += 1
        try:
            got = _part_urls_of(self.api.post(self.path, {"parts": [
                {"part_number": n, "crc32": c} for n, c in sorted(group.items())]}), group)
        except BaseException:
            with self.cond:
                self.fetching = set()
                for n, c in group.items():  # the others' parts: whoever waits asks again
                    if n != number:
                        self.waiting.setdefault(n, c)
                self.cond.notify_all()
            raise
        with self.cond:
            self.fetching = set()
            for n, url in got.items():
                self.urls[n] = (group[n], url)
            self.sending += 1
            self.cond.notify_all()
            return self.urls[number][1]

    def sent(self, number: int) -> None:
        """A PUT that :meth:`get` gave a URL for is over (whatever its outcome)."""
        with self.cond:
            self.sending -= 1
            self.cond.notify_all()

    def end(self) -> None:
        """The file has no more parts to come: nothing waits for a group any more."""
        with self.cond:
            self.ended = True
            self.cond.notify_all()


def _part_urls_of(answer: JSON, wanted: Iterable[int]) -> dict[int, str]:
    """The URLs of a part-urls answer, by part number; every part asked for must be in
    it (a short or malformed answer is the server's error, not a KeyError)."""
    try:
        urls = {int(p["part_number"]): str(p["url"]) for p in answer["parts"]}
    except (KeyError, TypeError, ValueError):
        raise CliError("the server's answer to part-urls is malformed") from None
    missing = [n for n in wanted if n not in urls]
    if missing:
        raise CliError(f"the server gave no URL for part(s) {missing[:5]}")
    return urls


# --------------------------------------------------------------------------- command


def _batches(small: list[Source], files: int, nbytes: int) -> list[list[Source]]:
    """Consecutive batches of at most ``files`` files and (but for one file) ``nbytes``."""
    out: list[list[Source]] = []
    cur: list[Source] = []
    size = 0
    for s in small:
        if cur and (len(cur) >= files or size + s.size > nbytes):
            out.append(cur)
            cur, size = [], 0
        cur.append(s)
        size += s.size
    if cur:
        out.append(cur)
    return out


def existing(api: Api, project: str, remotes: list[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(remotes), MATCH_BATCH):
        got = api.post(f"projects/{project}/files/match",
                       {"paths": remotes[i:i + MATCH_BATCH]})
        found.update(got["found"])
    return found


def run_put(api: Api, project: str, sources: list[Source], *, overwrite: bool, threads: int,
            bars_factory: Callable[[int], Bars], summary: Summary, break_on_fail: bool,
            notify: Callable[[str], None] = print) -> None:
    if not sources:
        return
    if not overwrite:
        there = existing(api, project, [s.remote for s in sources])
        for s in sources:
            if s.remote in there:
                summary.skip(s.remote, "already in the project (use --overwrite to replace)")
        sources = [s for s in sources if s.remote not in there]
    # Big files first: they set the total time, small ones fill the gaps around them.
    # Small files without a journal entry go in batches; enough batches that every
    # thread has one.
    sources.sort(key=lambda s: -s.size)
    up_journal = Journal(api.url, project)
    small = [s for s in sources if s.size <= SMALL_MAX and not s.encrypted
             and up_journal.load(s.remote) is None]
    chosen = {id(s) for s in small}
    work: list[Source | list[Source]] = [s for s in sources if id(s) not in chosen]
    per_batch = max(1, min(BATCH_FILES, -(-len(small) // max(threads, 1))))
    work += _batches(small, per_batch, BATCH_BYTES)
    with bars_factory(sum(s.size for s in sources)) as bars:
        up = Uploader(api, project, overwrite=overwrite, threads=threads, bars=bars,
                      summary=summary, break_on_fail=break_on_fail, notify=notify)
        try:
            run_files(work, lambda it: up.put_batch(it) if isinstance(it, list) else up.put(it),
                      lambda it: f"{len(it)} files" if isinstance(it, list) else it.remote,
                      threads=threads, summary=summary, cancel=up.cancel,
                      break_on_fail=break_on_fail)
        finally:
            up.close()
