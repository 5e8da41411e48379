"""What every storage backend offers, and what it answers with."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, cast


@dataclass(frozen=True)
class StoredPart:
    number: int
    etag: str
    size: int
    #: The CRC32 storage verified and keeps for the part (S3's ``ChecksumCRC32``: base64
    #: of the 4 big-endian bytes); None for a part sent without one, or a store that does
    #: not report it.
    crc32: str | None = None


@dataclass(frozen=True)
class StoredObject:
    """One object of a listing: its key, size and when it was last written (aware)."""

    key: str
    size: int
    last_modified: dt.datetime


@dataclass(frozen=True)
class StoredMultipart:
    """A multipart upload storage still holds open (its parts are not objects yet)."""

    key: str
    upload_id: str
    initiated: dt.datetime | None


class StorageBackend(Protocol):
    name: str

    def create_bucket(self, bucket: str) -> None: ...
    def start_multipart(self, bucket: str, key: str, checksum: bool = False) -> str: ...
    def presign_part(self, bucket: str, key: str, upload_id: str, number: int,
                     expires: int, max_bytes: int | None = None,
                     crc32: str | None = None) -> str: ...
    def list_parts(self, bucket: str, key: str, upload_id: str) -> list[StoredPart]: ...
    def complete_multipart(self, bucket: str, key: str, upload_id: str,
                           parts: Sequence[tuple[int, str]],
                           checksums: Mapping[int, str] | None = None) -> None: ...
    def abort_multipart(self, bucket: str, key: str, upload_id: str) -> None: ...
    def head_size(self, bucket: str, key: str) -> int | None: ...
    def object_etag(self, bucket: str, key: str) -> str | None: ...
    def presign_get(self, bucket: str, key: str, expires: int) -> str: ...
    def delete_objects(self, bucket: str, keys: Sequence[str]) -> None: ...
    def list_objects(self, bucket: str, limit: int) -> list[str]: ...
    def list_multipart(self, bucket: str, limit: int) -> list[tuple[str, str]]: ...
    # Reconciliation (transfers.services.reconcile): whole listings, page by page.
    def iter_objects(self, bucket: str, page_size: int = 1000) -> Iterator[StoredObject]: ...
    def iter_multipart(self, bucket: str) -> Iterator[StoredMultipart]: ...
    def bucket_exists(self, bucket: str) -> bool: ...
    def list_buckets(self, prefixes: Sequence[str]) -> list[str]: ...
    def delete_bucket(self, bucket: str) -> None: ...


class SinglePutBackend(Protocol):
    """What a backend offers for small objects (optional: a backend without it gets
    multipart uploads; :func:`single_put_backend` tells which)."""

    def presign_put(self, bucket: str, key: str, expires: int, size: int,
                    crc32: str | None = None) -> str:
        """A URL to which the client PUTs exactly ``size`` bytes, creating the object in
        one request; the length is signed into the URL, so storage refuses any other
        (and, with ``crc32``, a body with another CRC32)."""
        ...


def single_put_backend(backend: object) -> SinglePutBackend | None:
    """``backend`` if it can presign single PUTs, else None (multipart it is)."""
    return cast("SinglePutBackend", backend) if callable(
        getattr(backend, "presign_put", None)) else None


def etag_bare(value: str) -> str:
    """An ETag without the quotes S3 puts around it (clients send either form)."""
    return value.strip().strip('"')


def crc32_b64(value: int) -> str:
    """A CRC32 as S3 writes it (``x-amz-checksum-crc32``): base64 of 4 big-endian bytes."""
    return base64.b64encode((value & 0xFFFFFFFF).to_bytes(4, "big")).decode()
