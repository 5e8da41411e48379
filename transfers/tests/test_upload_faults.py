"""Bad input and faults: clear 4xx (or 503), no File row, no orphan reservation."""

from __future__ import annotations

import base64
import datetime as dt
import time

import httpx
import pytest

import c4gh
from accounts.models import Unit
from projects.models import Project, ProjectStatus
from transfers.models import File, Upload, UploadStatus
from transfers.selectors import unit_bytes_used
from transfers.services import uploads_abort_stale
from transfers.tests.helpers import (
    api_url,
    complete,
    encrypt,
    part_urls,
    put_parts,
    start,
    upload,
)

pytestmark = pytest.mark.django_db(transaction=True)

DATA = b"x" * 200_000  # 4 segments; one part


def _started(world, client, path="f.bin", data=DATA):
    enc = encrypt(data, world.project.public_key)
    up = start(client, world.project, path, len(data)).json()
    return enc, up


def _no_file_and_reservation_only_for(world, up):
    assert not File.objects.exists()
    stored, reserved = unit_bytes_used(unit_id=world.unit.pk)
    live = Upload.objects.filter(status=UploadStatus.IN_PROGRESS)
    assert reserved == sum(u.reserved_bytes for u in live)
    assert [u.public_id for u in live] == ([up["upload_id"]] if up else [])


@pytest.mark.parametrize("bad", ["../etc/passwd", "/abs/path", "a/../../b", "a\x00b",
                                 "a\nb", "C:\\x", ""])
def test_paths_escaping_the_project_are_refused(world, s3_storage, bad):
    r = start(world.client(), world.project, bad, 10)
    assert r.status_code == 400, r.json()
    assert not Upload.objects.exists()


def test_path_is_normalised(world, s3_storage):
    r = start(world.client(), world.project, "a//b/./c.txt", 10)
    assert r.status_code == 201 and r.json()["path"] == "a/b/c.txt"


def test_wrong_or_missing_etag(world, storage):
    client = world.client()
    enc, up = _started(world, client)
    etags = put_parts(client, world.project, up, enc.body)
    r = complete(client, world.project, up["upload_id"], enc, {1: "0" * 32})
    assert r.status_code == 400 and "ETag" in r.json()["detail"]
    r = complete(client, world.project, up["upload_id"], enc, etags, parts=[])
    assert r.status_code == 400
    _no_file_and_reservation_only_for(world, up)
    # The same upload still completes with the right ETag.
    assert complete(client, world.project, up["upload_id"], enc, etags).status_code == 201


def test_stored_size_mismatch(world, storage):
    client = world.client()
    enc, up = _started(world, client)
    etags = put_parts(client, world.project, up, enc.body[:-100])  # truncated part
    r = complete(client, world.project, up["upload_id"], enc, etags)
    assert r.status_code == 400 and "size" in r.json()["detail"].lower()
    r = complete(client, world.project, up["upload_id"], enc, etags,
                 size_stored=len(enc.body) - 100)
    assert r.status_code == 400
    _no_file_and_reservation_only_for(world, up)


def test_header_that_does_not_parse_or_is_for_another_key(world, storage):
    client = world.client()
    enc, up = _started(world, client)
    etags = put_parts(client, world.project, up, enc.body)
    garbage = base64.b64encode(b"not a crypt4gh header at all").decode()
    r = complete(client, world.project, up["upload_id"], enc, etags, header=garbage)
    assert r.status_code == 400 and "parse" in r.json()["detail"]
    _, other_pk = c4gh.generate_keypair()
    foreign = c4gh.encrypt_header(b"k" * 32, [other_pk])
    r = complete(client, world.project, up["upload_id"], enc, etags,
                 header=base64.b64encode(foreign).decode())
    assert r.status_code == 400 and "not addressed" in r.json()["detail"]
    r = complete(client, world.project, up["upload_id"], enc, etags, header="***")
    assert r.status_code == 400
    _no_file_and_reservation_only_for(world, up)


