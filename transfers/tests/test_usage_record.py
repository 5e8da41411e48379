"""The usage recorder (transfers.services.usage.usage_record) and its command: only a
month that has ended is recorded; the current month and later ones are refused, for every
caller, so no projection is ever stored as a month's figures."""

from __future__ import annotations

import datetime as dt
import importlib
import io
from zoneinfo import ZoneInfo

import pytest
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditEvent
from core.errors import BadInput
from projects.tests.factories import ProjectFactory
from transfers.models import FileVersion, Usage, UsagePeriodRecorded
from transfers.services.usage import (
    usage_periods_recorded,
    usage_record,
    usage_record_last_month,
)

TZ = ZoneInfo("Europe/Stockholm")
GB = 10**9


def local(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TZ)


#: A reviewer's "today": the second of December 2026, after the monthly job ran.
NOW = local(2026, 12, 2, 9, 0)


@pytest.fixture
def stored(db, settings, monkeypatch):
    settings.TIME_ZONE = "Europe/Stockholm"
    monkeypatch.setattr("django.utils.timezone.now", lambda: NOW)
    project = ProjectFactory()
    FileVersion.objects.create(project=project, object_key="a", size_stored=GB,
                               uploaded_at=local(2026, 10, 15))
    return project


@pytest.mark.parametrize("start,end", [
    (local(2026, 12, 1), local(2027, 1, 1)),   # the current month
    (local(2099, 1, 1), local(2099, 2, 1)),    # a month that has not begun
    (local(2026, 11, 15), local(2026, 12, 15)),  # a period that ends after now
])
def test_a_period_that_has_not_ended_is_refused_and_stores_nothing(stored, start, end):
    with pytest.raises(BadInput, match="has not ended yet"):
        usage_record(period_start=start, period_end=end)
    assert not Usage.objects.exists()
    assert not AuditEvent.objects.filter(action="usage.record").exists()


@pytest.mark.parametrize("month", ["2026-12", "2099-01"])
def test_the_command_refuses_a_month_that_has_not_ended(stored, month):
    with pytest.raises(CommandError, match=f"{month} has not ended yet"):
        call_command("usage_record", "--month", month, stdout=io.StringIO(),
                     stderr=io.StringIO())
    assert not Usage.objects.exists()


def test_the_command_records_a_past_month_and_last_month_by_default(stored):
    out = io.StringIO()
    call_command("usage_record", "--month", "2026-10", stdout=out, stderr=io.StringIO())
    assert "usage recorded for 1 project(s)" in out.getvalue()
    # What the CronJob runs: no --month, last month (November, which has ended).
    call_command("usage_record", stdout=out, stderr=io.StringIO())
    starts = set(Usage.objects.values_list("period_start", flat=True))
    assert starts == {local(2026, 10, 1), local(2026, 11, 1)}
    assert usage_record_last_month(now=local(2027, 1, 1, 2, 0)) == 1  # the job in January


def test_a_bad_month_is_a_command_error(stored):
    with pytest.raises(CommandError, match="2025-01"):
        call_command("usage_record", "--month", "12/2026")


def test_a_period_is_marked_recorded_even_without_usage(stored):
    aug, sep = local(2026, 8, 1), local(2026, 9, 1)
    assert usage_periods_recorded([aug]) == set()
    assert usage_record(period_start=aug, period_end=sep) == 0
    assert usage_periods_recorded([aug, sep]) == {aug}
    assert not Usage.objects.exists()


def test_the_migration_marks_the_periods_recorded_before_it(stored):
    """Months recorded before the marker existed stay recorded; rows of a month that had
    not ended (a projection the old recorder stored) do not make it recorded."""
    migration = importlib.import_module("transfers.migrations.0006_usage_period_recorded")
    Usage.objects.create(project=stored, period_start=local(2026, 10, 1),
                         period_end=local(2026, 11, 1), byte_hours=1)
    Usage.objects.create(project=stored, period_start=local(2026, 12, 1),
                         period_end=local(2027, 1, 1), byte_hours=1)
    migration.mark_recorded_periods(apps, None)
    assert list(UsagePeriodRecorded.objects.values_list("period_start", "projects")) == [
        (local(2026, 10, 1), 1)]
