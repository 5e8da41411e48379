"""Emptying a project's storage: every object and multipart upload of a deleted or
archived project, and the rows that pointed at them.

Storage is listed, not the database, so objects whose rows are already gone (a crashed
earlier run, a concurrent run) are found too; deleting a missing key or aborting a
finished upload is not an error, so running twice or concurrently is safe.
``StorageUnavailable`` propagates: the caller retries later and the next run finishes.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from projects.errors import ProjectRuleError
from projects.models import FINAL_STATUSES, Project
from projects.selectors import projects_due_for_cleanup
from projects.services.scheduling import run_each_project
from transfers.models import File, FileVersion, Folder, Upload, UploadStatus
from transfers.storage import StorageBackend, storage_for_project


def _multiparts_abort(backend: StorageBackend, bucket: str, batch_size: int) -> None:
    while pending := backend.list_multipart(bucket, batch_size):
        for key, upload_id in pending:
            backend.abort_multipart(bucket, key, upload_id)


def _objects_delete_all(backend: StorageBackend, bucket: str, batch_size: int) -> int:
    removed = 0
    while keys := backend.list_objects(bucket, batch_size):
        backend.delete_objects(bucket, keys)
        removed += len(keys)
    return removed


def _rows_close(project: Project, now: dt.datetime, batch_size: int) -> None:
    """Uploads aborted, File rows deleted and their live versions closed, in batches."""
    Upload.objects.filter(project=project, status=UploadStatus.IN_PROGRESS).update(
        status=UploadStatus.ABORTED, finished_at=now)
    while True:
        with transaction.atomic():
            ids = list(File.objects.filter(project=project).values_list("pk", flat=True)
                       [:batch_size])
            if not ids:
                break
            FileVersion.objects.filter(file_id__in=ids, deleted_at__isnull=True).update(
                deleted_at=now)
            File.objects.filter(pk__in=ids).delete()
    # Versions whose File row was already gone (earlier partial run).
    FileVersion.objects.filter(project=project, deleted_at__isnull=True).update(
        deleted_at=now)
    Folder.objects.filter(project=project).delete()


def project_storage_purge(*, project: Project, batch_size: int = 1000) -> int:
    """Remove every object of a project (and abort its multipart uploads), in batches,
    then its File rows, closing their live versions. Returns the objects removed."""
    backend = storage_for_project(project)
    _multiparts_abort(backend, project.bucket, batch_size)
    removed = _objects_delete_all(backend, project.bucket, batch_size)
    _rows_close(project, timezone.now(), batch_size)
    audit_record(action=AuditAction.PROJECT_STORAGE_PURGE, project=project,
                 details={"objects_removed": removed})
    return removed


def project_storage_cleanup(*, project: Project) -> int:
    """Remove a deleted/archived project's objects; idempotent, safe to run concurrently.

    Only marks the project purged once storage confirms everything is gone, so a failure
    half-way leaves it for the next run.
    """
    if project.status not in FINAL_STATUSES:
        raise ProjectRuleError(
            f"refusing to purge storage of {project.public_id}: it is "
            f"{project.get_status_display()}")
    removed = project_storage_purge(project=project)
    Project.objects.filter(pk=project.pk, storage_purged_at__isnull=True).update(
        storage_purged_at=timezone.now())
    return removed  # audited by project_storage_purge, once


def projects_storage_cleanup_due(*, dry_run: bool = False) -> list[str]:
    """Empty the storage of every deleted/archived project not purged yet (the scheduled
    job; it also finishes what a lost task left). Returns their ids."""
    return run_each_project(projects_due_for_cleanup(),
                            lambda p: project_storage_cleanup(project=p), dry_run=dry_run)
