"""Thin Celery tasks: ids in, the service does the work; safe to run twice.

Names are explicit: queued messages name the task, so they survive a move of the code.
"""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from projects.models import Project
from transfers.errors import StorageUnavailable
from transfers.services import catalogue, purge, rotation, uploads, usage

_RETRY = {"autoretry_for": (OperationalError, StorageUnavailable), "retry_backoff": True,
          "max_retries": 10, "acks_late": True}


def _project(project_id: int) -> Project | None:
    return Project.objects.select_related("unit").filter(pk=project_id).first()


@shared_task(name="transfers.tasks.objects_delete", **_RETRY)
def objects_delete(project_id: int, keys: list[str]) -> None:
    project = _project(project_id)
    if project is not None:
        catalogue.objects_delete(project=project, keys=keys)


@shared_task(name="transfers.tasks.folder_remove_task", **_RETRY)
def folder_remove_task(project_id: int, folder: str, *_queued_before: object) -> None:
    # ``_queued_before``: messages queued by an older release also carry the user's id,
    # which the removal never used.
    project = _project(project_id)
    if project is not None:
        catalogue.folder_remove_batches(project=project, folder=folder)


@shared_task(name="transfers.tasks.uploads_abort_stale", **_RETRY)
def uploads_abort_stale() -> int:
    return uploads.uploads_abort_stale()


@shared_task(name="transfers.tasks.usage_record_last_month", **_RETRY)
def usage_record_last_month() -> int:
    return usage.usage_record_last_month()


@shared_task(name="transfers.tasks.project_storage_cleanup",
             autoretry_for=(OSError, ConnectionError, StorageUnavailable), retry_backoff=True,
             max_retries=10, acks_late=True)
def project_storage_cleanup(project_id: int) -> int:
    project = _project(project_id)
    if project is None or project.storage_purged_at is not None:
        return 0
    return purge.project_storage_cleanup(project=project)


@shared_task(name="transfers.tasks.projects_storage_cleanup_due")
def projects_storage_cleanup_due() -> list[str]:
    return purge.projects_storage_cleanup_due()


@shared_task(name="transfers.tasks.rotate_project_key", autoretry_for=(OperationalError,),
             retry_backoff=True, max_retries=8, acks_late=True)
def rotate_project_key(rotation_id: int) -> None:
    """Only the rotation's id travels through the broker; the keys stay sealed in the DB."""
    rotation.project_key_rotation_run(rotation_id=rotation_id)


# The name the task had before it moved here (keys.tasks). A rotation queued by the
# previous release must still find a worker: nothing else resumes it on its own
# (key_rotations_resume is run by operators). Remove once no such release is deployed.
@shared_task(name="keys.tasks.rotate_project_key", autoretry_for=(OperationalError,),
             retry_backoff=True, max_retries=8, acks_late=True)
def rotate_project_key_queued_before_the_move(rotation_id: int) -> None:
    rotate_project_key(rotation_id)
