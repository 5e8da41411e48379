"""Thin Celery tasks: ids in, the service does the work; safe to run twice."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from projects.models import Project
from transfers import services
from transfers.errors import StorageUnavailable
from transfers.rotation import project_key_rotation_run

_RETRY = {"autoretry_for": (OperationalError, StorageUnavailable), "retry_backoff": True,
          "max_retries": 10, "acks_late": True}


@shared_task(**_RETRY)
def objects_delete(project_id: int, keys: list[str]) -> None:
    project = Project.objects.select_related("unit").filter(pk=project_id).first()
    if project is None:
        return
    services.objects_delete(project=project, keys=keys)


@shared_task(**_RETRY)
def folder_remove_task(project_id: int, folder: str, user_id: int | None) -> None:
    project = Project.objects.select_related("unit").filter(pk=project_id).first()
    if project is None:
        return
    services.folder_remove_batches(project=project, folder=folder)


@shared_task(**_RETRY)
def uploads_abort_stale() -> int:
    return services.uploads_abort_stale()


@shared_task(**_RETRY)
def usage_record_last_month() -> int:
    return services.usage_record_last_month()



@shared_task(name="transfers.tasks.rotate_project_key", autoretry_for=(OperationalError,),
             retry_backoff=True, max_retries=8, acks_late=True)
def rotate_project_key(rotation_id: int) -> None:
    """Only the rotation's id travels through the broker; the keys stay sealed in the DB."""
    project_key_rotation_run(rotation_id=rotation_id)
