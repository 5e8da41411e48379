"""S3 outside its default region: buckets need their LocationConstraint (moto enforces it
like AWS), and a bucket that already exists is fine."""

from __future__ import annotations

import secrets

import boto3
import pytest

from transfers.errors import StorageRejected
from transfers.storage import S3Backend
from transfers.storage.credentials import S3Target, StorageCredentials
from transfers.tests.conftest import S3_OTHER_REGION


def _backend(moto_endpoint, region):
    return S3Backend(S3Target(moto_endpoint, region,
                              StorageCredentials("testing-key-id", "testing-secret")))


@pytest.mark.parametrize("region", ["us-east-1", S3_OTHER_REGION])
def test_bucket_is_created_in_the_backends_region(moto_endpoint, region, monkeypatch):
    backend = _backend(moto_endpoint, region)
    bucket = f"dds-{secrets.token_hex(6)}"
    backend.create_bucket(bucket)
    raw = boto3.client("s3", endpoint_url=moto_endpoint, region_name=region,
                       aws_access_key_id="testing-key-id",
                       aws_secret_access_key="testing-secret")
    location = raw.get_bucket_location(Bucket=bucket)["LocationConstraint"]
    assert (location or "us-east-1") == region

    # Two uploads racing to create the bucket: the loser's create meets an existing
    # bucket (BucketAlreadyOwnedByYou outside us-east-1) and carries on.
    real_call = backend._call

    def head_says_missing(method, **kwargs):
        if method == "head_bucket":
            raise StorageRejected("Not Found", storage_code="404")
        return real_call(method, **kwargs)

    monkeypatch.setattr(backend, "_call", head_says_missing)
    backend.create_bucket(bucket)

    # And the bucket works: a multipart object round trip in that region.
    upload_id = backend.start_multipart(bucket, "obj")
    import httpx

    r = httpx.put(backend.presign_part(bucket, "obj", upload_id, 1, 60), content=b"x" * 10)
    assert r.status_code == 200
    backend.complete_multipart(bucket, "obj", upload_id, [(1, r.headers["ETag"])])
    assert backend.head_size(bucket, "obj") == 10


def test_the_default_s3_client_is_made_at_worker_start(s3_region_storage, settings,
                                                        monkeypatch, tmp_path):
    """gunicorn's post_worker_init (ddsite/gunicorn_conf.py, the image's config) makes
    the client: the first request then finds it (and botocore's S3 model) made; with
    local storage there is nothing to make."""
    # gunicorn_conf makes a metrics directory at import unless one is given
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    from ddsite import gunicorn_conf
    from transfers.storage import s3

    class Worker:
        class log:
            @staticmethod
            def exception(msg):
                raise AssertionError(msg)

    s3._clients.clear()
    gunicorn_conf.post_worker_init(Worker())
    assert len(s3._clients) == 1
    s3._clients.clear()
    assert s3.s3_warm_up() is True
    assert len(s3._clients) == 1
    client = next(iter(s3._clients.values()))
    assert client.meta.region_name == S3_OTHER_REGION
    assert S3Backend(s3.s3_target(None))._client is client  # what requests then use
    s3._clients.clear()
    settings.DDS_STORAGE_BACKEND = "local"
    assert s3.s3_warm_up() is False and not s3._clients
