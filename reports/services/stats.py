"""Monthly statistics of the whole system, kept as one row per month (StatsSnapshot).

What each figure counts (also in docs/operator-guide.md, "Statistics"), "as of" being the
end of the month (or the moment the snapshot is taken, for the current month):

- ``units``: units created before "as of".
- ``users_<role>``: active accounts, by role, that had joined before "as of" (an account
  deactivated since is not counted: the current state is all that is kept).
- ``projects_<status>``: projects In Progress, Available or Expired at "as of" (the
  status from their status history), i.e. the projects not archived or deleted.
- ``bytes_stored``: bytes in storage (ciphertext) of the file versions alive at "as of".
- ``bytes_uploaded``: stored bytes of the file versions uploaded (completed) in the month.
- ``bytes_downloaded``: stored bytes of the files handed out for download in the month
  (CLI and portal both prepare downloads through the API; what a client then fetched of
  its presigned URLs is not known to the server).
- ``deliveries_released``: releases in the month: a project becoming Available (first
  release, release after a retraction, or re-release from Expired).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.db import transaction
from django.db.models import Count, F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Role, Unit, User
from audit.actions import AuditAction
from audit.models import AuditEvent
from audit.services import audit_record
from core.errors import BadInput
from projects.models import Project, ProjectStatus, ProjectStatusEvent
from reports.models import StatsSnapshot
from reports.services.months import month_end, month_of, month_start, month_str
from transfers.models import File, FileVersion

ROLE_FIELDS: dict[str, str] = {
    Role.SUPER_ADMIN: "users_super_admin", Role.UNIT_ADMIN: "users_unit_admin",
    Role.UNIT_PERSONNEL: "users_unit_personnel", Role.RESEARCHER: "users_researcher"}
STATUS_FIELDS: dict[str, str] = {
    ProjectStatus.IN_PROGRESS: "projects_in_progress",
    ProjectStatus.AVAILABLE: "projects_available", ProjectStatus.EXPIRED: "projects_expired"}


def _bytes_downloaded(start: dt.datetime, end: dt.datetime) -> int:
    """Stored bytes of the files in every download prepared in [start, end).

    An event that carries ``bytes`` gives it; an older one names its files (``paths``, the
    first 50 of a batch), whose sizes are looked up now (a file removed since counts 0).
    """
    total = 0
    wanted: dict[int, set[str]] = defaultdict(set)
    per_event: list[tuple[int, list[str]]] = []
    events = (AuditEvent.objects.filter(action=AuditAction.FILE_DOWNLOAD.value,
                                        at__gte=start, at__lt=end)
              .values_list("project_id", "details"))
    for project_id, details in events.iterator(chunk_size=2000):
        details = details if isinstance(details, dict) else {}
        given = details.get("bytes")
        if isinstance(given, int) and given >= 0:
            total += given
        elif project_id is not None and isinstance(details.get("paths"), list):
            named = [p for p in details["paths"] if isinstance(p, str)]
            wanted[project_id].update(named)
            per_event.append((project_id, named))
    sizes: dict[tuple[int, str], int] = {}
    for project_id, wanted_paths in wanted.items():
        for path, size in (File.objects.filter(project_id=project_id,
                                               path__in=list(wanted_paths))
                           .values_list("path", "size_stored")):
            sizes[(project_id, path)] = size
    for project_id, paths in per_event:
        total += sum(sizes.get((project_id, p), 0) for p in paths)
    return total


def stats_compute(*, month: dt.date, now: dt.datetime | None = None) -> StatsSnapshot:
    """The figures of ``month`` (an unsaved StatsSnapshot); a 400 for a month not begun."""
    now = now or timezone.now()
    if month > month_of(now):
        raise BadInput(f"{month_str(month)} has not begun yet.")
    start = month_start(month)
    as_of = min(month_end(month), now)
    snap = StatsSnapshot(month=month, taken_at=now, as_of=as_of)
    snap.units = Unit.objects.filter(created_at__lt=as_of).count()
    for role, n in (User.objects.filter(is_active=True, date_joined__lt=as_of)
                    .values("role").annotate(n=Count("pk")).values_list("role", "n")):
        if role in ROLE_FIELDS:
            setattr(snap, ROLE_FIELDS[role], n)
    status_then = (ProjectStatusEvent.objects.filter(project=OuterRef("pk"), at__lt=as_of)
                   .order_by("-at", "-id").values("status")[:1])
    for row in (Project.objects.filter(created_at__lt=as_of)
                .annotate(then=Coalesce(Subquery(status_then), F("status")))
                .values("then").annotate(n=Count("pk")).values_list("then", "n")):
        status, n = row
        if status in STATUS_FIELDS:
            setattr(snap, STATUS_FIELDS[status], n)
    alive = (FileVersion.objects.filter(uploaded_at__lt=as_of)
             .filter(Q(deleted_at__isnull=True) | Q(deleted_at__gt=as_of)))
    snap.bytes_stored = alive.aggregate(n=Sum("size_stored"))["n"] or 0
    snap.bytes_uploaded = (FileVersion.objects.filter(uploaded_at__gte=start,
                                                      uploaded_at__lt=as_of)
                           .aggregate(n=Sum("size_stored"))["n"] or 0)
    snap.bytes_downloaded = _bytes_downloaded(start, as_of)
    snap.deliveries_released = ProjectStatusEvent.objects.filter(
        status=ProjectStatus.AVAILABLE, at__gte=start, at__lt=as_of).count()
    return snap


@transaction.atomic
def stats_snapshot_take(*, month: dt.date, now: dt.datetime | None = None) -> StatsSnapshot:
    """Take (or take again: the month's row is replaced) the snapshot of ``month``."""
    snap = stats_compute(month=month, now=now)
    StatsSnapshot.objects.filter(month=month).delete()
    snap.save()
    audit_record(action=AuditAction.STATS_SNAPSHOT, target=month_str(month),
                 details={"as_of": snap.as_of.isoformat(), "units": snap.units,
                          "bytes_stored": snap.bytes_stored,
                          "deliveries_released": snap.deliveries_released})
    return snap


def stats_snapshot_data(snap: StatsSnapshot) -> dict[str, object]:
    """One snapshot as the API gives it."""
    return {
        "month": month_str(snap.month), "taken_at": snap.taken_at, "as_of": snap.as_of,
        "units": snap.units,
        "users": {"super_admin": snap.users_super_admin, "unit_admin": snap.users_unit_admin,
                  "unit_personnel": snap.users_unit_personnel,
                  "researcher": snap.users_researcher, "total": snap.users_total},
        "projects": {"in_progress": snap.projects_in_progress,
                     "available": snap.projects_available,
                     "expired": snap.projects_expired, "active": snap.projects_active},
        "bytes_stored": snap.bytes_stored, "bytes_uploaded": snap.bytes_uploaded,
        "bytes_downloaded": snap.bytes_downloaded,
        "deliveries_released": snap.deliveries_released,
    }
