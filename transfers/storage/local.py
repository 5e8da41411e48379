"""Objects as files on the server's disk, behind signed URLs (development, small sites)."""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import os
import secrets
import shutil
import struct
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from django.conf import settings
from django.core import signing
from django.urls import reverse

from transfers.errors import StorageRejected, StorageUnavailable
from transfers.storage.base import (
    StoredMultipart,
    StoredObject,
    StoredPart,
    crc32_b64,
    etag_bare,
)

_SIGNER_SALT = "dds.transfers.local-storage"
_T = TypeVar("_T")

#: In an upload's directory: the data file the parts are written into, the lock part
#: writes share and a complete takes alone, and the suffix of a part's sidecar.
_DATA = "data"
_LOCK = ".lock"
_SIDECAR = ".etag"
#: A sidecar's offset for a part kept in a file of its own.
_OWN_FILE = -1
#: Suffix of an object being written (reconciliation knows it: transfers.services.reconcile).
_ASSEMBLING = ".assembling"
#: How long a complete waits for part writes still running before it answers 503.
_COMPLETE_WAIT = 20.0


class _Part(NamedTuple):
    etag: str
    size: int
    offset: int  #: in the data file, or _OWN_FILE
    crc32: str | None = None  #: verified when the part was written (its URL signed one)


def _crc32_verify(signed: str | None, actual: int) -> None:
    """BadDigest (as S3) when the URL signed a CRC32 (``signed``) the body's is not."""
    if signed is not None and crc32_b64(actual) != signed:
        raise StorageRejected(f"The CRC32 you specified ({signed}) did not match the "
                              f"body's ({crc32_b64(actual)}); nothing was stored.",
                              storage_code="BadDigest")


def _flock(kind: int, byte: int) -> bytes:
    """A ``struct flock`` for one byte (l_type, l_whence, l_start, l_len, l_pid = 0)."""
    return struct.pack("hhqqi4x", kind, os.SEEK_SET, byte, 1, 0)


def _sidecar_write(path: Path, etag: str, size: int, offset: int,
                   crc32: str | None = None) -> None:
    tmp = path.with_name(f"{path.name}.tmp{secrets.token_hex(4)}")
    tmp.write_text(f"{etag} {size} {offset}" + (f" {crc32}" if crc32 else "") + "\n")
    os.replace(tmp, path)


def _sidecar_read(path: Path) -> _Part | None:
    try:
        # "<md5> <size> <offset>", and " <crc32>" for a part whose checksum was verified.
        etag, size, offset, *crc32 = path.read_text().split()
        return _Part(etag, int(size), int(offset), crc32[0] if crc32 else None)
    except FileNotFoundError:
        return None  # rewritten meanwhile: the part is being replaced
    except ValueError:
        return None  # unreadable: as if the part were not stored (the client resends)


def _copy_range(src: int, offset: int, out: int, size: int) -> None:
    """``size`` bytes of ``src`` from ``offset`` appended to ``out``, in the kernel."""
    while size > 0:
        n = os.copy_file_range(src, out, min(size, 1 << 30), offset)
        if n <= 0:
            raise OSError(5, "short part file")  # EIO: a part is shorter than recorded
        offset += n
        size -= n


def _safe(component: str) -> str:
    # Bucket names, object keys and upload ids are server-generated; this guards the
    # filesystem anyway in case a signed token ever carried something else.
    if not component or "/" in component or "\\" in component or component in (".", ".."):
        raise StorageRejected("Invalid storage name.")
    return component


def _no_such_upload() -> StorageRejected:
    return StorageRejected("No such upload (completed or aborted).",
                           storage_code="NoSuchUpload")


