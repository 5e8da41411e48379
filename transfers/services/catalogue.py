"""The catalogue of a project's files: folder totals, removal of files and folders, and
the objects that become garbage.

``Folder`` rows hold recursive totals (files, original and stored bytes) kept here as
files come and go, so a listing never sums; :func:`folder_totals` is the one place that
adds files up into their folders.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypedDict

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from audit.actions import AuditAction
from audit.services import audit_record
from core.dispatch import after_commit
from projects.models import Project
from transfers.errors import BadInput
from transfers.models import File, FileVersion, Folder
from transfers.paths import path_ancestors, path_normalise, path_split
from transfers.selectors import Op, files_under, transfer_check
from transfers.storage import storage_for_project

OBJECTS_DELETE_TASK = "transfers.tasks.objects_delete"
FOLDER_REMOVE_TASK = "transfers.tasks.folder_remove_task"
#: Paths per removal request.
REMOVE_MAX = 10_000


class Sized(Protocol):
    """A file's place and sizes: a File, or a ``values_list(..., named=True)`` row."""

    @property
    def folder(self) -> str: ...
    @property
    def size_original(self) -> int: ...
    @property
    def size_stored(self) -> int: ...


@dataclass
class Totals:
    files: int = 0
    original: int = 0
    stored: int = 0


def folder_totals(files: Iterable[Sized]) -> dict[str, Totals]:
    """Recursive totals per folder: each file counts in its folder and in every folder
    above it, up to the root ('')."""
    totals: dict[str, Totals] = defaultdict(Totals)
    for f in files:
        for path in path_ancestors(f.folder):
            t = totals[path]
            t.files += 1
            t.original += f.size_original
            t.stored += f.size_stored
    return totals


def folders_add(project: Project, file: Sized) -> None:
    """Count one new file in its folder and the folders above it (creating them)."""
    totals = folder_totals([file])
    Folder.objects.bulk_create(
        [Folder(project=project, path=p, parent=path_split(p)[0] if p else "",
                name=path_split(p)[1] if p else "") for p in totals],
        ignore_conflicts=True)
    # Row locks in path order: one multi-row UPDATE locks them in scan order, which
    # differs between transactions once rows have moved (parallel completes into the same
    # folders deadlocked: bench/upload.py, 10 000 files on 8 threads).
    ids = list(Folder.objects.select_for_update().filter(project=project, path__in=totals)
               .order_by("path").values_list("pk", flat=True))
    Folder.objects.filter(pk__in=ids).update(
        file_count=F("file_count") + 1, size_original=F("size_original") + file.size_original,
        size_stored=F("size_stored") + file.size_stored)


def folders_subtract(project: Project, files: Iterable[Sized]) -> None:
    """Take files out of their folders' totals; a folder left empty disappears."""
    totals = folder_totals(files)
    for path, t in sorted(totals.items()):  # path order, as folders_add locks
        Folder.objects.filter(project=project, path=path).update(
            file_count=F("file_count") - t.files, size_original=F("size_original") - t.original,
            size_stored=F("size_stored") - t.stored)
    # Folders exist only through their files: an emptied folder disappears.
    Folder.objects.filter(project=project, path__in=list(totals), file_count=0).exclude(
        path="").delete()


def objects_delete_later(project: Project, keys: list[str]) -> None:
    """Delete objects no row references any more, once (and only if) this commits."""
    if keys:
        after_commit(OBJECTS_DELETE_TASK, project.pk, keys)


