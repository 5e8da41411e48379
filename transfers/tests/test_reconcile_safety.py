"""Storage reconciliation must not lose data through its own mistakes: a store it cannot
see is not a store that lost everything, a delete must not catch a complete in between,
and a bucket is judged against the projects of its own store only."""

from __future__ import annotations

import datetime as dt
import secrets
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from accounts.tests.factories import UnitFactory
from projects.models import ProjectStatus
from transfers.models import File, FileVersion, StorageLocation, Upload, UploadStatus
from transfers.services import reconcile
from transfers.services.reconcile import storage_reconcile
from transfers.storage import LocalBackend, storage_for_project
from transfers.tests.factories import FileFactory
from transfers.tests.test_reconcile import (
    LATER,
    catalogued,
    events,
    finding,
    keys,
    put,
    unique_project,
)

pytestmark = pytest.mark.django_db


# ------------------------------------------------------------------ a store not seen


def _nothing_lost(*projects) -> None:
    assert not FileVersion.objects.filter(project__in=projects,
                                          lost_at__isnull=False).exists()
    assert events("file.lost") == []


def test_a_local_root_that_does_not_exist_is_a_store_error_not_every_file_lost(
        local_storage, settings, tmp_path, django_capture_on_commit_callbacks):
    settings.DDS_OPERATOR_EMAILS = ["ops@example.org"]
    a, b = unique_project(), unique_project()
    catalogued(a, "a.bin")
    catalogued(b, "b/b.bin")
    settings.DDS_LOCAL_STORAGE_ROOT = tmp_path / "not-mounted"  # no such directory

    report = storage_reconcile()
    assert len(report.errors) == 1 and "none of its project buckets" in report.errors[0]
    assert report.projects == [] and report.totals["missing_objects"] == 0
    _nothing_lost(a, b)

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(CommandError,
                                                                         match="could not"):
        call_command("storage_reconcile", stdout=StringIO())
    [message] = [m for m in mail.outbox if "Storage reconciliation" in m.subject]
    assert "INCOMPLETE" in message.subject
    _nothing_lost(a, b)


def test_an_endpoint_answering_404_for_every_bucket_flags_nothing(s3_storage):
    # The endpoint is reachable but holds none of our buckets (the wrong S3, say).
    unit = UnitFactory(internal_ref=f"r{secrets.token_hex(3)}")
    a, b = unique_project(unit=unit), unique_project(unit=unit)
    catalogued(a, "a.bin")
    catalogued(b, "b.bin")
    report = storage_reconcile(unit=unit, delete=True, now=timezone.now() + LATER)
    assert len(report.errors) == 1 and "none of its project buckets" in report.errors[0]
    assert report.projects == []
    _nothing_lost(a, b)


def test_one_missing_bucket_among_others_is_still_a_missing_bucket(storage):
    unit = UnitFactory(internal_ref=f"r{secrets.token_hex(3)}")
    gone, there = unique_project(unit=unit), unique_project(unit=unit)
    lost = catalogued(gone, "lost.bin")
    put(storage_for_project(there), there.bucket, catalogued(there, "ok.bin").object_key)
    report = storage_reconcile(unit=unit)
    assert report.errors == []
    assert finding(report, gone).missing_bucket and finding(report, there) is None
    assert FileVersion.objects.get(file=lost).lost_at is not None
    [event] = events("file.lost")
    assert event.details["paths"] == ["lost.bin"]


# ------------------------------------------------------------------ delete against completes


def test_an_object_catalogued_after_the_listing_is_not_deleted(storage, monkeypatch):
    project = unique_project()
    backend = storage_for_project(project)
    put(backend, project.bucket, "completing")
    put(backend, project.bucket, "stray")
    real_confirm = reconcile._orphans_confirm
    calls: list[int] = []

    def confirm_then_commit(*args, **kwargs):
        out = real_confirm(*args, **kwargs)
        if not calls:  # a complete commits its File row right after the listing's check
            FileFactory(project=project, path="late.bin", object_key="completing")
        calls.append(1)
        return out

    monkeypatch.setattr(reconcile, "_orphans_confirm", confirm_then_commit)
    report = storage_reconcile(unit=project.unit, delete=True, now=timezone.now() + LATER)
    assert [(o.key, o.deleted) for o in finding(report, project).orphans] == [
        ("stray", True)]
    assert report.totals["orphans_deleted"] == 1
    assert keys(backend, project.bucket) == {"completing"}