def test_duplicate_complete_is_a_conflict(world, storage):
    client = world.client()
    enc, up = _started(world, client)
    etags = put_parts(client, world.project, up, enc.body)
    assert complete(client, world.project, up["upload_id"], enc, etags).status_code == 201
    r = complete(client, world.project, up["upload_id"], enc, etags)
    assert r.status_code == 409
    assert File.objects.count() == 1
    assert unit_bytes_used(unit_id=world.unit.pk)[1] == 0


def test_completing_someone_elses_upload(world, storage):
    enc, up = _started(world, world.client())
    etags = put_parts(world.client(), world.project, up, enc.body)
    r = complete(world.client(world.other_staff), world.project, up["upload_id"], enc, etags)
    assert r.status_code == 403
    _no_file_and_reservation_only_for(world, up)


def test_part_url_used_after_expiry(world, local_storage, settings):
    # moto does not enforce presigned-URL expiry; the local backend does, like S3.
    settings.DDS_UPLOAD_PART_URL_TTL = 1
    client = world.client()
    enc, up = _started(world, client)
    url = part_urls(client, world.project, up["upload_id"], [1])[1]
    time.sleep(2.1)
    r = httpx.put(url, content=enc.body, timeout=10)
    assert r.status_code == 403 and "expired" in r.text
    r = complete(client, world.project, up["upload_id"], enc, {1: "0" * 32})
    assert r.status_code == 400
    _no_file_and_reservation_only_for(world, up)


def test_s3_part_urls_are_short_lived(world, s3_storage):
    client = world.client()
    _, up = _started(world, client)
    url = part_urls(client, world.project, up["upload_id"], [1])[1]
    assert "X-Amz-Expires=900" in url
    assert "testing-secret" not in url


def test_quota_refusal_reports_the_numbers(world, storage):
    from core.metrics import TRANSFER_FAILURES

    refusals = TRANSFER_FAILURES.labels(direction="upload", reason="quota")
    before = refusals._value.get()
    Unit.objects.filter(pk=world.unit.pk).update(quota_bytes=300_000)
    client = world.client()
    upload(client, world.project, "one.bin", DATA)
    r = start(client, world.project, "two.bin", len(DATA))
    assert r.status_code == 413
    assert refusals._value.get() == before + 1  # dds_transfer_failures{reason="quota"}
    body = r.json()
    assert body["code"] == "quota_exceeded"
    assert body["quota_bytes"] == 300_000
    assert body["stored_bytes"] == c4gh.stored_size(len(DATA))
    assert body["requested_bytes"] == c4gh.stored_size(len(DATA))
    assert Upload.objects.filter(status=UploadStatus.IN_PROGRESS).count() == 0


def test_reservations_count_against_quota_until_aborted(world, storage):
    Unit.objects.filter(pk=world.unit.pk).update(quota_bytes=300_000)
    client = world.client()
    _, up = _started(world, client, "a.bin")
    assert start(client, world.project, "b.bin", len(DATA)).status_code == 413
    r = client.delete(api_url(world.project, f"uploads/{up['upload_id']}"))
    assert r.status_code == 200 and r.json()["status"] == "aborted"
    assert start(client, world.project, "b.bin", len(DATA)).status_code == 201


def test_stale_uploads_are_aborted(world, storage):
    _, up = _started(world, world.client())
    Upload.objects.update(created_at=Upload.objects.get().created_at - dt.timedelta(hours=25))
    assert uploads_abort_stale() == 1
    assert Upload.objects.get().status == UploadStatus.ABORTED
    assert uploads_abort_stale() == 0


def test_storage_unreachable_is_503_and_the_upload_resumes(world, s3_storage, settings,
                                                          moto_endpoint):
    client = world.client()
    enc, up = _started(world, client)
    etags = put_parts(client, world.project, up, enc.body)
    settings.AWS_S3_ENDPOINT_URL = "http://127.0.0.1:9"  # discard port: nothing listens
    r = complete(client, world.project, up["upload_id"], enc, etags)
    assert r.status_code == 503 and "unreachable" in r.json()["detail"]
    assert "testing-secret" not in r.content.decode()
    r = start(client, world.project, "later.bin", 10)
    assert r.status_code == 503
    assert Upload.objects.count() == 1  # nothing half-written
    settings.AWS_S3_ENDPOINT_URL = moto_endpoint
    assert complete(client, world.project, up["upload_id"], enc, etags).status_code == 201


