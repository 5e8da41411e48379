"""Usage for invoicing: byte-hours of every project per period, from version lifetimes."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection
from decimal import Decimal

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from transfers.errors import BadInput
from transfers.models import FileVersion, Usage, UsagePeriodRecorded


def _hours(delta: dt.timedelta) -> Decimal:
    return Decimal(max(delta.total_seconds(), 0)) / Decimal(3600)


def usage_compute(*, period_start: dt.datetime, period_end: dt.datetime,
                  project_ids: Collection[int] | None = None) -> dict[int, Decimal]:
    """Byte-hours of every project (pk -> byte-hours, to 0.01) over [start, end), from each
    FileVersion's lifetime. Reads only: the recorder below stores it, and the usage report
    computes a month not recorded yet (the current one) with it."""
    if period_end <= period_start:
        raise BadInput("The period must end after it starts.")
    # In UTC: Python subtracts two datetimes of the same zone as wall-clock times, which
    # would give a month with a daylight-saving change 744 hours instead of 743 or 745.
    period_start, period_end = period_start.astimezone(dt.UTC), period_end.astimezone(dt.UTC)
    totals: dict[int, Decimal] = defaultdict(Decimal)
    versions = (FileVersion.objects.filter(uploaded_at__lt=period_end)
                .filter(Q(deleted_at__isnull=True) | Q(deleted_at__gt=period_start)))
    if project_ids is not None:
        versions = versions.filter(project_id__in=list(project_ids))
    rows = versions.values_list("project_id", "size_stored", "uploaded_at", "deleted_at")
    for project_id, size, start, end in rows.iterator(chunk_size=5000):
        lo = max(start, period_start)
        hi = min(end or period_end, period_end)
        totals[project_id] += size * _hours(hi - lo)
    return {pk: total.quantize(Decimal("0.01")) for pk, total in totals.items()}


def usage_record(*, period_start: dt.datetime, period_end: dt.datetime,
                 now: dt.datetime | None = None) -> int:
    """Byte-hours of every project over [start, end) (:func:`usage_compute`), stored.

    Only a period that has ended is recorded: the current month (or a later one) would
    store a projection, as if every file stayed to the period's end, that the reports
    would then take for the month's figures. Such a period is refused (BadInput); the
    reports compute it live instead.

    The period is marked recorded (``UsagePeriodRecorded``) even when nothing was stored
    in it, so :func:`usage_periods_recorded` answers for it from then on.

    Idempotent: re-running a period replaces its rows. Returns the number of projects.
    """
    now = now or timezone.now()
    if period_end > now:
        raise BadInput(f"{timezone.localtime(period_start):%Y-%m} has not ended yet "
                       f"(it ends {timezone.localtime(period_end):%Y-%m-%d %H:%M}): only "
                       "a past month's usage can be recorded; the usage report computes "
                       "the current month live.")
    totals = usage_compute(period_start=period_start, period_end=period_end)
    with transaction.atomic():
        for project_id, byte_hours in totals.items():
            Usage.objects.update_or_create(
                project_id=project_id, period_start=period_start,
                defaults={"period_end": period_end,
                          "byte_hours": byte_hours})
        # Replaces: a row of a project that no longer has usage in the period goes.
        (Usage.objects.filter(period_start=period_start)
         .exclude(project_id__in=list(totals)).delete())
        UsagePeriodRecorded.objects.update_or_create(
            period_start=period_start,
            defaults={"period_end": period_end, "projects": len(totals),
                      "recorded_at": timezone.now()})
        audit_record(action=AuditAction.USAGE_RECORD, target=f"{period_start:%Y-%m-%d}",
                     details={"projects": len(totals), "period_end": period_end})
    return len(totals)


def usage_periods_recorded(period_starts: Collection[dt.datetime]) -> set[dt.datetime]:
    """Which of these periods (by their start) the recorder has stored: the one answer to
    "is month M recorded" (reports read a recorded month from its ``Usage`` rows, and
    compute any other live). A period with no usage counts once it was recorded."""
    return set(UsagePeriodRecorded.objects.filter(period_start__in=list(period_starts))
               .values_list("period_start", flat=True))


def usage_record_last_month(*, now: dt.datetime | None = None) -> int:
    now = timezone.localtime(now or timezone.now())
    this_month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last_month = (this_month - dt.timedelta(days=1)).replace(day=1)
    return usage_record(period_start=last_month, period_end=this_month, now=now)
