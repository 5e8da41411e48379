"""Storage reconciliation: the catalogue against what storage holds, per project bucket.

Four findings:

- **orphan objects**: an object in a project's bucket that no File row names (a crashed
  complete, a deletion task that never ran, the leftovers of a purged project), older
  than the grace period (``DDS_RECONCILE_GRACE_HOURS``, default 24). Younger objects and
  every object of an upload in progress are never orphans: a complete assembles the
  object before its File row commits, and an overwritten object is deleted by a task
  after the commit.
- **missing objects**: a File row whose object storage does not have. Its live version
  is flagged lost (``FileVersion.lost_at``, audited ``file.lost`` once), so a download
  of it is refused clearly instead of failing in storage; a later run that finds the
  object again (restored from a backup) clears the flag, and uploading the file again
  gives a new version that is not lost.
- **stale buckets**: a bucket named like DDS's (``dds-``/a location's prefix) of no
  project (unknown), or of a deleted/archived project whose storage was purged.
- **missing buckets**: a project with files whose bucket does not exist (every file of
  it is a missing object too).

Besides, a multipart upload storage keeps open for no upload in progress (its parts cost
storage but are no object yet), older than the grace period, is an **orphan upload**;
``delete`` aborts it.

``delete`` deletes orphan objects only (never a catalogued object), and then the buckets
of purged projects once they are empty (storage refuses to delete a bucket that is not).
A bucket of no project is reported and never deleted: on a shared endpoint it may be
another installation's; an operator decides. ``dry_run`` changes nothing: no flag,
no deletion, no audit. Projects deleted or archived but not purged yet are left to the
purge job (``projects_storage_cleanup``).

Storage is listed page by page (ListObjectsV2 continuation), keys and sizes only; per
project the catalogue's object keys are held in a set. Candidates are checked again
against the catalogue (and missing objects against storage) after the listing, so rows
and objects written or removed while the bucket was listed are not reported; ``delete``
checks each small batch of orphans once more right before deleting it. An object whose
upload finished within the grace period is no orphan either (S3 dates a multipart object
by the start of its upload, so a long upload's object looks old on completion).

A store that shows none of its project buckets while the catalogue has files on it (a
volume not mounted, a wrong DDS_LOCAL_STORAGE_ROOT, an endpoint answering 404 for every
bucket) is a store error like an unreachable one: nothing is flagged lost or deleted. A
bucket is matched against the projects of the units on its own store only.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from accounts.models import Unit
from audit.actions import AuditAction
from audit.services import audit_record
from jobs.runner import operator_emails
from mail.services import mail_send_template
from projects.models import FINAL_STATUSES, Project
from transfers.errors import BadInput, StorageRejected, StorageUnavailable
from transfers.models import File, FileVersion, StorageLocation, Upload, UploadStatus
from transfers.storage import StorageBackend, storage_for_unit, storage_identity_for_unit

logger = logging.getLogger("dds.reconcile")

#: Suffix of an object the local backend is still assembling (``<key>.assembling``).
_ASSEMBLING = ".assembling"
#: Keys per catalogue query.
_BATCH = 1000
#: Orphans per DeleteObjects call: each batch is checked against the catalogue again
#: right before it is deleted, so the window for a commit to slip in stays short.
_DELETE_BATCH = 100
#: Paths named in one ``file.lost`` audit event (the count is always there).
_AUDIT_PATHS = 100


def reconcile_grace() -> dt.timedelta:
    """How old an uncatalogued object must be to be an orphan (DDS_RECONCILE_GRACE_HOURS)."""
    return dt.timedelta(hours=float(settings.DDS_RECONCILE_GRACE_HOURS))


# --------------------------------------------------------------------------- report


@dataclass
class OrphanObject:
    key: str
    size: int
    last_modified: dt.datetime
    deleted: bool = False


@dataclass
class OrphanUpload:
    key: str
    upload_id: str
    initiated: dt.datetime | None
    aborted: bool = False


@dataclass
class MissingObject:
    path: str
    object_key: str
    version: int | None  #: the live FileVersion's id
    uploaded_at: dt.datetime


@dataclass
class ProjectReport:
    project: str  #: public id
    unit: str  #: internal ref
    bucket: str
    status: str
    objects: int = 0  #: objects listed
    stored_bytes: int = 0  #: their bytes
    missing_bucket: bool = False
    orphans: list[OrphanObject] = field(default_factory=list)
    orphan_uploads: list[OrphanUpload] = field(default_factory=list)
    missing: list[MissingObject] = field(default_factory=list)
    newly_lost: int = 0  #: versions flagged lost by this run
    found_again: int = 0  #: versions flagged lost earlier whose object is back

    @property
    def has_findings(self) -> bool:
        return bool(self.orphans or self.orphan_uploads or self.missing
                    or self.missing_bucket or self.found_again)


@dataclass
class StaleBucket:
    bucket: str
    storage: str  #: which store (its label)
    project: str | None  #: public id, None for a bucket of no project
    reason: str  #: "unknown", "deleted" or "archived"
    empty: bool
    deleted: bool = False


@dataclass
class Report:
    started_at: dt.datetime
    grace_hours: float
    delete: bool
    dry_run: bool
    unit: str | None
    projects_checked: int = 0
    projects: list[ProjectReport] = field(default_factory=list)  #: those with findings
    stale_buckets: list[StaleBucket] = field(default_factory=list)
    #: Stores or buckets that could not be reconciled (the run then fails at the end).
    errors: list[str] = field(default_factory=list)

    @property
    def totals(self) -> dict[str, int]:
        orphans = [o for p in self.projects for o in p.orphans]
        return {
            "projects_checked": self.projects_checked,
            "orphan_objects": len(orphans),
            "orphan_bytes": sum(o.size for o in orphans),
            "orphans_deleted": sum(o.deleted for o in orphans),
            "orphan_uploads": sum(len(p.orphan_uploads) for p in self.projects),
            "orphan_uploads_aborted": sum(u.aborted for p in self.projects
                                          for u in p.orphan_uploads),
            "missing_objects": sum(len(p.missing) for p in self.projects),
            "newly_lost": sum(p.newly_lost for p in self.projects),
            "found_again": sum(p.found_again for p in self.projects),
            "missing_buckets": sum(p.missing_bucket for p in self.projects),
            "stale_buckets": len(self.stale_buckets),
            "stale_buckets_deleted": sum(b.deleted for b in self.stale_buckets),
            "errors": len(self.errors),
        }

    @property
    def has_findings(self) -> bool:
        return bool(self.projects or self.stale_buckets)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (datetimes as ISO 8601)."""
        def plain(value: Any) -> Any:
            if isinstance(value, dt.datetime):
                return value.isoformat()
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, list):
                return [plain(v) for v in value]
            return value

        data: dict[str, Any] = plain(asdict(self))
        data["totals"] = self.totals
        return data


