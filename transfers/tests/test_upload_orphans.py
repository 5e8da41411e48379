"""An object storage assembled for a complete whose transaction then failed (issue 12:
"database is locked" after CompleteMultipartUpload) is not left behind: the upload stays
in progress, its multipart is gone, and aborting it — what `dds` does when it restarts
the file — deletes the object too."""

from __future__ import annotations

import os

import pytest
from django.db import OperationalError

from transfers.models import File, FileVersion, Upload, UploadStatus
from transfers.storage import storage_for_project
from transfers.tests.helpers import api_url, complete, encrypt, put_parts, start

pytestmark = pytest.mark.django_db(transaction=True)


def test_abort_after_a_failed_complete_deletes_the_assembled_object(world, storage,
                                                                    monkeypatch):
    client = world.client()
    data = os.urandom(200_000)
    enc = encrypt(data, world.project.public_key)
    up = start(client, world.project, "f.bin", len(data)).json()
    etags = put_parts(client, world.project, up, enc.body)

    def locked(*args, **kwargs):
        raise OperationalError("database is locked")

    # The database write after storage assembled the object fails.
    monkeypatch.setattr(FileVersion.objects, "create", locked)
    with pytest.raises(OperationalError):
        complete(client, world.project, up["upload_id"], enc, etags)
    monkeypatch.undo()
    upload = Upload.objects.get(public_id=up["upload_id"])
    project = upload.project
    backend = storage_for_project(project)
    assert upload.status == UploadStatus.IN_PROGRESS and not File.objects.exists()
    assert backend.head_size(project.bucket, upload.object_key) == len(enc.body)

    # The client's resume meets a multipart storage no longer has: a 4xx, not a 500.
    r = client.get(api_url(world.project, f"uploads/{up['upload_id']}/parts"))
    assert r.status_code == 400 and r.json()["storage_code"] == "NoSuchUpload"

    r = client.delete(api_url(world.project, f"uploads/{up['upload_id']}"))
    assert r.status_code == 200
    assert backend.head_size(project.bucket, upload.object_key) is None
    assert backend.list_objects(project.bucket, 10) == []
