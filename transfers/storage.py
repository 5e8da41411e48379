"""Object storage behind one small interface: S3 (any S3-compatible endpoint) and local.

Clients never get credentials: they get URLs scoped to one object and one operation that
expire (S3 presigned URLs, or Django-served URLs signed with ``TimestampSigner``). Every
backend call that cannot reach storage raises ``StorageUnavailable`` (503, retry later);
a call refused because of what the client sent raises ``StorageRejected`` (400).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from django.conf import settings
from django.core import signing
from django.urls import reverse

from transfers.errors import StorageRejected, StorageUnavailable


@dataclass(frozen=True)
class StoredPart:
    number: int
    etag: str
    size: int


class StorageBackend(Protocol):
    name: str

    def create_bucket(self, bucket: str) -> None: ...
    def start_multipart(self, bucket: str, key: str) -> str: ...
    def presign_part(self, bucket: str, key: str, upload_id: str, number: int,
                     expires: int, max_bytes: int | None = None) -> str: ...
    def list_parts(self, bucket: str, key: str, upload_id: str) -> list[StoredPart]: ...
    def complete_multipart(self, bucket: str, key: str, upload_id: str,
                           parts: Sequence[tuple[int, str]]) -> None: ...
    def abort_multipart(self, bucket: str, key: str, upload_id: str) -> None: ...
    def head_size(self, bucket: str, key: str) -> int | None: ...
    def object_etag(self, bucket: str, key: str) -> str | None: ...
    def presign_get(self, bucket: str, key: str, expires: int) -> str: ...
    def delete_objects(self, bucket: str, keys: Sequence[str]) -> None: ...
    def list_objects(self, bucket: str, limit: int) -> list[str]: ...
    def list_multipart(self, bucket: str, limit: int) -> list[tuple[str, str]]: ...


def _etag(value: str) -> str:
    return value.strip().strip('"')


# --------------------------------------------------------------------------- S3

_clients: dict[tuple, object] = {}
_clients_lock = threading.Lock()


def _s3_client(endpoint: str | None, region: str | None, access_key: str | None,
               secret_key: str | None):
    """One boto3 client per (endpoint, region, credentials) per process: making one costs
    milliseconds and boto3 clients are thread-safe. Changed credentials give a new key."""
    import boto3
    from botocore.config import Config

    # The cache key holds a digest of the secret, not the secret itself.
    secret_digest = hashlib.sha256((secret_key or "").encode()).hexdigest()
    key = (endpoint, region, access_key, secret_digest)
    client = _clients.get(key)
    if client is not None:
        return client
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            # Short timeouts and few retries: a dead endpoint must become a quick 503 for
            # the client (which resumes later), not a request hanging in a gunicorn worker.
            config = Config(signature_version="s3v4", s3={"addressing_style": "path"},
                            connect_timeout=3, read_timeout=30,
                            retries={"max_attempts": 2, "mode": "standard"},
                            max_pool_connections=32)
            client = boto3.client("s3", endpoint_url=endpoint, region_name=region,
                                  aws_access_key_id=access_key,
                                  aws_secret_access_key=secret_key, config=config)
            _clients[key] = client
    return client


class S3Backend:
    name = "s3"

    def __init__(self, *, endpoint: str | None, region: str | None,
                 access_key: str | None, secret_key: str | None) -> None:
        self._client = _s3_client(endpoint or None, region or None, access_key, secret_key)

    def _call(self, method: str, **kwargs):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self._client, method)(**kwargs)
        except ClientError as exc:
            err = exc.response.get("Error", {})
            code = err.get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if status >= 500 or code in ("SlowDown", "ServiceUnavailable", "InternalError"):
                raise StorageUnavailable(f"Object storage failed ({code}); try again later.")
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"):
                # The server's own credentials are wrong: an operator problem, not the
                # client's; the message names no credential.
                raise StorageUnavailable("Object storage refused the server's credentials; "
                                         "contact the operator.")
            raise StorageRejected(f"Object storage refused the request: {code}: "
                                  f"{err.get('Message', '')}".strip(), storage_code=code)
        except BotoCoreError as exc:
            raise StorageUnavailable(f"Object storage is unreachable ({type(exc).__name__}); "
                                     "try again later.")

    def create_bucket(self, bucket: str) -> None:
        from transfers.errors import StorageRejected as Rejected

        try:
            self._call("head_bucket", Bucket=bucket)
            return
        except Rejected:
            pass
        kwargs = {"Bucket": bucket}
        region = self._client.meta.region_name
        if region and region != "us-east-1":
            # Outside us-east-1, S3 (and Ceph/MinIO with zone groups) refuses a bucket
            # without the region it is to live in (IllegalLocationConstraintException).
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self._call("create_bucket", **kwargs)
        except Rejected as exc:
            # Two uploads racing to create the project's bucket: both are fine.
            if exc.details.get("storage_code") not in ("BucketAlreadyOwnedByYou",
                                                        "BucketAlreadyExists"):
                raise

    def start_multipart(self, bucket: str, key: str) -> str:
        return self._call("create_multipart_upload", Bucket=bucket, Key=key,
                          ContentType="application/octet-stream")["UploadId"]

    def presign_part(self, bucket, key, upload_id, number, expires,
                     max_bytes: int | None = None) -> str:
        # S3 bounds a part itself (5 GiB) and the complete checks sizes against the parts.
        return self._client.generate_presigned_url(
            "upload_part", Params={"Bucket": bucket, "Key": key, "UploadId": upload_id,
                                   "PartNumber": number}, ExpiresIn=expires)

    def list_parts(self, bucket, key, upload_id) -> list[StoredPart]:
        parts: list[StoredPart] = []
        marker = 0
        while True:
            resp = self._call("list_parts", Bucket=bucket, Key=key, UploadId=upload_id,
                              PartNumberMarker=marker)
            parts += [StoredPart(p["PartNumber"], _etag(p["ETag"]), p["Size"])
                      for p in resp.get("Parts", [])]
            if not resp.get("IsTruncated"):
                return parts
            marker = resp["NextPartNumberMarker"]

    def complete_multipart(self, bucket, key, upload_id, parts) -> None:
        self._call("complete_multipart_upload", Bucket=bucket, Key=key, UploadId=upload_id,
                   MultipartUpload={"Parts": [{"PartNumber": n, "ETag": f'"{_etag(e)}"'}
                                              for n, e in parts]})

    def abort_multipart(self, bucket, key, upload_id) -> None:
        try:
            self._call("abort_multipart_upload", Bucket=bucket, Key=key, UploadId=upload_id)
        except StorageRejected as exc:
            if exc.details.get("storage_code") not in ("NoSuchUpload", "NoSuchBucket"):
                raise

    def head_size(self, bucket, key) -> int | None:
        try:
            return self._call("head_object", Bucket=bucket, Key=key)["ContentLength"]
        except StorageRejected:
            return None

    def object_etag(self, bucket, key) -> str | None:
        try:
            return _etag(self._call("head_object", Bucket=bucket, Key=key)["ETag"])
        except StorageRejected:
            return None

    def presign_get(self, bucket, key, expires) -> str:
        return self._client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires)

    def delete_objects(self, bucket, keys) -> None:
        for i in range(0, len(keys), 1000):  # the S3 limit per DeleteObjects call
            try:
                self._call("delete_objects", Bucket=bucket, Delete={
                    "Objects": [{"Key": k} for k in keys[i:i + 1000]], "Quiet": True})
            except StorageRejected as exc:
                if exc.details.get("storage_code") != "NoSuchBucket":
                    raise

    def list_objects(self, bucket, limit) -> list[str]:
        try:
            resp = self._call("list_objects_v2", Bucket=bucket, MaxKeys=limit)
        except StorageRejected as exc:
            if exc.details.get("storage_code") == "NoSuchBucket":
                return []
            raise
        return [o["Key"] for o in resp.get("Contents", [])]

    def list_multipart(self, bucket, limit) -> list[tuple[str, str]]:
        try:
            resp = self._call("list_multipart_uploads", Bucket=bucket, MaxUploads=limit)
        except StorageRejected as exc:
            if exc.details.get("storage_code") == "NoSuchBucket":
                return []
            raise
        return [(u["Key"], u["UploadId"]) for u in resp.get("Uploads", [])]


# --------------------------------------------------------------------------- local

_SIGNER_SALT = "dds.transfers.local-storage"


def _safe(component: str) -> str:
    # Bucket names, object keys and upload ids are server-generated; this guards the
    # filesystem anyway in case a signed token ever carried something else.
    if not component or "/" in component or "\\" in component or component in (".", ".."):
        raise StorageRejected("Invalid storage name.")
    return component


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

    def _fs(self, fn, *args):
        try:
            return fn(*args)
        except OSError as exc:
            raise StorageUnavailable(f"Local storage failed ({exc.strerror}); "
                                     "try again later.")

    # tokens
    @staticmethod
    def sign(payload: dict) -> str:
        return signing.TimestampSigner(salt=_SIGNER_SALT).sign_object(payload, compress=True)

    @staticmethod
    def unsign(token: str, max_age: int) -> dict:
        return signing.TimestampSigner(salt=_SIGNER_SALT).unsign_object(token, max_age=max_age)

    def _url(self, name: str, payload: dict, expires: int) -> str:
        payload = {**payload, "e": int(expires)}
        base = getattr(settings, "DDS_LOCAL_STORAGE_URL", "") or ""
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

    def presign_part(self, bucket, key, upload_id, number, expires,
                     max_bytes: int | None = None) -> str:
        payload = {"op": "put", "b": bucket, "k": key, "u": upload_id, "n": int(number)}
        if max_bytes is not None:
            payload["m"] = int(max_bytes)  # signed: the PUT view refuses a longer body
        return self._url("storage-part", payload, expires)

    def write_part(self, bucket: str, upload_id: str, number: int, chunks) -> str:
        """Store one part (called by the signed PUT view); returns its ETag (MD5)."""
        directory = self._mp_dir(bucket, upload_id)
        if not directory.is_dir():
            raise StorageRejected("No such upload (completed or aborted).",
                                  storage_code="NoSuchUpload")
        target = self.part_path(bucket, upload_id, number)
        tmp = target.with_suffix(f".tmp{secrets.token_hex(4)}")
        md5 = hashlib.md5(usedforsecurity=False)

        def write():
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

    def list_parts(self, bucket, key, upload_id) -> list[StoredPart]:
        directory = self._mp_dir(bucket, upload_id)
        if not directory.is_dir():
            raise StorageRejected("No such upload (completed or aborted).",
                                  storage_code="NoSuchUpload")
        parts = []
        for p in sorted(directory.iterdir()):
            if p.name.isdigit():
                with open(p, "rb") as fh:
                    md5 = hashlib.file_digest(fh, lambda: hashlib.md5(usedforsecurity=False))
                parts.append(StoredPart(int(p.name), md5.hexdigest(), p.stat().st_size))
        return parts

    def complete_multipart(self, bucket, key, upload_id, parts) -> None:
        stored = {p.number: p for p in self.list_parts(bucket, key, upload_id)}
        numbers = [n for n, _ in parts]
        if not parts or numbers != sorted(set(numbers)):
            raise StorageRejected("Parts must be listed once each, in ascending order.",
                                  storage_code="InvalidPartOrder")
        for n, etag in parts:
            if n not in stored or stored[n].etag != _etag(etag):
                raise StorageRejected(f"Part {n}: no stored part with this ETag.",
                                      storage_code="InvalidPart")
        target = self.object_path(bucket, key)
        tmp = target.with_suffix(".assembling")

        def assemble():
            with open(tmp, "wb") as out:
                for n in numbers:
                    with open(self.part_path(bucket, upload_id, n), "rb") as src:
                        shutil.copyfileobj(src, out, 1024 * 1024)
            os.replace(tmp, target)
            shutil.rmtree(self._mp_dir(bucket, upload_id), ignore_errors=True)

        self._fs(assemble)

    def abort_multipart(self, bucket, key, upload_id) -> None:
        shutil.rmtree(self._mp_dir(bucket, upload_id), ignore_errors=True)

    def head_size(self, bucket, key) -> int | None:
        path = self.object_path(bucket, key)
        return path.stat().st_size if path.is_file() else None

    def object_etag(self, bucket, key) -> str | None:
        return None  # the local store keeps no ETag: only the size can be checked

    def presign_get(self, bucket, key, expires) -> str:
        return self._url("storage-object", {"op": "get", "b": bucket, "k": key}, expires)

    def delete_objects(self, bucket, keys) -> None:
        for key in keys:
            self._fs(lambda k=key: self.object_path(bucket, k).unlink(missing_ok=True))

    def list_objects(self, bucket, limit) -> list[str]:
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

    def list_multipart(self, bucket, limit) -> list[tuple[str, str]]:
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


# --------------------------------------------------------------------------- choice


def storage_for_unit(unit) -> StorageBackend:
    """The unit's active StorageLocation (if it names an endpoint) overrides the defaults."""
    from transfers.models import StorageLocation
    from transfers.services import storage_location_credentials

    location = (StorageLocation.objects.filter(unit_id=unit.pk, is_active=True)
                .exclude(endpoint="").first())
    if location is not None:
        creds = storage_location_credentials(location) or (settings.AWS_ACCESS_KEY_ID,
                                                           settings.AWS_SECRET_ACCESS_KEY)
        return S3Backend(endpoint=location.endpoint, region=location.region,
                         access_key=creds[0], secret_key=creds[1])
    if settings.DDS_STORAGE_BACKEND == "s3":
        return S3Backend(endpoint=settings.AWS_S3_ENDPOINT_URL,
                         region=settings.AWS_S3_REGION_NAME,
                         access_key=settings.AWS_ACCESS_KEY_ID,
                         secret_key=settings.AWS_SECRET_ACCESS_KEY)
    return LocalBackend()


def storage_for_project(project) -> StorageBackend:
    return storage_for_unit(project.unit)
