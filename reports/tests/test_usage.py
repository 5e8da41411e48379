"""GB-months and cost from known file-version lifetimes; recorded and live months; CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import Unit
from core.errors import BadInput
from reports.services.months import month_parse
from reports.services.usage import (
    CSV_HEADER,
    usage_report,
    usage_report_csv,
    usage_report_data,
    usage_report_for_rows,
)
from reports.tests.conftest import GB, local, version
from transfers.models import Usage
from transfers.services.usage import usage_record

NOV = dt.date(2026, 11, 1)


def _report(world, first=NOV, last=NOV, units=None, now=None):
    return usage_report(first=first, last=last, units=units or Unit.objects.all(),
                        now=now or world.now)


def test_known_lifetimes_give_exact_gb_months_and_cost(november):
    data = usage_report_data(_report(november))
    assert data["from"] == data["to"] == "2026-11" and data["currency"] == "SEK"
    assert data["months"] == [{"month": "2026-11", "recorded": False}]
    nbis, ngi = data["units"]  # by name
    assert ngi == {
        "unit": "NGI", "internal_ref": "ngi", "price_per_gb_month": "1.5000",
        "gb_months": "3.000000", "cost": "4.50",
        "projects": [
            {"project_id": "ngi-00001", "title": "Genomes", "gb_months": "2.000000",
             "cost": "3.00"},
            {"project_id": "ngi-00002", "title": "=HYPERLINK(\"x\")",
             "gb_months": "1.000000", "cost": "1.50"}]}
    assert nbis == {"unit": "NBIS", "internal_ref": "nbis", "price_per_gb_month": None,
                    "gb_months": "0.500000", "cost": None,
                    "projects": [{"project_id": "nbis-00001", "title": "Proteins",
                                  "gb_months": "0.500000", "cost": None}]}
    # A unit without a price: no total cost is made up.
    assert data["total"] == {"gb_months": "3.500000", "cost": None}


def test_recorded_month_reads_the_recorded_rows(november):
    usage_record(period_start=local(2026, 11, 1), period_end=local(2026, 12, 1))
    # A late change to the versions does not alter a month already recorded.
    version(november.p1, 100 * GB, local(2026, 11, 1), local(2026, 11, 30))
    data = usage_report_data(_report(november, units=Unit.objects.filter(internal_ref="ngi")))
    assert data["months"] == [{"month": "2026-11", "recorded": True}]
    assert [u["unit"] for u in data["units"]] == ["NGI"]
    assert data["total"] == {"gb_months": "3.000000", "cost": "4.50"}


def test_a_month_with_a_daylight_saving_change_has_its_own_hours(november):
    # October 2026 has 745 hours in Stockholm; a whole month stored is still 1 GB-month.
    version(november.idle, GB, local(2026, 9, 30), local(2026, 11, 1))
    data = usage_report_data(_report(november, first=dt.date(2026, 10, 1),
                                     last=dt.date(2026, 10, 1)))
    idle = [p for u in data["units"] for p in u["projects"] if p["project_id"] == "ngi-00003"]
    assert idle == [{"project_id": "ngi-00003", "title": "Nothing stored",
                     "gb_months": "1.000000", "cost": "1.50"}]


def test_a_range_adds_the_months(november):
    data = usage_report_data(_report(november, first=dt.date(2026, 10, 1), last=NOV,
                                     units=Unit.objects.filter(internal_ref="nbis")))
    # nbis: from Oct 1 00:00 (the whole of October) and the whole of November.
    assert data["from"] == "2026-10" and data["to"] == "2026-11"
    assert data["units"][0]["gb_months"] == "1.000000"


def test_the_current_month_is_computed_so_far(november):
    version(november.idle, GB, local(2026, 12, 1))
    now = local(2026, 12, 16)  # 15 of December's 31 days
    data = usage_report_data(_report(november, first=dt.date(2026, 12, 1),
                                     last=dt.date(2026, 12, 1), now=now))
    assert data["months"] == [{"month": "2026-12", "recorded": False}]
    idle = [p for u in data["units"] for p in u["projects"] if p["project_id"] == "ngi-00003"]
    assert idle[0]["gb_months"] == str((Decimal(15) / 31).quantize(Decimal("0.000001")))


@pytest.mark.parametrize(("first", "last", "message"), [
    ("2027-01", "2027-01", "has not begun"),
    ("2026-11", "2026-10", "before it starts"),
])
def test_bad_ranges_are_refused(november, first, last, message):
    with pytest.raises(BadInput, match=message):
        _report(november, first=month_parse(first), last=month_parse(last))


@pytest.mark.parametrize("bad", ["2026-13", "2026-1", "nov", "", "1999-12"])
def test_bad_months_are_refused(bad):
    with pytest.raises(BadInput, match="month"):
        month_parse(bad)


def test_csv_has_a_stable_header_project_unit_and_total_rows_and_no_formulas(november):
    text = usage_report_csv(_report(november))
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == CSV_HEADER
    body = [dict(zip(CSV_HEADER, r, strict=True)) for r in rows[1:]]
    assert [(r["row"], r["unit"], r["project_id"], r["gb_months"], r["cost"]) for r in body] == [
        ("project", "NBIS", "nbis-00001", "0.500000", ""),
        ("unit", "NBIS", "", "0.500000", ""),
        ("project", "NGI", "ngi-00001", "2.000000", "3.00"),
        ("project", "NGI", "ngi-00002", "1.000000", "1.50"),
        ("unit", "NGI", "", "3.000000", "4.50"),
        ("total", "", "", "3.500000", ""),
    ]
    assert body[3]["title"] == "'=HYPERLINK(\"x\")"  # shown as text, never run
    assert all(r["from"] == "2026-11" and r["currency"] == "SEK" for r in body)


def test_report_of_selected_rows(november):
    usage_record(period_start=local(2026, 11, 1), period_end=local(2026, 12, 1))
    rows = Usage.objects.filter(project=november.p1)
    data = usage_report_data(usage_report_for_rows(rows=rows))
    assert [(u["unit"], [p["project_id"] for p in u["projects"]]) for u in data["units"]] == [
        ("NGI", ["ngi-00001"])]
    assert data["total"] == {"gb_months": "2.000000", "cost": "3.00"}


def test_usage_report_command_prints_and_writes_csv(november, tmp_path, monkeypatch):
    monkeypatch.setattr("django.utils.timezone.now", lambda: november.now)
    out = io.StringIO()
    call_command("usage_report", "--month", "2026-11", "--unit", "ngi", stdout=out)
    text = out.getvalue()
    assert "NGI (ngi): 3.000000 GB-months, 4.50 SEK" in text
    assert "ngi-00001  2.000000  3.00  Genomes" in text and "NBIS" not in text
    target = tmp_path / "u.csv"
    call_command("usage_report", "--month", "2026-11", "--csv", str(target),
                 stderr=io.StringIO())
    assert target.read_text().startswith(",".join(CSV_HEADER))
    with pytest.raises(CommandError, match="YYYY-MM"):
        call_command("usage_report", "--month", "11/2026")
    with pytest.raises(CommandError, match="No such unit"):
        call_command("usage_report", "--month", "2026-11", "--unit", "nope")


def test_the_recorder_counts_the_real_hours_of_a_daylight_saving_month(november):
    version(november.idle, GB, local(2026, 9, 30), local(2026, 11, 1))
    usage_record(period_start=local(2026, 10, 1), period_end=local(2026, 11, 1))
    row = Usage.objects.get(project=november.idle)
    assert row.byte_hours == Decimal(GB * 745)  # the clocks went back: 31 × 24 + 1


def test_the_report_takes_the_same_queries_for_more_projects(november):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from projects.tests.factories import ProjectFactory

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            usage_report_csv(_report(november, first=dt.date(2026, 10, 1), last=NOV))
        return len(ctx.captured_queries)

    before = count()
    for _ in range(5):
        version(ProjectFactory(unit=november.nbis), GB, local(2026, 10, 2))
    usage_record(period_start=local(2026, 10, 1), period_end=local(2026, 11, 1))
    assert count() <= before  # a recorded month needs no live computation


def test_a_recorded_month_with_nothing_stored_is_recorded(november, monkeypatch):
    # August 2026: nothing was stored (the first version is from September).
    aug = dt.date(2026, 8, 1)
    assert not _report(november, first=aug, last=aug).recorded
    assert usage_record(period_start=local(2026, 8, 1), period_end=local(2026, 9, 1)) == 0
    assert not Usage.objects.exists()
    report = _report(november, first=aug, last=aug)
    assert report.recorded and report.gb_months == 0
    monkeypatch.setattr("django.utils.timezone.now", lambda: november.now)
    out = io.StringIO()
    call_command("usage_report", "--month", "2026-08", stdout=out)
    assert "not all months recorded yet" not in out.getvalue()
    out = io.StringIO()
    call_command("usage_report", "--month", "2026-08", "--csv", "-", stdout=out)
    assert all(line.endswith(",yes") for line in out.getvalue().splitlines()[1:])


def test_rerecording_a_month_replaces_its_rows(november):
    usage_record(period_start=local(2026, 11, 1), period_end=local(2026, 12, 1))
    # A row of a project with no usage in the month (left by an earlier run) goes.
    Usage.objects.create(project=november.idle, period_start=local(2026, 11, 1),
                         period_end=local(2026, 12, 1), byte_hours=5)
    usage_record(period_start=local(2026, 11, 1), period_end=local(2026, 12, 1))
    assert not Usage.objects.filter(project=november.idle).exists()
    assert Usage.objects.filter(period_start=local(2026, 11, 1)).count() == 3


def test_usage_report_csv_to_a_path_that_cannot_be_written_is_a_command_error(
        november, tmp_path, monkeypatch):
    monkeypatch.setattr("django.utils.timezone.now", lambda: november.now)
    missing = tmp_path / "nonexistent" / "dir" / "x.csv"
    with pytest.raises(CommandError, match=rf"{missing}: No such file or directory"):
        call_command("usage_report", "--month", "2026-11", "--csv", str(missing))
    with pytest.raises(CommandError, match=rf"{tmp_path}: Is a directory"):
        call_command("usage_report", "--month", "2026-11", "--csv", str(tmp_path))
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind
    # A failure half-way leaves the file that was there whole, and no temporary file.
    target = tmp_path / "u.csv"
    target.write_text("the previous report")

    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.replace", fail)
    with pytest.raises(CommandError, match="No space left on device"):
        call_command("usage_report", "--month", "2026-11", "--csv", str(target))
    assert target.read_text() == "the previous report"
    assert list(tmp_path.iterdir()) == [target]


def test_rows_of_a_month_not_marked_recorded_do_not_count_twice(november):
    """Rows without their month's marker (a projection the old usage_record stored for a
    month not ended, which migration 0006 leaves unmarked; or rows the previous release
    wrote during a roll-out) are not added to the live figure of that month."""
    from transfers.models import UsagePeriodRecorded

    live = usage_report_data(_report(november))["total"]
    usage_record(period_start=local(2026, 11, 1), period_end=local(2026, 12, 1))
    UsagePeriodRecorded.objects.all().delete()
    assert Usage.objects.exists()
    data = usage_report_data(_report(november))
    assert data["months"] == [{"month": "2026-11", "recorded": False}]
    assert data["total"] == live == {"gb_months": "3.500000", "cost": None}