def test_status_rules(world, s3_storage, researcher):
    from projects.models import ProjectMembership

    client = world.client()
    ProjectMembership.objects.create(project=world.project, user=researcher)
    rc = world.client(researcher)
    assert rc.get(api_url(world.project, "files")).status_code == 403
    assert rc.post(api_url(world.project, "uploads"),
                   {"path": "x", "size_original": 1}, format="json").status_code == 403
    Project.objects.filter(pk=world.project.pk).update(busy=True)
    r = start(client, world.project, "x", 1)
    assert r.status_code == 423
    Project.objects.filter(pk=world.project.pk).update(
        busy=False, status=ProjectStatus.AVAILABLE, released=True)
    r = start(client, world.project, "x", 1)
    assert r.status_code == 403 and "In Progress" in r.json()["detail"]
    assert rc.get(api_url(world.project, "files")).status_code == 200
    assert client.get(api_url(world.project, "files")).status_code == 200
    assert client.post(api_url(world.project, "files/remove"), {"paths": ["x"]},
                       format="json").status_code == 403
    Project.objects.filter(pk=world.project.pk).update(status=ProjectStatus.EXPIRED)
    assert rc.get(api_url(world.project, "files")).status_code == 403


def test_after_a_retract_new_files_upload_but_delivered_ones_stay(world, s3_storage):
    from projects.services import project_release, project_retract

    client = world.client()
    upload(client, world.project, "delivered.txt", b"first delivery")
    project_release(project=world.project, by=world.staff, notify=False)
    project_retract(project=world.project, by=world.staff)
    # A forgotten file can be added...
    upload(client, world.project, "forgotten.txt", b"added after retract")
    # ...but what researchers may already have is neither replaced nor removed.
    r = start(client, world.project, "delivered.txt", 5, overwrite=True)
    assert r.status_code == 403 and "cannot be replaced" in r.json()["detail"]
    r = client.post(api_url(world.project, "files/remove"), {"paths": ["delivered.txt"]},
                    format="json")
    assert r.status_code == 403 and "cannot be removed" in r.json()["detail"]
    assert set(File.objects.values_list("path", flat=True)) == {"delivered.txt",
                                                               "forgotten.txt"}


def test_an_overwrite_started_before_a_release_cannot_complete_after_it(world, s3_storage):
    from projects.services import project_release, project_retract

    client = world.client()
    upload(client, world.project, "a.txt", b"delivered version")
    enc = encrypt(b"silent replacement", world.project.public_key)
    r = start(client, world.project, "a.txt", len(b"silent replacement"), overwrite=True)
    assert r.status_code == 201, r.json()
    up = r.json()
    etags = put_parts(client, world.project, up, enc.body)
    project_release(project=world.project, by=world.staff, notify=False)
    project_retract(project=world.project, by=world.staff)
    r = complete(client, world.project, up["upload_id"], enc, etags)
    assert r.status_code == 403 and "cannot be replaced" in r.json()["detail"]
    assert File.objects.get(path="a.txt").size_original == len(b"delivered version")


def test_complete_refused_while_the_project_is_busy(world, s3_storage):
    client = world.client()
    enc = encrypt(b"late header", world.project.public_key)
    up = start(client, world.project, "late.txt", len(b"late header")).json()
    etags = put_parts(client, world.project, up, enc.body)
    # A key rotation began after this upload started: its header would be for the old key.
    Project.objects.filter(pk=world.project.pk).update(busy=True)
    r = complete(client, world.project, up["upload_id"], enc, etags)
    assert r.status_code == 423
    assert not File.objects.filter(path="late.txt").exists()
    Project.objects.filter(pk=world.project.pk).update(busy=False)
    assert complete(client, world.project, up["upload_id"], enc, etags).status_code == 201