class LocalBackend:
    """Objects as files under DDS_LOCAL_STORAGE_ROOT/<bucket>/<key>.

    A multipart upload is the directory ``<bucket>/.multipart/<upload id>/``. Each part
    request writes its bytes straight into the upload's one data file (``data``) at the
    part's offset (part number - 1) x the part size signed into its URL, and records the
    part's MD5, size and offset in a small sidecar (``<n>.etag``), so listing the parts
    reads no data, and completing is checking the sidecars, cutting the data file to the
    parts named and renaming it to ``<bucket>/<key>``: no byte is read or copied again,
    whatever the size. ``.lock`` orders part writes (shared) before a complete
    (exclusive), and a lock on its byte n serialises two writes of part n.

    Uploads started before this layout (no ``data`` file) and parts written without a
    part size keep a file per part (``<n>``); their complete copies them (in the kernel,
    ``os.copy_file_range``) into ``<key>.assembling`` and renames that. Either way a
    complete interrupted half-way leaves the upload (retry it) or the whole object.

    URLs point to ``transfers.storage_views`` with a signed token that names the
    operation, the object and (for parts) the upload and part number.
    """

    name = "local"

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root or settings.DDS_LOCAL_STORAGE_ROOT)

    # paths
    def _bucket(self, bucket: str) -> Path:
        return self.root / _safe(bucket)

    def object_path(self, bucket: str, key: str) -> Path:
        return self._bucket(bucket) / _safe(key)

    def _mp_dir(self, bucket: str, upload_id: str) -> Path:
        return self._bucket(bucket) / ".multipart" / _safe(upload_id)

    def part_path(self, bucket: str, upload_id: str, number: int) -> Path:
        """A part's own file (the layout without a data file)."""
        return self._mp_dir(bucket, upload_id) / f"{int(number):05d}"

    def _sidecar(self, bucket: str, upload_id: str, number: int) -> Path:
        return self._mp_dir(bucket, upload_id) / f"{int(number):05d}{_SIDECAR}"

    @staticmethod
    def _fs(fn: Callable[[], _T]) -> _T:
        try:
            return fn()
        except OSError as exc:
            raise StorageUnavailable(f"Local storage failed ({exc.strerror}); "
                                     "try again later.")

    # tokens
    @staticmethod
    def sign(payload: dict[str, Any]) -> str:
        return signing.TimestampSigner(salt=_SIGNER_SALT).sign_object(payload, compress=True)

    @staticmethod
    def unsign(token: str, max_age: int) -> dict[str, Any]:
        payload: dict[str, Any] = signing.TimestampSigner(salt=_SIGNER_SALT).unsign_object(
            token, max_age=max_age)
        return payload

    def _url(self, name: str, payload: dict[str, Any], expires: int) -> str:
        payload = {**payload, "e": int(expires)}
        base: str = settings.DDS_LOCAL_STORAGE_URL
        return base.rstrip("/") + reverse(name, kwargs={"token": self.sign(payload)})

    # interface
    def create_bucket(self, bucket: str) -> None:
        self._fs(lambda: (self._bucket(bucket) / ".multipart").mkdir(parents=True,
                                                                       exist_ok=True))

    def start_multipart(self, bucket: str, key: str, checksum: bool = False) -> str:
        # (``checksum``: each part's URL signs its CRC32, checked as it is written.)
        upload_id = secrets.token_hex(16)
        directory = self._mp_dir(bucket, upload_id)

        def start() -> None:
            directory.mkdir(parents=True)
            (directory / _DATA).touch()  # before the lock: lock without data = completed
            (directory / _LOCK).touch()
            (directory / ".key").write_text(key)  # last: what iter_multipart dates

        self._fs(start)
        return upload_id

    def presign_part(self, bucket: str, key: str, upload_id: str, number: int, expires: int,
                     max_bytes: int | None = None, crc32: str | None = None) -> str:
        payload: dict[str, Any] = {"op": "put", "b": bucket, "k": key, "u": upload_id,
                                   "n": int(number)}
        if max_bytes is not None:
            payload["m"] = int(max_bytes)  # signed: the PUT view refuses a longer body
        if crc32 is not None:
            payload["c"] = crc32  # signed: a body with another CRC32 is refused (BadDigest)
        return self._url("storage-part", payload, expires)

    def presign_put(self, bucket: str, key: str, expires: int, size: int,
                    crc32: str | None = None) -> str:
        """A URL to PUT exactly ``size`` bytes to, creating the object in one request."""
        payload: dict[str, Any] = {"op": "putobj", "b": bucket, "k": key, "s": int(size)}
        if crc32 is not None:
            payload["c"] = crc32
        return self._url("storage-put", payload, expires)

    def write_part(self, bucket: str, upload_id: str, number: int,
                   chunks: Iterable[bytes], part_size: int | None = None,
                   crc32: str | None = None) -> str:
        """Store one part (called by the signed PUT view); returns its ETag (MD5).

        With the upload's ``part_size`` (signed into the part URL) and a data file, the
        bytes go into the data file at the part's offset; otherwise into a file of their
        own. Either way the part is the previous one or the new one, never half of each:
        its sidecar is removed before and written after the bytes, and a part without a
        sidecar in the data file is not stored (the client sends it again).

        With ``crc32`` (signed into the URL) the body's CRC32 must match, else BadDigest
        and the part is not stored. A part that is already stored is then replaced by a
        file of its own, renamed into place only once its CRC32 matched: a bad body
        never overwrites a good part's bytes.
        """
        number = int(number)
        if number < 1:
            raise StorageRejected("Part numbers start at 1.", storage_code="InvalidArgument")
        directory = self._mp_dir(bucket, upload_id)
        if not directory.is_dir():
            raise _no_such_upload()
        try:
            upload_lock = os.open(directory / _LOCK, os.O_RDWR)
        except FileNotFoundError:
            upload_lock = -1  # an upload of the layout before: a file per part, no locks
        except OSError as exc:
            raise StorageUnavailable(f"Local storage failed ({exc.strerror}); "
                                     "try again later.")
        try:
            if upload_lock >= 0:
                fcntl.flock(upload_lock, fcntl.LOCK_SH)  # a complete waits for this part
                if not (directory / _DATA).exists():
                    raise _no_such_upload()  # completed (or aborted) meanwhile
            in_place = part_size is not None and upload_lock >= 0
            with self._part_lock(directory, number, upload_lock):
                if in_place and not (crc32 is not None and self._sidecar(
                        bucket, upload_id, number).exists()):
                    assert part_size is not None
                    return self._write_in_place(bucket, upload_id, number, chunks,
                                                (number - 1) * int(part_size), crc32)
                return self._write_own_file(bucket, upload_id, number, chunks, crc32)
        finally:
            if upload_lock >= 0:
                os.close(upload_lock)

    @contextmanager
    def _part_lock(self, directory: Path, number: int, upload_lock: int) -> Iterator[None]:
        """Two writes of one part run one after the other (a client's retry while its
        first attempt still writes). With the upload's lock file: a write lock on its
        byte ``number`` (an open-file-description lock, so threads of one process
        exclude each other too, and no file per part to create and delete)."""
        if upload_lock >= 0:
            fcntl.fcntl(upload_lock, fcntl.F_OFD_SETLKW, _flock(fcntl.F_WRLCK, number))
            try:
                yield
            finally:
                fcntl.fcntl(upload_lock, fcntl.F_OFD_SETLK, _flock(fcntl.F_UNLCK, number))
            return
        try:
            fd = os.open(directory / f"{number:05d}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except FileNotFoundError:
            raise _no_such_upload()
        except OSError as exc:
            raise StorageUnavailable(f"Local storage failed ({exc.strerror}); "
                                     "try again later.")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _write_in_place(self, bucket: str, upload_id: str, number: int,
                        chunks: Iterable[bytes], offset: int, crc32: str | None) -> str:
        sidecar = self._sidecar(bucket, upload_id, number)
        md5 = hashlib.md5(usedforsecurity=False)
        crc = 0

        def write() -> int:
            nonlocal crc
            sidecar.unlink(missing_ok=True)  # until the bytes are all there: not stored
            fd = os.open(self._mp_dir(bucket, upload_id) / _DATA, os.O_WRONLY)
            try:
                at = offset
                for chunk in chunks:
                    md5.update(chunk)
                    if crc32 is not None:
                        crc = zlib.crc32(chunk, crc)
                    view = memoryview(chunk)
                    while view:
                        written = os.pwrite(fd, view, at)
                        at += written
                        view = view[written:]
            finally:
                os.close(fd)
            return at - offset

        size = self._fs(write)
        # A refused body gets no sidecar: the part is not stored (its bytes in the data
        # file are not part of anything; the resend overwrites them).
        _crc32_verify(crc32, crc)
        etag = md5.hexdigest()
        self._fs(lambda: _sidecar_write(sidecar, etag, size, offset, crc32))
        # A file of its own written for this part before is stale now.
        self._fs(lambda: self.part_path(bucket, upload_id, number).unlink(missing_ok=True))
        return etag

    def _write_own_file(self, bucket: str, upload_id: str, number: int,
                        chunks: Iterable[bytes], crc32: str | None = None) -> str:
        target = self.part_path(bucket, upload_id, number)
        sidecar = self._sidecar(bucket, upload_id, number)
        tmp = target.with_suffix(f".tmp{secrets.token_hex(4)}")
        md5 = hashlib.md5(usedforsecurity=False)

        def write() -> int:
            size = 0
            crc = 0
            try:
                with open(tmp, "wb") as fh:
                    for chunk in chunks:
                        md5.update(chunk)
                        if crc32 is not None:
                            crc = zlib.crc32(chunk, crc)
                        fh.write(chunk)
                        size += len(chunk)
                _crc32_verify(crc32, crc)  # refused: the stored part (if any) is untouched
            except BaseException:
                tmp.unlink(missing_ok=True)  # a refused or broken body leaves nothing
                raise
            sidecar.unlink(missing_ok=True)
            # Atomic: a part is either the previous one or the new one, never half-written.
            os.replace(tmp, target)
            return size

        size = self._fs(write)
        etag = md5.hexdigest()
        self._fs(lambda: _sidecar_write(sidecar, etag, size, _OWN_FILE, crc32))
        return etag

    def _stored_parts(self, bucket: str, upload_id: str) -> dict[int, _Part]:
        """What the upload holds, from the sidecars (a part file of the layout before
        that has none is hashed, once per call). Raises NoSuchUpload for an upload that
        is gone, or completed (its data file renamed) but not yet cleaned up."""
        directory = self._mp_dir(bucket, upload_id)
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            raise _no_such_upload()
        except OSError as exc:
            raise StorageUnavailable(f"Local storage failed ({exc.strerror}); "
                                     "try again later.")
        present = set(names)
        if _LOCK in present and _DATA not in present:
            # A complete renamed the data file and stopped before removing the rest.
            shutil.rmtree(directory, ignore_errors=True)
            raise _no_such_upload()
        parts: dict[int, _Part] = {}
        for name in names:
            if name.endswith(_SIDECAR) and name[:-len(_SIDECAR)].isdigit():
                part = _sidecar_read(directory / name)
                if part is not None:
                    parts[int(name[:-len(_SIDECAR)])] = part
        for name in names:
            if name.isdigit() and int(name) not in parts:
                def digest(path: Path = directory / name) -> _Part:
                    with open(path, "rb") as fh:
                        md5 = hashlib.file_digest(
                            fh, lambda: hashlib.md5(usedforsecurity=False))
                        return _Part(md5.hexdigest(), os.fstat(fh.fileno()).st_size,
                                     _OWN_FILE)
                try:
                    parts[int(name)] = self._fs(digest)
                except StorageUnavailable:
                    if (directory / name).exists():
                        raise  # else: replaced or removed while listing
        return parts

    def list_parts(self, bucket: str, key: str, upload_id: str) -> list[StoredPart]:
        return [StoredPart(n, p.etag, p.size, p.crc32)
                for n, p in sorted(self._stored_parts(bucket, upload_id).items())]

    def complete_multipart(self, bucket: str, key: str, upload_id: str,
                           parts: Sequence[tuple[int, str]],
                           checksums: Mapping[int, str] | None = None) -> None:
        directory = self._mp_dir(bucket, upload_id)
        with self._upload_exclusive(directory):
            stored = self._stored_parts(bucket, upload_id)
            numbers = [int(n) for n, _ in parts]
            if not parts or numbers != sorted(set(numbers)):
                raise StorageRejected("Parts must be listed once each, in ascending order.",
                                      storage_code="InvalidPartOrder")
            for n, etag in parts:
                if n not in stored or stored[n].etag != etag_bare(etag):
                    raise StorageRejected(f"Part {n}: no stored part with this ETag.",
                                          storage_code="InvalidPart")
                if checksums is not None and stored[n].crc32 != checksums[n]:
                    raise StorageRejected(f"Part {n}: no stored part with this CRC32.",
                                          storage_code="InvalidPart")
            chosen = [stored[n] for n in numbers]
            target = self.object_path(bucket, key)
            at = 0
            contiguous = True
            for p in chosen:
                contiguous = contiguous and p.offset == at
                at += p.size
            if contiguous:
                self._fs(lambda: self._complete_in_place(directory, stored, numbers, at,
                                                         target))
            else:
                self._fs(lambda: self._complete_by_copy(directory, numbers, chosen,
                                                        target))
        shutil.rmtree(directory, ignore_errors=True)

    @contextmanager
    def _upload_exclusive(self, directory: Path) -> Iterator[None]:
        """No part of the upload is being written while its complete runs (a part
        request still sending waits, up to a point: then 503, and the retry completes)."""
        try:
            fd = os.open(directory / _LOCK, os.O_RDWR)
        except FileNotFoundError:
            if not directory.is_dir():
                raise _no_such_upload()
            yield  # the layout before: no lock file
            return
        try:
            deadline = time.monotonic() + _COMPLETE_WAIT
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise StorageUnavailable("A part of this upload is still being "
                                                 "written; complete again once it is.")
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)

    @staticmethod
    def _complete_in_place(directory: Path, stored: dict[int, _Part], numbers: list[int],
                           total: int, target: Path) -> None:
        keep = set(numbers)
        # Parts not named are not in the object: forget them before their bytes go, so
        # that a retry after a crash here never lists a part whose bytes are cut off.
        for n in stored:
            if n not in keep:
                (directory / f"{n:05d}{_SIDECAR}").unlink(missing_ok=True)
        data = directory / _DATA
        os.truncate(data, total)
        os.replace(data, target)  # the one step that makes the object: atomic

    @staticmethod
    def _complete_by_copy(directory: Path, numbers: list[int], chosen: list[_Part],
                          target: Path) -> None:
        tmp = target.with_name(target.name + _ASSEMBLING)
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for n, p in zip(numbers, chosen, strict=True):
                own = p.offset == _OWN_FILE
                src = os.open(directory / (f"{n:05d}" if own else _DATA), os.O_RDONLY)
                try:
                    _copy_range(src, 0 if own else p.offset, out, p.size)
                finally:
                    os.close(src)
        except BaseException:
            os.close(out)
            tmp.unlink(missing_ok=True)
            raise
        os.close(out)
        os.replace(tmp, target)

    def write_object(self, bucket: str, key: str, size: int,
                     chunks: Iterable[bytes], crc32: str | None = None,
                     publish: Callable[[Callable[[], None]], None] | None = None) -> str:
        """Create an object from exactly ``size`` bytes (the signed single-PUT view);
        returns its ETag (MD5, as S3's PutObject). Written to ``<key>.assembling`` and
        renamed: the object is the previous one or the new one, and a body of another
        length (or a broken one, or with ``crc32`` one of another CRC32) leaves
        nothing. ``publish``, when given, is called with the rename once the body is in
        and runs it (or raises: then nothing is written)."""
        target = self.object_path(bucket, key)
        if not target.parent.is_dir():
            raise StorageRejected("No such bucket.", storage_code="NoSuchBucket")
        tmp = target.with_name(target.name + _ASSEMBLING)
        md5 = hashlib.md5(usedforsecurity=False)

        def write() -> None:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                busy = StorageRejected("This object is being written by another request.",
                                       storage_code="OperationAborted")
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise busy
                try:
                    if os.fstat(fd).st_ino != os.stat(tmp).st_ino:
                        raise busy  # that request renamed this file into place meanwhile
                except FileNotFoundError:
                    raise busy
                os.ftruncate(fd, 0)
                done = 0
                crc = 0
                try:
                    for chunk in chunks:
                        md5.update(chunk)
                        if crc32 is not None:
                            crc = zlib.crc32(chunk, crc)
                        done += len(chunk)
                        if done > size:
                            raise StorageRejected(f"The body must be exactly {size} bytes.",
                                                  storage_code="IncompleteBody")
                        view = memoryview(chunk)
                        while view:
                            view = view[os.write(fd, view):]
                    if done != size:
                        raise StorageRejected(f"The body must be exactly {size} bytes, "
                                              f"not {done}.", storage_code="IncompleteBody")
                    _crc32_verify(crc32, crc)
                    if publish is None:
                        os.replace(tmp, target)
                    else:
                        publish(lambda: os.replace(tmp, target))
                except BaseException:
                    tmp.unlink(missing_ok=True)
                    raise
            finally:
                os.close(fd)

        self._fs(write)
        return md5.hexdigest()

    def abort_multipart(self, bucket: str, key: str, upload_id: str) -> None:
        shutil.rmtree(self._mp_dir(bucket, upload_id), ignore_errors=True)

    def head_size(self, bucket: str, key: str) -> int | None:
        path = self.object_path(bucket, key)
        return path.stat().st_size if path.is_file() else None

    def object_etag(self, bucket: str, key: str) -> str | None:
        return None  # the local store keeps no ETag: only the size can be checked

    def presign_get(self, bucket: str, key: str, expires: int) -> str:
        return self._url("storage-object", {"op": "get", "b": bucket, "k": key}, expires)

    def delete_objects(self, bucket: str, keys: Sequence[str]) -> None:
        for key in keys:
            self._fs(partial(self.object_path(bucket, key).unlink, missing_ok=True))

    def list_objects(self, bucket: str, limit: int) -> list[str]:
        directory = self._bucket(bucket)
        if not directory.is_dir():
            return []
        out = []
        for entry in os.scandir(directory):
            if entry.is_file() and not entry.name.startswith("."):
                out.append(entry.name)
                if len(out) >= limit:
                    break
        return out

    def list_multipart(self, bucket: str, limit: int) -> list[tuple[str, str]]:
        directory = self._bucket(bucket) / ".multipart"
        if not directory.is_dir():
            return []
        out = []
        for entry in os.scandir(directory):
            if not entry.is_dir() or entry.name.startswith("."):
                continue
            key_file = Path(entry.path) / ".key"
            key = key_file.read_text() if key_file.exists() else ""
            out.append((key, entry.name))
            if len(out) >= limit:
                break
        return out

    # ----------------------------------------------------------- reconciliation

    @staticmethod
    def _mtime(stat: os.stat_result) -> dt.datetime:
        return dt.datetime.fromtimestamp(stat.st_mtime, tz=dt.UTC)

    def iter_objects(self, bucket: str, page_size: int = 1000) -> Iterator[StoredObject]:
        """Every object file of the bucket, by key (the ``.multipart`` directory and
        other dot-names are not objects); a missing bucket lists nothing."""
        directory = self._bucket(bucket)
        if not directory.is_dir():
            return
        names = self._fs(lambda: sorted(e.name for e in os.scandir(directory)
                                        if e.is_file() and not e.name.startswith(".")))
        for name in names:
            try:
                stat = (directory / name).stat()
            except FileNotFoundError:
                continue  # deleted since the directory was read
            yield StoredObject(name, stat.st_size, self._mtime(stat))

    def iter_multipart(self, bucket: str) -> Iterator[StoredMultipart]:
        directory = self._bucket(bucket) / ".multipart"
        if not directory.is_dir():
            return
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            if not entry.is_dir():
                continue
            key_file = Path(entry.path) / ".key"
            try:
                key = key_file.read_text()
                initiated: dt.datetime | None = self._mtime(key_file.stat())
            except FileNotFoundError:
                key, initiated = "", None
            yield StoredMultipart(key, entry.name, initiated)

    def bucket_exists(self, bucket: str) -> bool:
        return self._bucket(bucket).is_dir()

    def list_buckets(self, prefixes: Sequence[str]) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(e.name for e in os.scandir(self.root)
                      if e.is_dir() and any(e.name.startswith(p) for p in prefixes))

    def delete_bucket(self, bucket: str) -> None:
        """Delete an empty bucket (refused, like S3, while it holds objects or parts)."""
        directory = self._bucket(bucket)
        if not directory.is_dir():
            return
        multipart = directory / ".multipart"
        if multipart.is_dir() and any(multipart.iterdir()):
            raise StorageRejected("The bucket still holds multipart uploads.",
                                  storage_code="BucketNotEmpty")
        if any(e.name != ".multipart" for e in os.scandir(directory)):
            raise StorageRejected("The bucket is not empty.", storage_code="BucketNotEmpty")
        if multipart.is_dir():
            self._fs(multipart.rmdir)
        self._fs(directory.rmdir)

    def iter_range(self, bucket: str, key: str, start: int, end: int,
                   chunk: int = 1024 * 1024) -> Iterator[bytes]:
        with open(self.object_path(bucket, key), "rb") as fh:
            fh.seek(start)
            remaining = end - start + 1
            while remaining > 0:
                data = fh.read(min(chunk, remaining))
                if not data:
                    return
                remaining -= len(data)
                yield data
