"""Deleting or archiving a project leaves no object in storage (moto S3 and local)."""

import datetime as dt

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from projects.models import ProjectStatus
from projects.services import (
    project_archive,
    project_delete,
    project_release,
    projects_archive_due,
    projects_expire_due,
)
from transfers.models import File
from transfers.services import projects_storage_cleanup_due
from transfers.storage import storage_for_project
from transfers.tests.helpers import upload


def _objects(project):
    return storage_for_project(project).list_objects(project.bucket, 100)


def _fill(world):
    client = world.client()
    for path in ("a/1.txt", "a/b/2.txt", "3.txt"):
        upload(client, world.project, path, b"payload " + path.encode())
    assert len(_objects(world.project)) == 3


@pytest.mark.django_db
def test_delete_empties_storage_through_the_queued_task(world, storage,
                                                        django_capture_on_commit_callbacks):
    _fill(world)
    with django_capture_on_commit_callbacks(execute=True):
        project_delete(project=world.project, by=world.staff)
    world.project.refresh_from_db()
    assert world.project.status == ProjectStatus.DELETED
    assert _objects(world.project) == []
    assert not File.objects.filter(project=world.project).exists()
    assert world.project.storage_purged_at is not None


@pytest.mark.django_db
def test_archive_with_a_failed_task_is_finished_by_the_cleanup_job(world, storage, capsys):
    _fill(world)
    # The on-commit task never ran (say the broker was down): the scheduled job finds it.
    project_release(project=world.project, by=world.staff, notify=False)
    project_archive(project=world.project, by=world.staff)
    assert len(_objects(world.project)) == 3
    call_command("projects_storage_cleanup", "--dry-run")
    assert f"would clean up {world.project.public_id}" in capsys.readouterr().out
    assert len(_objects(world.project)) == 3
    assert projects_storage_cleanup_due() == [world.project.public_id]
    assert _objects(world.project) == []
    assert projects_storage_cleanup_due() == []  # nothing left, safe to run again


@pytest.mark.django_db
def test_scheduler_expires_archives_and_empties_storage(world, s3_storage):
    _fill(world)
    project_release(project=world.project, by=world.staff, deadline_days=2, notify=False)
    later = timezone.now() + dt.timedelta(days=3)
    with time_machine.travel(later, tick=False):
        assert projects_expire_due() == [world.project.public_id]
    with time_machine.travel(later + dt.timedelta(days=world.unit.days_in_expired + 1),
                             tick=False):
        assert projects_archive_due() == [world.project.public_id]
        assert projects_storage_cleanup_due() == [world.project.public_id]
    world.project.refresh_from_db()
    assert world.project.status == ProjectStatus.ARCHIVED
    assert _objects(world.project) == []


@pytest.mark.django_db
def test_cleanup_survives_storage_being_down_and_retries_later(world, s3_storage, settings,
                                                               moto_endpoint):
    _fill(world)
    project_delete(project=world.project, by=world.staff)
    settings.AWS_S3_ENDPOINT_URL = "http://127.0.0.1:9"
    assert projects_storage_cleanup_due() == []  # failed, logged, not marked purged
    world.project.refresh_from_db()
    assert world.project.storage_purged_at is None
    settings.AWS_S3_ENDPOINT_URL = moto_endpoint
    assert projects_storage_cleanup_due() == [world.project.public_id]
    assert _objects(world.project) == []
