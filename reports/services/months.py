"""Calendar months, as the reports take them ("2026-11") and as instants in the site's
time zone (the same boundaries as the usage recorder: local midnight of the 1st)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

from django.utils import timezone

from core.errors import BadInput

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
#: The longest range one report may cover.
MAX_MONTHS = 120


def month_parse(value: str, *, name: str = "month") -> dt.date:
    """``YYYY-MM`` -> the first day of that month, or a 400 that says what was expected."""
    found = _MONTH.match((value or "").strip())
    if found is None:
        raise BadInput(f"{name} must be a month written YYYY-MM, e.g. 2026-11 "
                       f"(got {value!r:.40}).")
    year, month = int(found.group(1)), int(found.group(2))
    if not 1 <= month <= 12 or year < 2000:
        raise BadInput(f"{name}={value} is not a month: write YYYY-MM, with a month from "
                       "01 to 12 (and a year from 2000).")
    return dt.date(year, month, 1)


def month_str(month: dt.date) -> str:
    return f"{month:%Y-%m}"


def month_next(month: dt.date) -> dt.date:
    return dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)


def month_start(month: dt.date) -> dt.datetime:
    """Local midnight of the 1st, aware (the recorder's ``period_start``)."""
    return dt.datetime(month.year, month.month, 1, tzinfo=timezone.get_current_timezone())


def month_end(month: dt.date) -> dt.datetime:
    return month_start(month_next(month))


def month_of(instant: dt.datetime) -> dt.date:
    local = timezone.localtime(instant)
    return dt.date(local.year, local.month, 1)


def month_last(*, now: dt.datetime | None = None) -> dt.date:
    """The month before the one ``now`` is in (what the monthly jobs report)."""
    this = month_of(now or timezone.now())
    return (this - dt.timedelta(days=1)).replace(day=1)


def months_between(first: dt.date, last: dt.date) -> Iterator[dt.date]:
    month = first
    while month <= last:
        yield month
        month = month_next(month)


def month_range(first: dt.date, last: dt.date, *,
                now: dt.datetime | None = None) -> list[dt.date]:
    """The months from ``first`` to ``last`` included; a 400 for a range that is reversed,
    too long or reaches a month that has not begun."""
    if last < first:
        raise BadInput(f"The range ends ({month_str(last)}) before it starts "
                       f"({month_str(first)}).")
    current = month_of(now or timezone.now())
    if last > current:
        raise BadInput(f"{month_str(last)} has not begun yet; the latest month with usage "
                       f"is {month_str(current)} (so far).")
    months = list(months_between(first, last))
    if len(months) > MAX_MONTHS:
        raise BadInput(f"A report covers at most {MAX_MONTHS} months.")
    return months
