"""A complete whose transaction was lost after storage assembled the object (a crash, a
lock timeout) is recovered by the retry: the object is checked and recorded, never left
in storage without a row (issue 13)."""

from __future__ import annotations

import os

import pytest

from transfers.models import File, Upload, UploadStatus
from transfers.storage import storage_for_project
from transfers.tests.helpers import (
    complete,
    complete_batch,
    complete_payload,
    encrypt,
    put_parts,
    start,
)

pytestmark = pytest.mark.django_db(transaction=True)


def _assembled_then_crashed(world, path: str, data: bytes):
    """Start, send the parts, and let storage complete while the database never hears."""
    client = world.client()
    enc = encrypt(data, world.project.public_key)
    up = start(client, world.project, path, len(data)).json()
    etags = put_parts(client, world.project, up, enc.body)
    row = Upload.objects.get(public_id=up["upload_id"])
    backend = storage_for_project(world.project)
    backend.complete_multipart(world.project.bucket, row.object_key, row.multipart_id,
                               sorted(etags.items()))
    return client, up, enc, etags, row


def test_the_retried_complete_records_what_storage_assembled(world, storage):
    data = os.urandom(200_000)
    client, up, enc, etags, row = _assembled_then_crashed(world, "crash/one.bin", data)
    r = complete(client, world.project, up["upload_id"], enc, etags)
    assert r.status_code == 201, r.json()
    f = File.objects.get(project=world.project, path="crash/one.bin")
    assert f.object_key == row.object_key and f.size_stored == len(enc.body)
    row.refresh_from_db()
    assert row.status == UploadStatus.COMPLETED


def test_the_batch_complete_recovers_too(world, storage):
    client, up, enc, etags, _ = _assembled_then_crashed(world, "crash/two.bin",
                                                         os.urandom(70_000))
    r = complete_batch(client, world.project,
                       [{"upload_id": up["upload_id"], **complete_payload(enc, etags)}])
    assert r.status_code == 200, r.json()
    [item] = r.json()["uploads"]
    assert item.get("error") is None, item
    assert File.objects.filter(project=world.project, path="crash/two.bin").exists()


def test_a_complete_that_does_not_match_the_object_aborts_it(world, storage):
    client, up, enc, etags, row = _assembled_then_crashed(world, "crash/bad.bin",
                                                          os.urandom(90_000))
    r = complete(client, world.project, up["upload_id"], enc, etags,
                 size_stored=len(enc.body) + 65_564, compressed=True)
    assert r.status_code == 400, r.json()
    row.refresh_from_db()
    assert row.status == UploadStatus.ABORTED
    assert not File.objects.filter(project=world.project, path="crash/bad.bin").exists()
    backend = storage_for_project(world.project)
    assert backend.head_size(world.project.bucket, row.object_key) is None


def test_an_unrecovered_object_does_not_outlive_the_stale_upload_grace(world, storage):
    """Nobody retries the complete: the hourly stale-upload job deletes the object once
    the upload is older than DDS_UPLOAD_STALE_HOURS."""
    import datetime as dt

    from django.utils import timezone

    from transfers.services import uploads_abort_stale

    _, _, _, _, row = _assembled_then_crashed(world, "crash/orphan.bin", os.urandom(10_000))
    backend = storage_for_project(world.project)
    assert backend.head_size(world.project.bucket, row.object_key) is not None
    assert uploads_abort_stale() == 0  # within the grace period: a retry may still come
    Upload.objects.filter(pk=row.pk).update(created_at=timezone.now() - dt.timedelta(days=2))
    assert uploads_abort_stale() == 1
    assert backend.head_size(world.project.bucket, row.object_key) is None
    row.refresh_from_db()
    assert row.status == UploadStatus.ABORTED


def test_the_multipart_etag_accepts_quoted_etags():
    from transfers.services import multipart_etag

    plain = [(1, "0" * 32), (2, "f" * 32)]
    quoted = [(1, '"' + "0" * 32 + '"'), (2, ' "' + "f" * 32 + '"')]
    assert multipart_etag(quoted) == multipart_etag(plain)
    assert multipart_etag(plain).endswith("-2")