def test_the_object_of_an_upload_completed_within_the_grace_period_is_kept(storage):
    # S3 dates a multipart object by the start of its upload: a 30-hour upload that
    # completed an hour ago leaves an object that looks 30 hours old.
    project = unique_project()
    backend = storage_for_project(project)
    now = timezone.now() + LATER
    key = secrets.token_hex(20)
    Upload.objects.create(public_id=secrets.token_urlsafe(8), project=project,
                          path="long.bin", object_key=key, size_original=10,
                          reserved_bytes=10, part_size=10, status=UploadStatus.COMPLETED,
                          finished_at=now - dt.timedelta(hours=1))
    put(backend, project.bucket, key)  # (its File row was replaced meanwhile, say)
    report = storage_reconcile(unit=project.unit, delete=True, now=now)
    assert finding(report, project) is None
    assert keys(backend, project.bucket) == {key}

    # Once the completion is older than the grace period, it is an orphan like any.
    report = storage_reconcile(unit=project.unit, delete=True, now=now + LATER)
    assert [(o.key, o.deleted) for o in finding(report, project).orphans] == [(key, True)]
    assert keys(backend, project.bucket) == set()
    assert not File.objects.filter(project=project).exists()


def test_orphans_are_deleted_in_batches_each_checked_again(storage, monkeypatch):
    monkeypatch.setattr(reconcile, "_DELETE_BATCH", 2)
    project = unique_project()
    backend = storage_for_project(project)
    for i in range(5):
        put(backend, project.bucket, f"stray{i}")
    real_delete = type(backend).delete_objects
    batches: list[list[str]] = []

    def delete_objects(self, bucket, batch):
        batches.append(list(batch))
        if len(batches) == 1:  # stray4 is catalogued while the first batch goes
            FileFactory(project=project, path="late.bin", object_key="stray4")
        return real_delete(self, bucket, batch)

    monkeypatch.setattr(type(backend), "delete_objects", delete_objects)
    report = storage_reconcile(unit=project.unit, delete=True, now=timezone.now() + LATER)
    assert batches == [["stray0", "stray1"], ["stray2", "stray3"]]
    assert sorted(o.key for o in finding(report, project).orphans) == [
        f"stray{i}" for i in range(4)]
    assert keys(backend, project.bucket) == {"stray4"}


# ------------------------------------------------------------------ two stores


@pytest.fixture
def two_stores(local_storage, settings, moto_endpoint):
    """The default store is the local disk; unit ``s3`` has its own S3 location."""
    settings.AWS_ACCESS_KEY_ID = "testing-key-id"
    settings.AWS_SECRET_ACCESS_KEY = "testing-secret"
    local_unit = UnitFactory(internal_ref=f"r{secrets.token_hex(3)}")
    s3_unit = UnitFactory(internal_ref=f"r{secrets.token_hex(3)}")
    StorageLocation.objects.create(unit=s3_unit, name="s3", region="us-east-1",
                                   endpoint=moto_endpoint)
    return local_unit, s3_unit


def test_a_bucket_is_judged_by_the_projects_of_its_own_store(two_stores):
    local_unit, s3_unit = two_stores
    purged = unique_project(unit=local_unit, status=ProjectStatus.DELETED,
                            storage_purged_at=timezone.now())
    live = unique_project(unit=local_unit)
    local = storage_for_project(live)
    assert isinstance(local, LocalBackend)
    local.create_bucket(purged.bucket)  # emptied by the purge
    local.create_bucket(live.bucket)
    s3_project = unique_project(unit=s3_unit)
    s3 = storage_for_project(s3_project)
    assert not isinstance(s3, LocalBackend)
    # On the S3 store, buckets of the same names belong to no project of that store.
    s3.create_bucket(purged.bucket)
    put(s3, live.bucket, "someones")

    report = storage_reconcile(delete=True, now=timezone.now() + LATER)
    assert report.errors == []
    stale = {(b.bucket, b.storage.startswith("local")): (b.project, b.reason, b.deleted)
             for b in report.stale_buckets
             if b.bucket in (purged.bucket, live.bucket)}
    assert stale == {
        (purged.bucket, True): (purged.public_id, "deleted", True),
        (purged.bucket, False): (None, "unknown", False),
        (live.bucket, False): (None, "unknown", False),
    }
    assert not local.bucket_exists(purged.bucket) and local.bucket_exists(live.bucket)
    assert s3.bucket_exists(purged.bucket)  # not the purged project's: left alone
    assert keys(s3, live.bucket) == {"someones"}