def project_share_lock(project_id: int) -> None:
    """Hold the project row in SHARE mode until commit.

    Status changes and key rotation take the row FOR UPDATE, so they wait for this
    transaction (and it for them), while completes and removals — which only share it —
    do not queue behind one another. SQLite serialises every write anyway.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM projects_project WHERE id = %s FOR SHARE",
                           [project_id])


def _files_delete(project: Project, files: list[File]) -> list[str]:
    """Delete File rows, close their versions, fix folder totals; returns object keys."""
    if not files:
        return []
    ids = [f.pk for f in files]
    FileVersion.objects.filter(file_id__in=ids, deleted_at__isnull=True).update(
        deleted_at=timezone.now())
    File.objects.filter(pk__in=ids).delete()
    folders_subtract(project, files)
    return [f.object_key for f in files]


_DELETE_FIELDS = ("id", "path", "folder", "object_key", "size_original", "size_stored")


class FilesRemoved(TypedDict):
    removed: list[str]
    not_found: list[str]


class FolderRemoved(TypedDict):
    folder: str
    files: int
    queued: bool


@transaction.atomic
def files_remove(*, project: Project, by: User, paths: Sequence[str],
                 ip: str | None = None) -> FilesRemoved:
    """Remove files by path. Unknown paths are reported, not an error."""
    if not paths or len(paths) > REMOVE_MAX:
        raise BadInput("Give 1 to 10 000 paths.")
    wanted = {path_normalise(p) for p in paths}
    # Re-checked under the project lock: a release racing this removal wins or waits.
    project_share_lock(project.pk)
    project = Project.objects.select_related("unit").get(pk=project.pk)
    transfer_check(project=project, user=by, op=Op.REMOVE)
    files = list(File.objects.select_for_update().filter(project=project, path__in=wanted)
                 .only(*_DELETE_FIELDS))
    objects_delete_later(project, _files_delete(project, files))
    removed = sorted(f.path for f in files)
    audit_record(action=AuditAction.FILE_REMOVE, actor=by, project=project,
                 target=removed[0] if len(removed) == 1 else f"{len(removed)} files", ip=ip,
                 details={"count": len(removed), "paths": removed[:50]})
    return {"removed": removed, "not_found": sorted(wanted - set(removed))}


def folder_remove(*, project: Project, by: User, folder: str,
                  ip: str | None = None) -> FolderRemoved:
    """Remove a folder and everything under it; large folders go to a Celery task."""
    folder = path_normalise(folder, allow_root=True)
    row = Folder.objects.filter(project=project, path=folder).first()
    if row is None and folder:
        raise BadInput(f"No folder {folder!r} in {project.public_id}.")

    def audited(files: int, queued: bool) -> FolderRemoved:
        audit_record(action=AuditAction.FOLDER_REMOVE, actor=by, project=project,
                     target=folder or "/", ip=ip, details={"files": files, "queued": queued})
        return {"folder": folder, "files": files, "queued": queued}

    count = row.file_count if row else 0
    if count > settings.DDS_FOLDER_REMOVE_SYNC_LIMIT:
        with transaction.atomic():
            after_commit(FOLDER_REMOVE_TASK, project.pk, folder)
            return audited(count, queued=True)
    # Not one transaction: each batch commits, so a failure half-way keeps what is done.
    return audited(folder_remove_batches(project=project, folder=folder), queued=False)


def folder_remove_batches(*, project: Project, folder: str, batch_size: int = 1000) -> int:
    """Remove files under ``folder`` in committed batches (resumable, idempotent)."""
    total = 0
    while True:
        with transaction.atomic():
            batch = list(files_under(project=project, folder=folder).select_for_update(
                skip_locked=True).order_by("pk").only(*_DELETE_FIELDS)[:batch_size])
            if not batch:
                return total
            objects_delete_later(project, _files_delete(project, batch))
        total += len(batch)


def objects_delete(*, project: Project, keys: Sequence[str]) -> None:
    """Delete objects that no row references any more (after overwrite/removal)."""
    storage_for_project(project).delete_objects(project.bucket, list(keys))


def folders_rebuild(*, project: Project) -> int:
    """Recompute the Folder rows of a project from its files (repair; bulk loads)."""
    rows = (File.objects.filter(project=project)
            .values_list("folder", "size_original", "size_stored", named=True)
            .iterator(chunk_size=5000))
    totals = folder_totals(rows)
    totals.setdefault("", Totals())  # the root always exists
    with transaction.atomic():
        Folder.objects.filter(project=project).delete()
        Folder.objects.bulk_create(
            [Folder(project=project, path=p, parent=path_split(p)[0] if p else "",
                    name=path_split(p)[1] if p else "", file_count=t.files,
                    size_original=t.original, size_stored=t.stored)
             for p, t in totals.items()], batch_size=2000)
    return len(totals)
