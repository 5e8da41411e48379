"""Invoicing: the recorded byte-hours turned into GB-months and cost, per unit and project.

**GB-month** (the one definition; docs/operator-guide.md, "Invoicing"): 10^9 bytes stored
for one whole calendar month. A project's GB-months in a month are its byte-hours in that
month divided by 10^9 × the hours of that month (744 for a 31-day month; 743 or 745 for the
month of a daylight-saving change: months start at local midnight of the 1st in the site's
time zone). Stored bytes are the ciphertext in storage (``FileVersion.size_stored``).

**Cost** = GB-months × the unit's ``price_per_gb_month``, rounded half-up to 0.01 in
``DDS_CURRENCY``; a unit without a price has no cost (null), never 0. A project's GB-months
are rounded to 6 decimals *before* its cost is computed, a unit's figures are the sums of
its projects' rounded figures and the total the sum of the units', so every line of an
invoice can be recomputed from the lines above it. The total cost is null when any unit
in the report has no price (no cost is made up for it).

**Months not recorded** (``transfers.services.usage.usage_record`` runs on the 1st for the
month before; the current month is never recorded) are computed live from the file
versions, read-only, and marked ``recorded: false``; for the current month that is the
usage *so far* (up to now) in GB-months of the whole month. A month that has not begun is
refused.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import Unit
from projects.models import Project
from reports.services.months import (
    month_end,
    month_of,
    month_range,
    month_start,
    month_str,
)
from transfers.models import Usage
from transfers.services.usage import usage_compute, usage_periods_recorded

GB = Decimal(10) ** 9
GB_MONTHS_PLACES = Decimal("0.000001")
COST_PLACES = Decimal("0.01")


def currency() -> str:
    return str(getattr(settings, "DDS_CURRENCY", "SEK"))


def gb_months(*, byte_hours: Decimal, period_start: dt.datetime,
              period_end: dt.datetime) -> Decimal:
    """Byte-hours of one calendar month [start, end) in GB-months (not rounded)."""
    # In UTC: two datetimes of one zone subtract as wall-clock times (DST months).
    span = period_end.astimezone(dt.UTC) - period_start.astimezone(dt.UTC)
    hours = Decimal(span.total_seconds()) / Decimal(3600)
    return Decimal(byte_hours) / (GB * hours)


def cost_of(gb: Decimal, price: Decimal | None) -> Decimal | None:
    if price is None:
        return None
    return (gb * price).quantize(COST_PLACES, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class ProjectUsage:
    project_id: str
    title: str
    gb_months: Decimal
    cost: Decimal | None


@dataclass(frozen=True)
class UnitUsage:
    name: str
    internal_ref: str
    price_per_gb_month: Decimal | None
    gb_months: Decimal
    cost: Decimal | None
    projects: tuple[ProjectUsage, ...]
    #: Where the unit's report goes: its billing email, else its contact email.
    billing_email: str


@dataclass(frozen=True)
class MonthState:
    month: dt.date
    #: False: computed live from the file versions (not recorded yet).
    recorded: bool


@dataclass(frozen=True)
class UsageReport:
    first: dt.date
    last: dt.date
    currency: str
    units: tuple[UnitUsage, ...]
    gb_months: Decimal
    cost: Decimal | None
    months: tuple[MonthState, ...]

    @property
    def recorded(self) -> bool:
        return all(m.recorded for m in self.months)


def _per_project(months: Sequence[dt.date], project_ids: Iterable[int], *,
                 now: dt.datetime) -> tuple[dict[int, Decimal], list[MonthState]]:
    """project pk -> GB-months over ``months`` (not rounded), and each month's state."""
    ids = list(project_ids)
    totals: dict[int, Decimal] = defaultdict(Decimal)
    states: list[MonthState] = []
    starts = [month_start(m) for m in months]
    recorded_starts = usage_periods_recorded(starts)
    # Only the rows of months marked recorded: an unmarked month's rows (a projection the
    # old usage_record stored for a month not ended, or rows a previous release wrote
    # during a roll-out) would otherwise count next to the live figure computed below.
    rows = (Usage.objects.filter(period_start__in=sorted(recorded_starts), project_id__in=ids)
            .values_list("project_id", "byte_hours", "period_start", "period_end"))
    for project_id, byte_hours, start, end in rows:
        totals[project_id] += gb_months(byte_hours=byte_hours, period_start=start,
                                        period_end=end)
    for month, start in zip(months, starts, strict=True):
        recorded = start in recorded_starts
        states.append(MonthState(month=month, recorded=recorded))
        if recorded:
            continue
        end = month_end(month)
        live = usage_compute(period_start=start, period_end=min(end, now), project_ids=ids)
        for project_id, byte_hours in live.items():
            totals[project_id] += gb_months(byte_hours=byte_hours, period_start=start,
                                            period_end=end)
    return totals, states


