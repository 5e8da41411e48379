"""S3 and any S3-compatible endpoint (Ceph, MinIO), through boto3."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

from transfers.errors import StorageRejected, StorageUnavailable
from transfers.storage.base import StoredMultipart, StoredObject, StoredPart, etag_bare
from transfers.storage.credentials import S3Target, s3_target

_clients: dict[tuple[str | None, str | None, str | None, str], Any] = {}
_clients_lock = threading.Lock()

#: What storage answers for a missing bucket; treated as empty where that makes sense.
_NO_BUCKET = "NoSuchBucket"


def _s3_client(target: S3Target) -> Any:
    """One boto3 client per (endpoint, region, credentials) per process: making one costs
    milliseconds and boto3 clients are thread-safe. Changed credentials give a new key."""
    access_key, secret_key = target.credentials
    # The cache key holds a digest of the secret, not the secret itself.
    secret_digest = hashlib.sha256((secret_key or "").encode()).hexdigest()
    key = (target.endpoint, target.region, access_key, secret_digest)
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
            client = boto3.client("s3", endpoint_url=target.endpoint,
                                  region_name=target.region, aws_access_key_id=access_key,
                                  aws_secret_access_key=secret_key, config=config)
            _clients[key] = client
    return client


def s3_warm_up() -> bool:
    """Make the default S3 client now (a web worker calls this as it starts), not in the
    first request that needs it: loading botocore's S3 model took 0.28 CPU-s of the
    first put a worker served on the benchmark machine (py-spy), and clients of other
    locations then reuse the loaded model. False when the default backend is not S3."""
    if settings.DDS_STORAGE_BACKEND != "s3":
        return False
    _s3_client(s3_target(None))
    return True


class S3Backend:
    name = "s3"

    def __init__(self, target: S3Target) -> None:
        self._client = _s3_client(target)

    def _call(self, method: str, **kwargs: Any) -> Any:
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
        try:
            self._call("head_bucket", Bucket=bucket)
            return
        except StorageRejected:
            pass
        kwargs: dict[str, Any] = {"Bucket": bucket}
        region = self._client.meta.region_name
        if region and region != "us-east-1":
            # Outside us-east-1, S3 (and Ceph/MinIO with zone groups) refuses a bucket
            # without the region it is to live in (IllegalLocationConstraintException).
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self._call("create_bucket", **kwargs)
        except StorageRejected as exc:
            # Two uploads racing to create the project's bucket: both are fine.
            if exc.details.get("storage_code") not in ("BucketAlreadyOwnedByYou",
                                                        "BucketAlreadyExists"):
                raise

    def start_multipart(self, bucket: str, key: str, checksum: bool = False) -> str:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key,
                                  "ContentType": "application/octet-stream"}
        if checksum:
            # Every part then carries its CRC32, which S3 verifies against the body
            # (BadDigest) and keeps; the complete must name each part's CRC32.
            kwargs["ChecksumAlgorithm"] = "CRC32"
        answer = self._call("create_multipart_upload", **kwargs)
        return str(answer["UploadId"])

    def presign_part(self, bucket: str, key: str, upload_id: str, number: int, expires: int,
                     max_bytes: int | None = None, crc32: str | None = None) -> str:
        # S3 bounds a part itself (5 GiB) and the complete checks sizes against the parts.
        params: dict[str, Any] = {"Bucket": bucket, "Key": key, "UploadId": upload_id,
                                  "PartNumber": number}
        if crc32 is not None:
            # botocore signs it as a header (X-Amz-SignedHeaders=host;x-amz-checksum-crc32),
            # not as a query parameter: the client must send exactly this value, and S3
            # checks the body against it.
            params["ChecksumCRC32"] = crc32
        return str(self._client.generate_presigned_url("upload_part", Params=params,
                                                       ExpiresIn=expires))

    def presign_put(self, bucket: str, key: str, expires: int, size: int,
                    crc32: str | None = None) -> str:
        """A presigned PutObject of exactly ``size`` bytes: Content-Length is one of the
        signed headers, so S3 refuses a body of any other length (403/400); with
        ``crc32``, ``x-amz-checksum-crc32`` is signed too."""
        params: dict[str, Any] = {"Bucket": bucket, "Key": key, "ContentLength": size}
        if crc32 is not None:
            params["ChecksumCRC32"] = crc32
        return str(self._client.generate_presigned_url("put_object", Params=params,
                                                       ExpiresIn=expires))

    def list_parts(self, bucket: str, key: str, upload_id: str) -> list[StoredPart]:
        parts: list[StoredPart] = []
        marker = 0
        while True:
            resp = self._call("list_parts", Bucket=bucket, Key=key, UploadId=upload_id,
                              PartNumberMarker=marker)
            parts += [StoredPart(p["PartNumber"], etag_bare(p["ETag"]), p["Size"],
                                 p.get("ChecksumCRC32"))
                      for p in resp.get("Parts", [])]
            if not resp.get("IsTruncated"):
                return parts
            marker = resp["NextPartNumberMarker"]

    def complete_multipart(self, bucket: str, key: str, upload_id: str,
                           parts: Sequence[tuple[int, str]],
                           checksums: Mapping[int, str] | None = None) -> None:
        listed: list[dict[str, Any]] = []
        for n, e in parts:
            part: dict[str, Any] = {"PartNumber": n, "ETag": f'"{etag_bare(e)}"'}
            if checksums is not None:
                part["ChecksumCRC32"] = checksums[n]
            listed.append(part)
        self._call("complete_multipart_upload", Bucket=bucket, Key=key, UploadId=upload_id,
                   MultipartUpload={"Parts": listed})

    def abort_multipart(self, bucket: str, key: str, upload_id: str) -> None:
        try:
            self._call("abort_multipart_upload", Bucket=bucket, Key=key, UploadId=upload_id)
        except StorageRejected as exc:
            if exc.details.get("storage_code") not in ("NoSuchUpload", _NO_BUCKET):
                raise

    def _head(self, bucket: str, key: str) -> Any:
        try:
            return self._call("head_object", Bucket=bucket, Key=key)
        except StorageRejected:
            return None

    def head_size(self, bucket: str, key: str) -> int | None:
        head = self._head(bucket, key)
        return None if head is None else int(head["ContentLength"])

    def object_etag(self, bucket: str, key: str) -> str | None:
        head = self._head(bucket, key)
        return None if head is None else etag_bare(head["ETag"])

    def presign_get(self, bucket: str, key: str, expires: int) -> str:
        return str(self._client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires))

    def delete_objects(self, bucket: str, keys: Sequence[str]) -> None:
        for i in range(0, len(keys), 1000):  # the S3 limit per DeleteObjects call
            try:
                self._call("delete_objects", Bucket=bucket, Delete={
                    "Objects": [{"Key": k} for k in keys[i:i + 1000]], "Quiet": True})
            except StorageRejected as exc:
                if exc.details.get("storage_code") != _NO_BUCKET:
                    raise

    def _listing(self, method: str, **kwargs: Any) -> Any:
        """A listing call; a bucket that does not exist (yet) lists nothing."""
        try:
            return self._call(method, **kwargs)
        except StorageRejected as exc:
            if exc.details.get("storage_code") == _NO_BUCKET:
                return {}
            raise

    def list_objects(self, bucket: str, limit: int) -> list[str]:
        resp = self._listing("list_objects_v2", Bucket=bucket, MaxKeys=limit)
        return [o["Key"] for o in resp.get("Contents", [])]

    def list_multipart(self, bucket: str, limit: int) -> list[tuple[str, str]]:
        resp = self._listing("list_multipart_uploads", Bucket=bucket, MaxUploads=limit)
        return [(u["Key"], u["UploadId"]) for u in resp.get("Uploads", [])]

    # ----------------------------------------------------------- reconciliation

    def iter_objects(self, bucket: str, page_size: int = 1000) -> Iterator[StoredObject]:
        """Every object of the bucket, by key, one ListObjectsV2 page at a time (no
        bodies); a missing bucket lists nothing."""
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": bucket, "MaxKeys": page_size}
            if token:
                kwargs["ContinuationToken"] = token
            resp = self._listing("list_objects_v2", **kwargs)
            for o in resp.get("Contents", []):
                yield StoredObject(o["Key"], int(o["Size"]), o["LastModified"])
            token = resp.get("NextContinuationToken")
            if not resp.get("IsTruncated") or not token:
                return

    def iter_multipart(self, bucket: str) -> Iterator[StoredMultipart]:
        markers: dict[str, Any] = {}
        while True:
            resp = self._listing("list_multipart_uploads", Bucket=bucket, **markers)
            for u in resp.get("Uploads", []):
                yield StoredMultipart(u["Key"], u["UploadId"], u.get("Initiated"))
            if not resp.get("IsTruncated"):
                return
            markers = {"KeyMarker": resp.get("NextKeyMarker", ""),
                       "UploadIdMarker": resp.get("NextUploadIdMarker", "")}

    def bucket_exists(self, bucket: str) -> bool:
        try:
            self._call("head_bucket", Bucket=bucket)
        except StorageRejected as exc:
            # HEAD answers without a body: the code is the bare status.
            if exc.details.get("storage_code") in ("404", _NO_BUCKET, "NotFound"):
                return False
            raise
        return True

    def list_buckets(self, prefixes: Sequence[str]) -> list[str]:
        """The buckets these credentials see whose names start with one of ``prefixes``."""
        names: list[str] = []
        token: str | None = None
        while True:
            resp = self._call("list_buckets", **({"ContinuationToken": token} if token else {}))
            names += [b["Name"] for b in resp.get("Buckets", [])
                      if any(b["Name"].startswith(p) for p in prefixes)]
            token = resp.get("ContinuationToken")
            if not token:
                return sorted(names)

    def delete_bucket(self, bucket: str) -> None:
        """Delete an empty bucket (storage refuses a bucket that still holds objects)."""
        try:
            self._call("delete_bucket", Bucket=bucket)
        except StorageRejected as exc:
            if exc.details.get("storage_code") != _NO_BUCKET:
                raise