# --------------------------------------------------------------------------- per project


def _catalogue(project: Project) -> dict[str, int]:
    """object key -> File id of every file of the project."""
    return dict(File.objects.filter(project=project).values_list("object_key", "pk"))


def _in_progress_keys(project: Project) -> set[str]:
    return set(Upload.objects.filter(project=project, status=UploadStatus.IN_PROGRESS)
               .values_list("object_key", flat=True))


def _base_key(key: str) -> str:
    return key.removesuffix(_ASSEMBLING)


_T = TypeVar("_T")


def _batches(items: list[_T], size: int = _BATCH) -> Iterable[list[_T]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _orphans_confirm(project: Project, candidates: list[OrphanObject],
                     cutoff: dt.datetime) -> list[OrphanObject]:
    """Drop candidates that a row written since the bucket was listed now names: a file,
    an upload in progress, or an upload finished within the grace period.

    The last one because an object's age is not the age of its upload: S3 dates a
    multipart object by the *start* of its upload, so an upload longer than the grace
    period completes into an object that already looks old. The uploads are read before
    the files: a complete commits its File row and its upload's ``completed`` status
    together, so whichever side of that commit the first query falls on, one of the two
    queries sees it (the other order could miss both)."""
    keys = list({_base_key(c.key) for c in candidates})
    taken: set[str] = set()
    for batch in _batches(keys):
        taken.update(Upload.objects.filter(project=project, object_key__in=batch)
                     .filter(Q(status=UploadStatus.IN_PROGRESS) | Q(finished_at__gt=cutoff))
                     .values_list("object_key", flat=True))
        taken.update(File.objects.filter(project=project, object_key__in=batch)
                     .values_list("object_key", flat=True))
    return [c for c in candidates if _base_key(c.key) not in taken]


def _orphans_delete(backend: StorageBackend, project: Project, orphans: list[OrphanObject],
                    cutoff: dt.datetime) -> list[OrphanObject]:
    """Delete the orphans in small batches, each checked against the catalogue again
    immediately before its DeleteObjects (a complete may have committed since the
    listing's check). Returns the orphans still orphans, now deleted; the others are
    catalogued (or being written) after all, and left alone."""
    deleted: list[OrphanObject] = []
    for batch in _batches(list(orphans), _DELETE_BATCH):
        still = _orphans_confirm(project, batch, cutoff)
        if still:
            backend.delete_objects(project.bucket, [o.key for o in still])
            for o in still:
                o.deleted = True
            deleted += still
    return deleted


def _orphan_uploads(backend: StorageBackend, project: Project,
                    cutoff: dt.datetime) -> list[OrphanUpload]:
    """Multipart uploads open in storage for no upload in progress, older than the grace
    period (checked again against the rows after the listing)."""
    def active() -> set[str]:
        return set(Upload.objects.filter(project=project, status=UploadStatus.IN_PROGRESS)
                   .values_list("multipart_id", flat=True))

    known = active()
    candidates = [OrphanUpload(m.key, m.upload_id, m.initiated)
                  for m in backend.iter_multipart(project.bucket)
                  if m.upload_id not in known
                  and (m.initiated is None or m.initiated <= cutoff)]
    if candidates:
        known = active()
        candidates = [c for c in candidates if c.upload_id not in known]
    return candidates


def _missing_confirm(backend: StorageBackend, project: Project, keys: set[str],
                     bucket_exists: bool) -> list[MissingObject]:
    """The files (still catalogued) of ``keys`` whose object storage really lacks."""
    missing: list[MissingObject] = []
    for batch in _batches(sorted(keys)):
        rows = File.objects.filter(project=project, object_key__in=batch).order_by("path")
        live = dict(FileVersion.objects.filter(project=project, object_key__in=batch,
                                               deleted_at__isnull=True)
                    .values_list("object_key", "pk"))
        for f in rows.only("path", "object_key", "uploaded_at"):
            # Removed since the listing began? Then it is not missing (it is gone).
            if bucket_exists and backend.head_size(project.bucket, f.object_key) is not None:
                continue
            missing.append(MissingObject(f.path, f.object_key, live.get(f.object_key),
                                         f.uploaded_at))
    missing.sort(key=lambda m: m.path)
    return missing


def _lost_flag(project: Project, rep: ProjectReport, now: dt.datetime) -> None:
    """Flag the live versions of the missing files lost (once), audit them; clear the
    flag of versions whose object is back."""
    missing_keys = {m.object_key for m in rep.missing}
    with transaction.atomic():
        newly: list[str] = []
        for batch in _batches(sorted(missing_keys)):
            ids = list(FileVersion.objects.select_for_update()
                       .filter(project=project, object_key__in=batch,
                               deleted_at__isnull=True, lost_at__isnull=True)
                       .values_list("object_key", flat=True))
            if ids:
                FileVersion.objects.filter(project=project, object_key__in=ids,
                                           deleted_at__isnull=True,
                                           lost_at__isnull=True).update(lost_at=now)
                newly += ids
        rep.newly_lost = len(newly)
        rep.found_again = (FileVersion.objects
                           .filter(project=project, lost_at__isnull=False,
                                   deleted_at__isnull=True)
                           .exclude(object_key__in=missing_keys).update(lost_at=None))
        if newly:
            keys = set(newly)
            paths = [m.path for m in rep.missing if m.object_key in keys]
            audit_record(action=AuditAction.FILE_LOST, project=project,
                         target=paths[0] if len(paths) == 1 else f"{len(paths)} files",
                         details={"count": len(paths), "paths": paths[:_AUDIT_PATHS],
                                  "missing_bucket": rep.missing_bucket})


def _project_reconcile(*, backend: StorageBackend, project: Project, cutoff: dt.datetime,
                       delete: bool, dry_run: bool, now: dt.datetime) -> ProjectReport:
    rep = ProjectReport(project.public_id, project.unit.internal_ref, project.bucket,
                        project.status)
    catalogue = _catalogue(project)
    exists = backend.bucket_exists(project.bucket)
    unseen = set(catalogue)
    if exists:
        in_progress = _in_progress_keys(project)
        candidates: list[OrphanObject] = []
        for obj in backend.iter_objects(project.bucket):
            rep.objects += 1
            rep.stored_bytes += obj.size
            if obj.key in catalogue:
                unseen.discard(obj.key)
            elif _base_key(obj.key) in in_progress or obj.last_modified > cutoff:
                continue  # being written, or too young to judge
            else:
                candidates.append(OrphanObject(obj.key, obj.size, obj.last_modified))
        rep.orphans = _orphans_confirm(project, candidates, cutoff) if candidates else []
        rep.orphan_uploads = _orphan_uploads(backend, project, cutoff)
    else:
        rep.missing_bucket = bool(catalogue)
    rep.missing = _missing_confirm(backend, project, unseen, exists) if unseen else []
    if not dry_run:
        if rep.missing or FileVersion.objects.filter(
                project=project, lost_at__isnull=False, deleted_at__isnull=True).exists():
            _lost_flag(project, rep, now)
        if delete and rep.orphans:
            rep.orphans = _orphans_delete(backend, project, rep.orphans, cutoff)
        if delete:
            for u in rep.orphan_uploads:
                backend.abort_multipart(project.bucket, u.key, u.upload_id)
                u.aborted = True
    return rep


# --------------------------------------------------------------------------- buckets


def _bucket_part(name: str) -> str:
    """As a name appears in a bucket name (projects.services.creation.bucket_name_for)."""
    return name.lower().replace("_", "-")


def _bucket_prefixes() -> list[str]:
    prefixes = {"dds-"}
    prefixes.update(f"{_bucket_part(p)}-" for p in StorageLocation.objects
                    .exclude(bucket_prefix="").values_list("bucket_prefix", flat=True))
    return sorted(prefixes)


def _bucket_empty(backend: StorageBackend, bucket: str) -> bool:
    return (next(iter(backend.iter_objects(bucket, page_size=1)), None) is None
            and next(iter(backend.iter_multipart(bucket)), None) is None)


def _stale_buckets(*, backend: StorageBackend, label: str, store_units: list[Unit],
                   unit: Unit | None, delete: bool, dry_run: bool) -> list[StaleBucket]:
    """Buckets of no project, or of a purged deleted/archived project, on one store.

    A bucket is matched against the projects of the units on *this* store only
    (``store_units``, every unit whose backend is this store, not just those of the
    run): another store may hold a bucket of the same name, and that project's status
    says nothing about this bucket."""
    names = backend.list_buckets(_bucket_prefixes())
    projects = {p.bucket: p for p in Project.objects
                .filter(bucket__in=names, unit__in=[u.pk for u in store_units])
                .only("bucket", "public_id", "status", "storage_purged_at", "unit_id")}
    # A bucket of no project can still be attributed to a unit by its name
    # (``<prefix>-<unit ref>-<counter>``, projects.services.creation.bucket_name_for).
    mine = re.compile(rf"-{re.escape(_bucket_part(unit.internal_ref))}-\d+$") if unit else None
    stale: list[StaleBucket] = []
    for name in names:
        project = projects.get(name)
        if project is None:
            if mine is not None and not mine.search(name):
                continue
            reason = "unknown"
        elif project.status in FINAL_STATUSES and project.storage_purged_at is not None:
            if unit is not None and project.unit_id != unit.pk:
                continue
            reason = str(project.status)
        else:
            continue
        bucket = StaleBucket(name, label, project.public_id if project else None, reason,
                             empty=_bucket_empty(backend, name))
        # Only a purged project's bucket is deleted: a bucket of no project may be
        # another installation's on a shared endpoint, so it is reported, never deleted.
        if delete and not dry_run and bucket.empty and project is not None:
            try:
                backend.delete_bucket(name)
                bucket.deleted = True
            except StorageRejected as exc:  # filled meanwhile: left for the next run
                logger.warning("bucket %s was not deleted: %s", name, exc)
        stale.append(bucket)
    return stale


# --------------------------------------------------------------------------- the run


def _store_visible(backend: StorageBackend, *, units: list[Unit],
                   store_units: list[Unit]) -> bool:
    """False if the store holds none of its projects' buckets while projects of
    ``units`` have files on it: then the store is not what we think it is (a volume not
    mounted, DDS_LOCAL_STORAGE_ROOT wrong, an endpoint answering 404 for every bucket),
    not a store that lost everything. True as soon as one bucket is seen (the run's
    projects with files first, then any project bucket of the store's units)."""
    with_files = (Project.objects.filter(unit__in=[u.pk for u in units])
                  .filter(Exists(File.objects.filter(project=OuterRef("pk"))))
                  .order_by("public_id").values_list("bucket", flat=True))
    def seen(bucket: str) -> bool:
        try:
            return backend.bucket_exists(bucket)
        except StorageRejected:  # it answered about this bucket (the project's error)
            return True

    tried: set[str] = set()
    for bucket in with_files.iterator():
        if seen(bucket):
            return True
        tried.add(bucket)
    if not tried:
        return True  # nothing would be flagged: no files, nothing to protect
    others = (Project.objects.filter(unit__in=[u.pk for u in store_units])
              .exclude(bucket__in=tried).exclude(bucket="").order_by("public_id")
              .values_list("bucket", flat=True))
    return any(seen(bucket) for bucket in others.iterator())


def _store_reconcile(*, report: Report, backend: StorageBackend, label: str,
                     units: list[Unit], store_units: list[Unit], unit: Unit | None,
                     cutoff: dt.datetime, delete: bool, dry_run: bool, now: dt.datetime,
                     seen_buckets: set[tuple[str, str]]) -> None:
    """Every project bucket of ``units`` on one store, then the store's stale buckets
    (``store_units``: every unit on this store, ``units`` those of the run).

    A store that shows none of its project buckets although there are files on it is a
    store error (StorageUnavailable, as an unreachable store): nothing is flagged lost,
    nothing deleted. One missing bucket among others that exist is a missing bucket."""
    if not _store_visible(backend, units=units, store_units=store_units):
        raise StorageUnavailable(
            "none of its project buckets exists, though the catalogue has files there "
            "(not mounted, or the wrong endpoint/root?); nothing was flagged lost")
    projects = (Project.objects.select_related("unit").filter(unit__in=units)
                .order_by("public_id"))
    for project in projects.iterator():
        if project.status in FINAL_STATUSES and project.storage_purged_at is None:
            continue  # the purge job's (projects_storage_cleanup)
        report.projects_checked += 1
        try:
            rep = _project_reconcile(backend=backend, project=project, cutoff=cutoff,
                                     delete=delete, dry_run=dry_run, now=now)
        except StorageRejected as exc:  # this bucket only (e.g. its policy): go on
            report.errors.append(f"{project.public_id} ({project.bucket}): {exc}")
            logger.error("bucket %s could not be reconciled: %s", project.bucket, exc)
            continue
        if rep.has_findings:
            report.projects.append(rep)
    for bucket in _stale_buckets(backend=backend, label=label, store_units=store_units,
                                 unit=unit, delete=delete, dry_run=dry_run):
        if (label, bucket.bucket) not in seen_buckets:
            seen_buckets.add((label, bucket.bucket))
            report.stale_buckets.append(bucket)


def storage_reconcile(*, unit: Unit | None = None, delete: bool = False,
                      dry_run: bool = False, now: dt.datetime | None = None) -> Report:
    """Compare the catalogue with storage (every unit, or ``unit``); see the module
    docstring. Audited ``storage.reconcile`` with the totals, unless ``dry_run``.

    A store that cannot be reached (or a bucket storage refuses to list) does not stop
    the others: it is named in ``Report.errors``, and the caller fails the run after
    reporting (``storage_reconcile`` command: non-zero exit, the job's failure email)."""
    if delete and dry_run:
        raise BadInput("A dry run deletes nothing: give delete or dry_run, not both.")
    now = now or timezone.now()
    grace = reconcile_grace()
    cutoff = now - grace
    report = Report(started_at=now, grace_hours=grace.total_seconds() / 3600, delete=delete,
                    dry_run=dry_run, unit=unit.internal_ref if unit else None)
    # Every unit's store, so that a store's buckets are matched against the projects of
    # all its units even when one unit is reconciled; the run reconciles ``unit``'s only.
    stores: dict[str, tuple[str, list[Unit], list[Unit]]] = {}  # label, run's, all
    for u in Unit.objects.order_by("pk"):
        key, label = storage_identity_for_unit(u)
        stores.setdefault(key, (label, [], []))[2].append(u)
        if unit is None or u.pk == unit.pk:
            stores[key][1].append(u)
    seen_buckets: set[tuple[str, str]] = set()
    for label, members, store_units in stores.values():
        if not members:
            continue  # no unit of this run is on it
        backend = storage_for_unit(members[0])
        try:
            _store_reconcile(report=report, backend=backend, label=label, units=members,
                             store_units=store_units, unit=unit, cutoff=cutoff,
                             delete=delete, dry_run=dry_run, now=now,
                             seen_buckets=seen_buckets)
        except StorageUnavailable as exc:
            # This store is down (or refuses our credentials): the others are still
            # reconciled, and the run fails at the end (the caller raises on errors).
            report.errors.append(f"{label}: {exc}")
            logger.error("storage %s could not be reconciled: %s", label, exc)
    if not dry_run:
        audit_record(action=AuditAction.STORAGE_RECONCILE,
                     target=unit.name if unit else "all units",
                     details={**report.totals, "delete": delete,
                              "grace_hours": report.grace_hours})
    totals = report.totals
    logger.info("storage reconciled: %s", totals, extra={"totals": totals})
    return report


@transaction.atomic
def storage_reconcile_report_send(*, report: Report) -> bool:
    """Email the report to the operators (DDS_OPERATOR_EMAILS); False if none is set."""
    to = operator_emails()
    if not to:
        return False
    mail_send_template(template="transfers/reconcile_report",
                       context={"report": report, "totals": report.totals}, to=to)
    return True
