"""Reads of the transfers app, and the one rule deciding which transfer operation a
project's status allows.

Every view calls :func:`transfer_project_get` (or, to show what a page offers,
:func:`transfer_refusal`); no view repeats a status check. Catalogue
reads run a constant number of queries whatever the project size (``Folder`` holds the
recursive totals, ``File`` is indexed by (project, folder, name) and (project, path)).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings
from django.db.models import (
    Count,
    DateTimeField,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Role, Unit, User
from core.errors import DDSError
from keys.models import KeyRotation, KeyRotationStatus
from projects.models import FINAL_STATUSES, Project, ProjectStatus, ProjectStatusEvent
from projects.selectors import (
    Need,
    project_get_for_user,
    projects_visible_to,
    user_is_project_staff,
)
from transfers.annotations import (
    with_file_totals,
    with_unit_storage,
)
from transfers.errors import BadInput, FileLost, NotAllowed, NotFound, ProjectBusy
from transfers.models import File, FileVersion, Folder, Upload, UploadStatus
from transfers.paths import path_normalise


class Op(StrEnum):
    UPLOAD = "upload"
    REMOVE = "remove"
    LIST = "list"
    DOWNLOAD = "download"


_WRITE_OPS = (Op.UPLOAD, Op.REMOVE)


def transfer_refusal(*, project: Project, user: User, op: Op) -> DDSError | None:
    """Why ``op`` is not allowed on ``project`` now (NotAllowed / ProjectBusy), or None.

    Upload: unit staff, project In Progress (also after a retract, to add what was
    forgotten). Removal (and overwriting, see upload_start): In Progress and never released,
    since released data may already be on a researcher's disk and changing it silently
    would be a lie. Listing and download: researchers only while Available; unit staff (and
    the Super Admin, for metadata) also while In Progress.
    """
    staff = user_is_project_staff(user, project)
    status = ProjectStatus(project.status)
    if op in _WRITE_OPS:
        if not staff:
            return NotAllowed(f"Only {project.unit} staff may {op.value} files in "
                              f"{project.public_id}.")
        if status != ProjectStatus.IN_PROGRESS:
            return NotAllowed(
                f"Project {project.public_id} is {status.label}: files can only be "
                f"{'uploaded' if op == Op.UPLOAD else 'removed'} while In Progress.")
        if op == Op.REMOVE and project.released:
            return NotAllowed(released_files_message(project, "removed"))
        if project.busy:
            return ProjectBusy(f"Project {project.public_id} is busy with another operation "
                               "(e.g. key rotation or status change); try again shortly.")
        return None
    if op == Op.DOWNLOAD and not staff and user.role == Role.SUPER_ADMIN:
        return NotAllowed("The Super Admin holds no project keys and cannot download data.")
    allowed: tuple[ProjectStatus, ...] = (ProjectStatus.AVAILABLE,)
    if staff or user.role == Role.SUPER_ADMIN:
        allowed = (ProjectStatus.AVAILABLE, ProjectStatus.IN_PROGRESS)
    if status not in allowed:
        return NotAllowed(f"Project {project.public_id} is {status.label}: its files can "
                          f"be {'listed' if op == Op.LIST else 'downloaded'} only while "
                          f"{' or '.join(s.label for s in allowed)}.")
    return None


def transfer_check(*, project: Project, user: User, op: Op) -> None:
    """Raise the refusal of :func:`transfer_refusal`, if there is one."""
    refusal = transfer_refusal(project=project, user=user, op=op)
    if refusal is not None:
        raise refusal


def released_files_message(project: Project, verb: str) -> str:
    return (f"Project {project.public_id} has been released: its delivered files cannot be "
            f"{verb} (researchers may already have them). Upload new files instead.")


def transfer_project_get(*, user: User, public_id: str, op: Op) -> Project:
    """Fetch, authorise and status-check a project for one transfer operation."""
    need = Need.STAFF if op in _WRITE_OPS else Need.VIEW
    project = project_get_for_user(user=user, public_id=public_id, need=need)
    transfer_check(project=project, user=user, op=op)
    return project


# --------------------------------------------------------------------------- catalogue


@dataclass
class FolderPage:
    folder: Folder
    folders: list[Folder]
    files: list[File]
    total_folders: int
    total_files: int
    offset: int
    limit: int

    @property
    def next_offset(self) -> int | None:
        end = self.offset + self.limit
        return end if end < self.total_folders + self.total_files else None


def _root(project: Project) -> Folder:
    return Folder(project=project, path="", parent="", name="")


FILE_LIST_FIELDS = ("id", "path", "name", "folder", "size_original", "size_stored",
                    "compressed", "checksum", "uploaded_at", "last_downloaded_at")


def _lost_versions() -> QuerySet[FileVersion]:
    return FileVersion.objects.filter(deleted_at__isnull=True, lost_at__isnull=False)


def with_lost(files: QuerySet[File]) -> QuerySet[File]:
    """Annotate ``lost``: storage reconciliation found the file's object missing
    (its live version's ``lost_at``); downloads of it are refused."""
    return files.annotate(lost=Exists(_lost_versions().filter(file=OuterRef("pk"))))


#: Lost paths named in a refused download (the count is always given).
LOST_NAMED_MAX = 20


def download_lost_check(*, project: Project, paths: Sequence[str] | None = None,
                        folder: str | None = None) -> None:
    """Refuse (409, ``lost``) a download that includes a file whose object storage lost:
    a clear answer instead of a storage error on the GET. One query."""
    lost = _lost_versions().filter(project=project, file__isnull=False)
    if paths is not None:
        lost = lost.filter(file__path__in={path_normalise(p) for p in paths})
    elif folder:
        folder = path_normalise(folder, allow_root=True)
        if folder:
            lost = lost.filter(Q(file__folder=folder) | Q(file__folder__startswith=folder + "/"))
    named = list(lost.order_by("file__path").values_list("file__path", flat=True)
                 [:LOST_NAMED_MAX + 1])
    if not named:
        return
    shown = ", ".join(named[:LOST_NAMED_MAX]) + (", ..." if len(named) > LOST_NAMED_MAX else "")
    which = "A file of this download is" if len(named) == 1 else "Files of this download are"
    raise FileLost(
        f"{which} lost in storage and cannot be downloaded: {shown}. The facility's operators "
        "have been told; download the other files by path, or ask the unit to upload "
        "the lost ones again.", lost=named[:LOST_NAMED_MAX])


def folder_list(*, project: Project, folder: str = "", offset: int = 0,
                limit: int = 100) -> FolderPage:
    """One page of a folder: sub-folders first (by name), then files (by name).

    At most five queries (folder row, folder count, folder page, file page, file count).
    """
    folder = path_normalise(folder, allow_root=True)
    row = Folder.objects.filter(project=project, path=folder).first()
    if row is None:
        if folder:
            raise NotFound(f"No folder {folder!r} in {project.public_id}.")
        row = _root(project)
    subfolders = Folder.objects.filter(project=project, parent=folder).exclude(path="")
    n_folders = subfolders.count()
    folders = list(subfolders.order_by("name")[offset:offset + limit])
    files: list[File] = []
    room = limit - len(folders)
    if room > 0:
        start = max(offset - n_folders, 0)
        files = list(with_lost(File.objects.filter(project=project, folder=folder))
                     .order_by("name").only(*FILE_LIST_FIELDS)[start:start + room])
    n_files = File.objects.filter(project=project, folder=folder).count()
    return FolderPage(row, folders, files, n_folders, n_files, offset, limit)


def folder_tree(*, project: Project, folder: str = "", after: str = "",
                limit: int = 1000) -> tuple[list[File], str | None]:
    """Every file under ``folder`` (recursively), by path, keyset-paginated on ``after``."""
    folder = path_normalise(folder, allow_root=True)
    return files_page(with_lost(files_under(project=project, folder=folder))
                      .only(*FILE_LIST_FIELDS), after=after, limit=limit)


def files_page(files: QuerySet[File], *, after: str,
               limit: int) -> tuple[list[File], str | None]:
    """Up to ``limit`` of ``files`` by path after the path ``after`` (keyset pagination),
    and the cursor of the next page (None on the last)."""
    if after:
        files = files.filter(path__gt=after)
    rows = list(files.order_by("path")[:limit + 1])
    page = rows[:limit]
    return page, (page[-1].path if len(rows) > limit else None)


def files_under(*, project: Project, folder: str) -> QuerySet[File]:
    qs = File.objects.filter(project=project)
    if folder:
        qs = qs.filter(Q(folder=folder) | Q(folder__startswith=folder + "/"))
    return qs


MATCH_MAX = 10_000


def files_match(*, project: Project, paths: Sequence[str]) -> list[str]:
    """Which of ``paths`` exist (normalised). One query however many paths."""
    if len(paths) > MATCH_MAX:
        raise BadInput(f"At most {MATCH_MAX} paths per request.")
    wanted = {path_normalise(p) for p in paths}
    return sorted(File.objects.filter(project=project, path__in=wanted)
                  .values_list("path", flat=True))


def file_get(*, project: Project, path: str) -> File:
    path = path_normalise(path)
    f = with_lost(File.objects.filter(project=project, path=path)).first()
    if f is None:
        raise NotFound(f"No file {path!r} in {project.public_id}.")
    return f


def upload_get(*, project: Project, user: User, public_id: str,
               for_update: bool = False) -> Upload:
    """An upload of this project started by the caller (404 for anything else)."""
    qs = Upload.objects.select_related("project", "project__unit")
    if for_update:
        qs = qs.select_for_update(of=("self",))
    return _upload_mine(qs.filter(project=project, public_id=public_id).first(),
                        project=project, user=user, public_id=public_id)


def uploads_get(*, project: Project, user: User, public_ids: Sequence[str]
                ) -> dict[str, Upload | NotFound | NotAllowed]:
    """:func:`upload_get` for many ids in one query: per id the upload or the refusal."""
    found = {u.public_id: u for u in Upload.objects.select_related("project", "project__unit")
             .filter(project=project, public_id__in=set(public_ids))}
    out: dict[str, Upload | NotFound | NotAllowed] = {}
    for public_id in public_ids:
        try:
            out[public_id] = _upload_mine(found.get(public_id), project=project, user=user,
                                          public_id=public_id)
        except (NotFound, NotAllowed) as exc:
            out[public_id] = exc
    return out


def _upload_mine(upload: Upload | None, *, project: Project, user: User,
                 public_id: str) -> Upload:
    if upload is None:
        raise NotFound(f"No upload {public_id!r} in {project.public_id}.")
    if upload.created_by_id != user.pk:
        # Another user's multipart upload: its parts were encrypted and sent by them.
        raise NotAllowed("This upload was started by another user; only they can "
                         "continue, complete or abort it.")
    return upload


# --------------------------------------------------------------------------- usage & quota


def unit_bytes_used(*, unit_id: int) -> tuple[int, int]:
    """(stored bytes of live versions, bytes reserved by uploads in progress) of a unit."""
    row = (with_unit_storage(Unit.objects.filter(pk=unit_id))  # type: ignore[misc]
           .values_list("stored_bytes", "reserved_bytes").first())
    return (int(row[0]), int(row[1])) if row else (0, 0)


@dataclass(frozen=True)
class ProjectTotals:
    files: int
    stored_bytes: int


def project_totals(*, project: Project) -> ProjectTotals:
    """Files and stored bytes of one project (transfers.annotations counts them)."""
    row = (with_file_totals(Project.objects.filter(pk=project.pk))  # type: ignore[misc]
           .values_list("file_count", "size").first())
    return ProjectTotals(int(row[0]), int(row[1])) if row else ProjectTotals(0, 0)


# --------------------------------------------------------------------------- in flight


def uploads_open_for_object(object_key: str) -> QuerySet[Upload]:
    """The in-progress upload that writes ``object_key`` (none once it is completed or
    aborted): a signed single-PUT URL writes only while there is one."""
    return Upload.objects.filter(object_key=object_key, status=UploadStatus.IN_PROGRESS)


def upload_takes_object(*, object_key: str) -> bool:
    """Whether a signed single-PUT URL may still write ``object_key``: only while its
    upload is in progress (a retry of the PUT is fine then). Replayed after the complete
    or the abort, within its lifetime, it would replace the bytes of a stored file. (The
    early check of the PUT view; ``single_put_publish`` checks again, under the row
    lock, when the body is in.)"""
    return uploads_open_for_object(object_key).exists()


def upload_stale_cutoff(older_than: dt.timedelta | None = None) -> dt.datetime:
    """Uploads in progress created before this are stale (DDS_UPLOAD_STALE_HOURS): the
    hourly job aborts them, and they do not count as work in flight."""
    older_than = older_than or dt.timedelta(hours=int(settings.DDS_UPLOAD_STALE_HOURS))
    return timezone.now() - older_than


@dataclass(frozen=True)
class BusyProject:
    """What one project has in flight (a dataclass: model instances get no extra fields)."""

    id: str
    unit: str
    status: str
    uploads: int
    uploads_since: dt.datetime | None
    rotation_since: dt.datetime | None
    rotation_files_done: int | None
    purge_pending: bool
    purge_since: dt.datetime | None
    locked: bool
    since: dt.datetime | None


def projects_busy_for(user) -> list[BusyProject]:
    """The projects ``user`` may see with work in flight: uploads in progress, a running
    key rotation, a storage purge not yet done, or the project held by a long operation;
    oldest work first. (In transfers, not projects: it reads transfers' uploads.)
    Uploads older than the stale cutoff are abandoned, not in flight: the stale-upload
    job aborts them, and a deploy does not have to wait for them."""
    uploads = Upload.objects.filter(project=OuterRef("pk"), status=UploadStatus.IN_PROGRESS,
                                    created_at__gte=upload_stale_cutoff())
    rotation = KeyRotation.objects.filter(project=OuterRef("pk"),
                                          status=KeyRotationStatus.RUNNING)
    ended = ProjectStatusEvent.objects.filter(project=OuterRef("pk")).order_by("-at", "-id")
    # The candidates first (indexed lookups), so the columns below are computed only for
    # the projects that are busy, not for every project an operator can see.
    in_flight = (
        Q(pk__in=Upload.objects.filter(status=UploadStatus.IN_PROGRESS,
                                       created_at__gte=upload_stale_cutoff())
          .values("project_id"))
        | Q(pk__in=KeyRotation.objects.filter(status=KeyRotationStatus.RUNNING)
            .values("project_id"))
        | Q(busy=True) | Q(status__in=FINAL_STATUSES, storage_purged_at__isnull=True))
    found = (
        projects_visible_to(user).filter(in_flight)
        .annotate(
            n_uploads=Coalesce(Subquery(uploads.order_by().values("project")
                                        .annotate(n=Count("pk")).values("n"),
                                        output_field=IntegerField()), 0),
            uploads_since=Subquery(uploads.order_by("created_at").values("created_at")[:1],
                                   output_field=DateTimeField()),
            rotation_since=Subquery(rotation.values("started_at")[:1],
                                    output_field=DateTimeField()),
            rotation_files_done=Subquery(rotation.values("files_done")[:1],
                                         output_field=IntegerField()),
            last_status_at=Subquery(ended.values("at")[:1], output_field=DateTimeField()))
        .values("public_id", "unit__name", "unit__display_name", "status", "busy",
                "storage_purged_at", "n_uploads", "uploads_since", "rotation_since",
                "rotation_files_done", "last_status_at"))
    rows: list[BusyProject] = []
    for r in found:
        purging = r["status"] in FINAL_STATUSES and r["storage_purged_at"] is None
        purge_since = r["last_status_at"] if purging else None
        started = [t for t in (r["uploads_since"], r["rotation_since"], purge_since) if t]
        rows.append(BusyProject(
            id=r["public_id"], unit=r["unit__display_name"] or r["unit__name"],
            status=r["status"], uploads=r["n_uploads"], uploads_since=r["uploads_since"],
            rotation_since=r["rotation_since"], rotation_files_done=r["rotation_files_done"],
            purge_pending=purging, purge_since=purge_since, locked=r["busy"],
            since=min(started) if started else None))
    far = timezone.now() + dt.timedelta(days=1)
    return sorted(rows, key=lambda b: (b.since or far, b.id))