def _assemble(*, units: Sequence[Unit], projects: Sequence[Project],
              totals: dict[int, Decimal], first: dt.date, last: dt.date,
              months: Sequence[MonthState]) -> UsageReport:
    by_unit: dict[int, list[ProjectUsage]] = defaultdict(list)
    unit_of = {u.pk: u for u in units}
    for project in projects:
        if project.pk not in totals:
            continue
        unit = unit_of[project.unit_id]
        gb = totals[project.pk].quantize(GB_MONTHS_PLACES, rounding=ROUND_HALF_UP)
        by_unit[unit.pk].append(ProjectUsage(
            project_id=project.public_id, title=project.title, gb_months=gb,
            cost=cost_of(gb, unit.price_per_gb_month)))
    out: list[UnitUsage] = []
    for unit in units:
        rows = tuple(sorted(by_unit.get(unit.pk, []), key=lambda p: p.project_id))
        price = unit.price_per_gb_month
        out.append(UnitUsage(
            name=unit.name, internal_ref=unit.internal_ref, price_per_gb_month=price,
            gb_months=sum((p.gb_months for p in rows), Decimal(0)),
            cost=None if price is None else sum((p.cost or Decimal(0) for p in rows),
                                                Decimal(0)).quantize(COST_PLACES),
            projects=rows, billing_email=unit.billing_email or unit.contact_email))
    costs = [u.cost for u in out]
    total_cost = (None if not out or any(c is None for c in costs)
                  else sum((c for c in costs if c is not None), Decimal(0)))
    return UsageReport(first=first, last=last, currency=currency(), units=tuple(out),
                       gb_months=sum((u.gb_months for u in out), Decimal(0)),
                       cost=total_cost, months=tuple(months))


def usage_report(*, first: dt.date, last: dt.date, units: QuerySet[Unit],
                 now: dt.datetime | None = None) -> UsageReport:
    """Usage of ``units`` (every one of them, even with nothing stored) from month
    ``first`` to ``last`` included; projects with usage in the range only."""
    now = now or timezone.now()
    months = month_range(first, last, now=now)
    unit_list = list(units.order_by("name"))
    projects = list(Project.objects.filter(unit__in=[u.pk for u in unit_list])
                    .only("pk", "public_id", "title", "unit_id").order_by("public_id"))
    totals, states = _per_project(months, [p.pk for p in projects], now=now)
    return _assemble(units=unit_list, projects=projects, totals=totals, first=first,
                     last=last, months=states)


def usage_report_for_rows(*, rows: QuerySet[Usage]) -> UsageReport:
    """The report of exactly these recorded rows (the admin's "Export usage as CSV" on a
    selection): the units and projects they belong to, their months as the range."""
    picked = list(rows.select_related("project", "project__unit"))
    if not picked:
        today = month_of(timezone.now())
        return UsageReport(first=today, last=today, currency=currency(), units=(),
                           gb_months=Decimal(0), cost=None, months=())
    totals: dict[int, Decimal] = defaultdict(Decimal)
    for row in picked:
        totals[row.project_id] += gb_months(byte_hours=row.byte_hours,
                                            period_start=row.period_start,
                                            period_end=row.period_end)
    projects = sorted({row.project.pk: row.project for row in picked}.values(),
                      key=lambda p: p.public_id)
    units = sorted({p.unit.pk: p.unit for p in projects}.values(), key=lambda u: u.name)
    months = sorted({month_of(row.period_start) for row in picked})
    return _assemble(units=units, projects=projects, totals=totals, first=months[0],
                     last=months[-1],
                     months=[MonthState(month=m, recorded=True) for m in months])


def usage_report_unit(report: UsageReport, unit: UnitUsage) -> UsageReport:
    """The same report restricted to one of its units (the unit's own CSV)."""
    return UsageReport(first=report.first, last=report.last, currency=report.currency,
                       units=(unit,), gb_months=unit.gb_months, cost=unit.cost,
                       months=report.months)


# ---------------------------------------------------------------------- renderings


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def usage_report_data(report: UsageReport) -> dict[str, Any]:
    """The API's JSON shape (decimals as strings; docs/operator-guide.md)."""
    return {
        "from": month_str(report.first), "to": month_str(report.last),
        "currency": report.currency,
        "months": [{"month": month_str(m.month), "recorded": m.recorded}
                   for m in report.months],
        "units": [{
            "unit": u.name, "internal_ref": u.internal_ref,
            "price_per_gb_month": _dec(u.price_per_gb_month),
            "gb_months": str(u.gb_months), "cost": _dec(u.cost),
            "projects": [{"project_id": p.project_id, "title": p.title,
                          "gb_months": str(p.gb_months), "cost": _dec(p.cost)}
                         for p in u.projects],
        } for u in report.units],
        "total": {"gb_months": str(report.gb_months), "cost": _dec(report.cost)},
    }


CSV_HEADER = ("row", "unit", "internal_ref", "project_id", "title", "from", "to",
              "gb_months", "price_per_gb_month", "cost", "currency", "recorded")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    """A cell a spreadsheet shows as text: one starting like a formula gets a quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def usage_report_csv(report: UsageReport) -> str:
    """One ``project`` row per project, a ``unit`` subtotal row after each unit's projects
    and a last ``total`` row; the header is stable (``CSV_HEADER``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    span = (month_str(report.first), month_str(report.last))
    recorded = "yes" if report.recorded else "no"
    for u in report.units:
        price = _dec(u.price_per_gb_month)
        for p in u.projects:
            writer.writerow([_cell(v) for v in (
                "project", u.name, u.internal_ref, p.project_id, p.title, *span,
                p.gb_months, price, _dec(p.cost), report.currency, recorded)])
        writer.writerow([_cell(v) for v in (
            "unit", u.name, u.internal_ref, "", "", *span, u.gb_months, price,
            _dec(u.cost), report.currency, recorded)])
    writer.writerow([_cell(v) for v in (
        "total", "", "", "", "", *span, report.gb_months, "", _dec(report.cost),
        report.currency, recorded)])
    return buffer.getvalue()


def usage_report_filename(report: UsageReport, unit: UnitUsage | None = None) -> str:
    span = (month_str(report.first) if report.first == report.last
            else f"{month_str(report.first)}_{month_str(report.last)}")
    return f"dds-usage-{unit.internal_ref + '-' if unit else ''}{span}.csv"
