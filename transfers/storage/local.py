"""Objects as files on the server's disk, behind signed URLs (development, small sites)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from django.conf import settings
from django.core import signing
from django.urls import reverse

from transfers.errors import StorageRejected, StorageUnavailable
from transfers.storage.base import StoredMultipart, StoredObject, StoredPart, etag_bare

_SIGNER_SALT = "dds.transfers.local-storage"
_T = TypeVar("_T")


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

    Multipart parts live in ``<bucket>/.multipart/<upload id>/<n>`` until completion
    concatenates them. URLs point to ``transfers.storage_views`` with a signed token that
    names the operation, the object and (for parts) the upload and part number.
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
        return self._mp_dir(bucket, upload_id) / f"{int(number):05d}"

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

    def start_multipart(self, bucket: str, key: str) -> str:
        upload_id = secrets.token_hex(16)
        self._fs(lambda: self._mp_dir(bucket, upload_id).mkdir(parents=True))
        self._fs(lambda: (self._mp_dir(bucket, upload_id) / ".key").write_text(key))
        return upload_id

    def presign_part(self, bucket: str, key: str, upload_id: str, number: int, expires: int,
                     max_bytes: int | None = None) -> str:
        payload: dict[str, Any] = {"op": "put", "b": bucket, "k": key, "u": upload_id,
                                   "n": int(number)}
        if max_bytes is not None:
            payload["m"] = int(max_bytes)  # signed: the PUT view refuses a longer body
        return self._url("storage-part", payload, expires)

    def write_part(self, bucket: str, upload_id: str, number: int,
                   chunks: Iterable[bytes]) -> str:
        """Store one part (called by the signed PUT view); returns its ETag (MD5)."""
        if not self._mp_dir(bucket, upload_id).is_dir():
            raise _no_such_upload()
        target = self.part_path(bucket, upload_id, number)
        tmp = target.with_suffix(f".tmp{secrets.token_hex(4)}")
        md5 = hashlib.md5(usedforsecurity=False)

        def write() -> None:
            try:
                with open(tmp, "wb") as fh:
                    for chunk in chunks:
                        md5.update(chunk)
                        fh.write(chunk)
            except BaseException:
                tmp.unlink(missing_ok=True)  # a refused or broken body leaves nothing
                raise
            # Atomic: a part is either the previous one or the new one, never half-written.
            os.replace(tmp, target)

        self._fs(write)
        return md5.hexdigest()

    def list_parts(self, bucket: str, key: str, upload_id: str) -> list[StoredPart]:
        directory = self._mp_dir(bucket, upload_id)
        if not directory.is_dir():
            raise _no_such_upload()
        parts = []
        for p in sorted(directory.iterdir()):
            if p.name.isdigit():
                with open(p, "rb") as fh:
                    md5 = hashlib.file_digest(fh, lambda: hashlib.md5(usedforsecurity=False))
                parts.append(StoredPart(int(p.name), md5.hexdigest(), p.stat().st_size))
        return parts

    def complete_multipart(self, bucket: str, key: str, upload_id: str,
                           parts: Sequence[tuple[int, str]]) -> None:
        stored = {p.number: p for p in self.list_parts(bucket, key, upload_id)}
        numbers = [n for n, _ in parts]
        if not parts or numbers != sorted(set(numbers)):
            raise StorageRejected("Parts must be listed once each, in ascending order.",
                                  storage_code="InvalidPartOrder")
        for n, etag in parts:
            if n not in stored or stored[n].etag != etag_bare(etag):
                raise StorageRejected(f"Part {n}: no stored part with this ETag.",
                                      storage_code="InvalidPart")
        target = self.object_path(bucket, key)
        tmp = target.with_suffix(".assembling")

        def assemble() -> None:
            with open(tmp, "wb") as out:
                for n in numbers:
                    with open(self.part_path(bucket, upload_id, n), "rb") as src:
                        shutil.copyfileobj(src, out, 1024 * 1024)
            os.replace(tmp, target)
            shutil.rmtree(self._mp_dir(bucket, upload_id), ignore_errors=True)

        self._fs(assemble)

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
