"""Storage reconciliation (issue #18, item 4) against real storage: moto's S3 server in
its default region and in eu-north-1, and the local backend."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import secrets
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from accounts.tests.factories import UnitFactory
from audit.models import AuditEvent
from projects.models import ProjectStatus
from projects.tests.factories import ProjectFactory
from transfers.errors import BadInput
from transfers.models import File, FileVersion, StorageLocation, Upload
from transfers.services.reconcile import storage_reconcile
from transfers.storage import LocalBackend, StorageBackend, storage_for_project
from transfers.tests.factories import FileFactory
from transfers.tests.helpers import api_url, upload

pytestmark = pytest.mark.django_db

LATER = dt.timedelta(hours=25)  # past the default grace period of 24 hours


def put(backend: StorageBackend, bucket: str, key: str, data: bytes = b"x" * 10) -> None:
    """An object written straight into storage (as a crashed complete would leave it)."""
    backend.create_bucket(bucket)
    if isinstance(backend, LocalBackend):
        backend.object_path(bucket, key).write_bytes(data)
    else:
        backend._client.put_object(Bucket=bucket, Key=key, Body=data)  # type: ignore[attr-defined]


def keys(backend: StorageBackend, bucket: str) -> set[str]:
    return {o.key for o in backend.iter_objects(bucket)}


def catalogued(project, path: str, key: str | None = None, size: int = 10) -> File:
    f = FileFactory(project=project, path=path, object_key=key or secrets.token_hex(20),
                    size_stored=size)
    FileVersion.objects.create(project=project, file=f, object_key=f.object_key,
                               size_stored=size)
    return f


def unique_project(**kwargs):
    # Buckets outlive a test on the session's moto server: each test gets its own names.
    unit = kwargs.pop("unit", None) or UnitFactory(internal_ref=f"r{secrets.token_hex(3)}")
    public_id = f"{unit.internal_ref}-{secrets.randbelow(10**5):05d}"
    return ProjectFactory(unit=unit, public_id=public_id, bucket=f"dds-{public_id}", **kwargs)


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("pk"))


def finding(report, project):
    return next((p for p in report.projects if p.project == project.public_id), None)


# ------------------------------------------------------------------ orphans


def test_an_uncatalogued_object_is_an_orphan_only_after_the_grace_period(storage):
    project = unique_project()
    backend = storage_for_project(project)
    f = catalogued(project, "a/kept.bin")
    put(backend, project.bucket, f.object_key)
    put(backend, project.bucket, "stray", b"y" * 33)

    young = storage_reconcile(unit=project.unit)
    assert finding(young, project) is None  # the stray object is too young to judge

    old = storage_reconcile(unit=project.unit, now=timezone.now() + LATER)
    rep = finding(old, project)
    assert [(o.key, o.size) for o in rep.orphans] == [("stray", 33)]
    assert rep.missing == [] and not rep.missing_bucket
    assert rep.objects == 2
    assert old.totals["orphan_objects"] == 1 and old.totals["orphan_bytes"] == 33
    assert keys(backend, project.bucket) == {f.object_key, "stray"}  # reported, not deleted


def test_the_grace_period_is_a_setting(storage, settings):
    settings.DDS_RECONCILE_GRACE_HOURS = 1
    project = unique_project()
    put(storage_for_project(project), project.bucket, "stray")
    report = storage_reconcile(unit=project.unit,
                               now=timezone.now() + dt.timedelta(hours=2))
    assert [o.key for o in finding(report, project).orphans] == ["stray"]
    assert report.grace_hours == 1


def test_the_object_of_an_upload_in_progress_is_never_an_orphan(storage):
    project = unique_project()
    up = Upload.objects.create(public_id=secrets.token_urlsafe(8), project=project,
                               path="big.bin", object_key=secrets.token_hex(20),
                               size_original=10, reserved_bytes=10, part_size=10)
    # Storage assembled it; the complete's transaction has not committed yet.
    put(storage_for_project(project), project.bucket, up.object_key)
    report = storage_reconcile(unit=project.unit, delete=True,
                               now=timezone.now() + dt.timedelta(days=30))
    assert finding(report, project) is None
    assert up.object_key in keys(storage_for_project(project), project.bucket)


def test_delete_removes_only_orphans_older_than_the_grace_period(storage):
    project = unique_project()
    backend = storage_for_project(project)
    f = catalogued(project, "kept.bin")
    put(backend, project.bucket, f.object_key)
    put(backend, project.bucket, "old-stray")
    report = storage_reconcile(unit=project.unit, delete=True, now=timezone.now() + LATER)
    assert [(o.key, o.deleted) for o in finding(report, project).orphans] == [
        ("old-stray", True)]
    put(backend, project.bucket, "young-stray")
    report = storage_reconcile(unit=project.unit, delete=True)
    assert finding(report, project) is None
    assert keys(backend, project.bucket) == {f.object_key, "young-stray"}


def test_a_real_upload_is_catalogued_and_its_replaced_object_becomes_an_orphan(
        world, storage, monkeypatch):
    client = world.client()
    upload(client, world.project, "data/x.bin", os.urandom(1000))
    key_before = File.objects.get(project=world.project).object_key
    # The task that deletes the replaced object never runs (a lost message).
    monkeypatch.setattr("transfers.services.catalogue.after_commit", lambda *a, **k: None)
    upload(client, world.project, "data/x.bin", os.urandom(1000), overwrite=True)
    report = storage_reconcile(unit=world.unit, now=timezone.now() + LATER)
    rep = finding(report, world.project)
    assert [o.key for o in rep.orphans] == [key_before]
    assert rep.missing == []


# ------------------------------------------------------------------ missing objects


def test_a_missing_object_is_flagged_lost_once_and_audited_once(storage):
    project = unique_project()
    backend = storage_for_project(project)
    here = catalogued(project, "here.bin")
    put(backend, project.bucket, here.object_key)
    gone = catalogued(project, "sub/gone.bin")

    report = storage_reconcile(unit=project.unit)
    rep = finding(report, project)
    assert [(m.path, m.object_key) for m in rep.missing] == [("sub/gone.bin",
                                                              gone.object_key)]
    assert rep.missing[0].version == FileVersion.objects.get(file=gone).pk
    assert rep.newly_lost == 1
    lost = FileVersion.objects.get(file=gone)
    assert lost.lost_at is not None
    assert FileVersion.objects.get(file=here).lost_at is None
    [event] = events("file.lost")
    assert event.details["paths"] == ["sub/gone.bin"]

    again = storage_reconcile(unit=project.unit)
    assert len(finding(again, project).missing) == 1  # still reported...
    assert finding(again, project).newly_lost == 0  # ...but flagged and audited once
    assert len(events("file.lost")) == 1
    assert FileVersion.objects.get(file=gone).lost_at == lost.lost_at


def test_a_lost_object_found_again_clears_the_flag(storage):
    project = unique_project()
    gone = catalogued(project, "gone.bin")
    storage_for_project(project).create_bucket(project.bucket)
    storage_reconcile(unit=project.unit)
    assert FileVersion.objects.get(file=gone).lost_at is not None
    put(storage_for_project(project), project.bucket, gone.object_key)  # restored
    report = storage_reconcile(unit=project.unit)
    assert finding(report, project).found_again == 1
    assert FileVersion.objects.get(file=gone).lost_at is None


def test_a_missing_bucket_is_reported_with_every_file_lost(storage):
    project = unique_project()
    a, b = catalogued(project, "a.bin"), catalogued(project, "b/b.bin")
    empty = unique_project(unit=project.unit)  # no files, no bucket yet: nothing wrong
    # Another bucket of the store is there: the store is seen, this one bucket is gone
    # (a store showing none of its buckets is a store error: test_reconcile_safety.py).
    there = unique_project(unit=project.unit)
    put(storage_for_project(there), there.bucket, catalogued(there, "ok.bin").object_key)
    report = storage_reconcile(unit=project.unit)
    assert report.errors == []
    assert finding(report, there) is None
    rep = finding(report, project)
    assert rep.missing_bucket
    assert {m.path for m in rep.missing} == {"a.bin", "b/b.bin"}
    assert finding(report, empty) is None
    assert report.totals["missing_buckets"] == 1
    assert FileVersion.objects.filter(file__in=[a, b], lost_at__isnull=False).count() == 2


# ------------------------------------------------------------------ buckets


def test_buckets_of_no_project_and_of_purged_projects_are_stale(storage):
    unit = UnitFactory(internal_ref=f"r{secrets.token_hex(3)}")
    live = unique_project(unit=unit)
    backend = storage_for_project(live)
    backend.create_bucket(live.bucket)
    purged = unique_project(unit=unit, status=ProjectStatus.DELETED,
                            storage_purged_at=timezone.now())
    backend.create_bucket(purged.bucket)  # purge empties a bucket, it does not remove it
    archived = unique_project(unit=unit, status=ProjectStatus.ARCHIVED,
                              storage_purged_at=timezone.now())
    put(backend, archived.bucket, "left-behind")
    unknown = f"dds-{unit.internal_ref}-99999"
    put(backend, unknown, "someones")
    other_unknown = f"dds-elsewhere{secrets.token_hex(3)}-00001"  # another unit's name
    backend.create_bucket(other_unknown)
    empty_unknown = f"dds-{unit.internal_ref}-99998"
    backend.create_bucket(empty_unknown)

    report = storage_reconcile(unit=unit)
    stale = {b.bucket: (b.project, b.reason, b.empty, b.deleted)
             for b in report.stale_buckets}
    assert stale == {
        purged.bucket: (purged.public_id, "deleted", True, False),
        archived.bucket: (archived.public_id, "archived", False, False),
        unknown: (None, "unknown", False, False),
        empty_unknown: (None, "unknown", True, False),
    }
    assert live.bucket not in stale and other_unknown not in stale

    # --delete: the purged project's old leftovers are orphans, then its bucket is empty;
    # a bucket of no project, even empty, is left for an operator (whose is it?).
    report = storage_reconcile(unit=unit, delete=True, now=timezone.now() + LATER)
    stale = {b.bucket: b.deleted for b in report.stale_buckets}
    assert stale == {purged.bucket: True, archived.bucket: True, unknown: False,
                     empty_unknown: False}
    assert backend.bucket_exists(empty_unknown)
    assert not backend.bucket_exists(purged.bucket)
    assert not backend.bucket_exists(archived.bucket)
    assert backend.bucket_exists(unknown) and backend.bucket_exists(live.bucket)
    assert keys(backend, unknown) == {"someones"}


def test_a_deleted_project_not_purged_yet_is_left_to_the_purge_job(storage):
    project = unique_project(status=ProjectStatus.DELETED)
    put(storage_for_project(project), project.bucket, "not-purged-yet")
    report = storage_reconcile(unit=project.unit, delete=True, now=timezone.now() + LATER)
    assert finding(report, project) is None and report.stale_buckets == []
    assert keys(storage_for_project(project), project.bucket) == {"not-purged-yet"}


# ------------------------------------------------------------------ dry run, scope


def test_a_dry_run_changes_nothing(storage):
    project = unique_project()
    backend = storage_for_project(project)
    put(backend, project.bucket, "stray")
    gone = catalogued(project, "gone.bin")
    audits = AuditEvent.objects.count()
    report = storage_reconcile(unit=project.unit, dry_run=True, now=timezone.now() + LATER)
    rep = finding(report, project)
    assert [o.key for o in rep.orphans] == ["stray"] and len(rep.missing) == 1
    assert keys(backend, project.bucket) == {"stray"}
    assert FileVersion.objects.get(file=gone).lost_at is None
    assert AuditEvent.objects.count() == audits
    with pytest.raises(BadInput):
        storage_reconcile(unit=project.unit, dry_run=True, delete=True)


def test_one_unit_only_and_the_run_is_audited_with_its_totals(storage):
    mine, theirs = unique_project(), unique_project()
    put(storage_for_project(mine), mine.bucket, "stray")
    put(storage_for_project(theirs), theirs.bucket, "stray")
    report = storage_reconcile(unit=mine.unit, now=timezone.now() + LATER)
    assert finding(report, mine) is not None and finding(report, theirs) is None
    [event] = events("storage.reconcile")
    assert event.details["orphan_objects"] == 1
    assert event.details["projects_checked"] == 1


def test_listing_pages_through_large_buckets(storage):
    project = unique_project()
    backend = storage_for_project(project)
    for i in range(7):
        put(backend, project.bucket, f"k{i}")
    listed = [o.key for o in backend.iter_objects(project.bucket, page_size=2)]
    assert listed == [f"k{i}" for i in range(7)]


# ------------------------------------------------------------------ lost files via the API


def test_a_lost_file_is_listed_as_lost_and_its_download_is_refused(world, storage):
    client = world.client()
    data = os.urandom(2000)
    upload(client, world.project, "run/ok.bin", data)
    upload(client, world.project, "run/lost.bin", data)
    backend = storage_for_project(world.project)
    lost = File.objects.get(project=world.project, path="run/lost.bin")
    backend.delete_objects(world.project.bucket, [lost.object_key])  # storage lost it
    storage_reconcile(unit=world.unit)

    r = client.get(api_url(world.project, "files"), {"folder": "run"})
    assert r.status_code == 200
    assert {f["name"]: f["lost"] for f in r.json()["files"]} == {"ok.bin": False,
                                                                 "lost.bin": True}
    r = client.get(api_url(world.project, "files/info"), {"path": "run/lost.bin"})
    assert r.json()["lost"] is True

    pk = base64.b64encode(os.urandom(32)).decode()
    r = client.post(api_url(world.project, "files/download"),
                    {"public_key": pk, "paths": ["run/lost.bin"]}, format="json")
    assert r.status_code == 409, r.json()
    assert r.json()["lost"] == ["run/lost.bin"]
    assert "lost in storage" in r.json()["detail"]
    r = client.post(api_url(world.project, "files/download"),
                    {"public_key": pk, "folder": "run"}, format="json")
    assert r.status_code == 409 and r.json()["lost"] == ["run/lost.bin"]

    # Uploading it again gives a new version, which is not lost.
    upload(client, world.project, "run/lost.bin", data, overwrite=True)
    r = client.get(api_url(world.project, "files/info"), {"path": "run/lost.bin"})
    assert r.json()["lost"] is False


# ------------------------------------------------------------------ the command


def test_the_command_emails_the_report_to_the_operators(storage, settings,
                                                        django_capture_on_commit_callbacks):
    settings.DDS_OPERATOR_EMAILS = ["ops@example.org"]
    project = unique_project()
    catalogued(project, "gone.bin")
    there = unique_project(unit=project.unit)  # a bucket of the store that is there
    put(storage_for_project(there), there.bucket, catalogued(there, "ok.bin").object_key)
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("storage_reconcile", "--unit", project.unit.internal_ref, stdout=out)
    assert "missing objects: 1" in out.getvalue()
    assert "BUCKET MISSING" in out.getvalue()
    [message] = [m for m in mail.outbox if "Storage reconciliation" in m.subject]
    assert message.to == ["ops@example.org"]
    assert "1 missing" in message.subject
    assert "gone.bin" in message.body and project.public_id in message.body


def test_the_command_prints_json_and_a_dry_run_emails_nothing(
        storage, settings, django_capture_on_commit_callbacks):
    settings.DDS_OPERATOR_EMAILS = ["ops@example.org"]
    project = unique_project()
    put(storage_for_project(project), project.bucket, "stray")
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("storage_reconcile", "--unit", project.unit.internal_ref, "--dry-run",
                     "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert data["dry_run"] is True and data["totals"]["projects_checked"] == 1
    assert not [m for m in mail.outbox if "Storage reconciliation" in m.subject]
    with pytest.raises(CommandError):
        call_command("storage_reconcile", "--delete", "--dry-run")
    with pytest.raises(CommandError):
        call_command("storage_reconcile", "--unit", "no-such-unit")


# ------------------------------------------------------------------ orphan multipart uploads


def test_a_multipart_upload_of_no_upload_in_progress_is_aborted_by_delete(storage):
    project = unique_project()
    backend = storage_for_project(project)
    backend.create_bucket(project.bucket)
    stray_id = backend.start_multipart(project.bucket, "stray-key")
    live = Upload.objects.create(public_id=secrets.token_urlsafe(8), project=project,
                                 path="live.bin", object_key=secrets.token_hex(20),
                                 size_original=10, reserved_bytes=10, part_size=10)
    live.multipart_id = backend.start_multipart(project.bucket, live.object_key)
    live.save()

    if isinstance(backend, LocalBackend):
        # (moto answers a fixed date in 2010 as every upload's Initiated; S3 the real one)
        assert finding(storage_reconcile(unit=project.unit), project) is None  # young
    report = storage_reconcile(unit=project.unit, delete=True, now=timezone.now() + LATER)
    [orphan] = finding(report, project).orphan_uploads
    assert (orphan.key, orphan.upload_id, orphan.aborted) == ("stray-key", stray_id, True)
    assert report.totals["orphan_uploads_aborted"] == 1
    assert {m.upload_id for m in backend.iter_multipart(project.bucket)} == {
        live.multipart_id}


# ------------------------------------------------------------------ failures


def test_unreachable_storage_fails_the_run_after_reporting(s3_storage, settings,
                                                           django_capture_on_commit_callbacks):
    settings.DDS_OPERATOR_EMAILS = ["ops@example.org"]
    settings.AWS_S3_ENDPOINT_URL = "http://127.0.0.1:9"  # nothing listens there
    project = unique_project()
    report = storage_reconcile(unit=project.unit)
    assert len(report.errors) == 1 and "unreachable" in report.errors[0]
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(CommandError,
                                                                         match="could not"):
        call_command("storage_reconcile", "--unit", project.unit.internal_ref,
                     stdout=StringIO())
    [message] = [m for m in mail.outbox if "Storage reconciliation" in m.subject]
    assert "INCOMPLETE" in message.subject and "NOT RECONCILED" in message.body


def test_buckets_named_with_a_storage_location_prefix_are_ours_too(storage):
    unit = UnitFactory(internal_ref=f"r_{secrets.token_hex(3)}")
    StorageLocation.objects.create(unit=unit, name="here", region="local", endpoint="",
                                   bucket_prefix="Acme_Lab")
    project = unique_project(unit=unit)
    backend = storage_for_project(project)
    stray = f"acme-lab-{unit.internal_ref.replace('_', '-')}-00042"
    backend.create_bucket(stray)
    report = storage_reconcile(unit=unit)
    assert [(b.bucket, b.reason) for b in report.stale_buckets] == [(stray, "unknown")]
