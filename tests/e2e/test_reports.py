"""The real `dds` against the live server: usage for invoicing and the statistics, each
seen only by those who may (a unit admin their unit; the operator everything)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from accounts.models import Role
from accounts.tests.factories import UnitFactory
from keys.tests.helpers import keyed_user
from projects.tests.factories import ProjectFactory
from reports.services.months import month_last, month_of, month_start, month_str
from reports.services.stats import stats_snapshot_take
from tests.e2e.conftest import DDS
from transfers.models import FileVersion

pytestmark = pytest.mark.django_db(transaction=True)

GB = 10**9


@pytest.fixture
def usage_world(e2e):
    """Last month: the unit's project stored 1 GB for the whole month (1 GB-month at 2.5
    per GB-month); another unit's project stored something too."""
    unit = e2e.unit
    unit.price_per_gb_month = "2.5"
    unit.save(update_fields=["price_per_gb_month"])
    other = UnitFactory(name="Other facility", internal_ref="oth")
    month = month_last()
    before = month_start(month) - dt.timedelta(days=3)
    mine = ProjectFactory(unit=unit, title="Sequencing run 7")
    theirs = ProjectFactory(unit=other, title="Not yours")
    FileVersion.objects.create(project=mine, object_key="e2e-1", size_stored=GB,
                               uploaded_at=before)
    FileVersion.objects.create(project=theirs, object_key="e2e-2", size_stored=5 * GB,
                               uploaded_at=before)
    e2e.month, e2e.mine, e2e.other = month_str(month), mine, other
    return e2e


def test_a_unit_admin_sees_the_usage_of_their_own_unit(usage_world, tmp_path):
    w = usage_world
    w.staff.login()
    r = w.staff("unit", "usage", "--month", w.month, "--json")
    assert r.code == 0, r.err
    report = json.loads(r.out)
    assert [u["internal_ref"] for u in report["units"]] == [w.unit.internal_ref]
    [project] = report["units"][0]["projects"]
    assert project == {"project_id": w.mine.public_id, "title": "Sequencing run 7",
                       "gb_months": "1.000000", "cost": "2.50"}
    assert report["total"] == {"gb_months": "1.000000", "cost": "2.50"}

    r = w.staff("unit", "usage", "--month", w.month)
    assert r.code == 0, r.err
    assert w.mine.public_id in r.out and "2.50" in r.out and "Not yours" not in r.out

    target = tmp_path / "usage.csv"
    r = w.staff("unit", "usage", "--month", w.month, "--csv", str(target))
    assert r.code == 0, r.err
    text = target.read_text()
    assert text.startswith("row,unit,internal_ref,project_id") and w.mine.public_id in text

    # Another unit's usage is not theirs to see; a bad month is a clear refusal.
    r = w.staff("unit", "usage", "--unit", "oth", "--json")
    assert r.code == 5 and json.loads(r.out)["error"]["code"] == "not_found"
    r = w.staff("unit", "usage", "--month", "2026-13")
    assert r.code == 5 and "not a month" in r.err

    r = w.staff("unit", "usage", "--from", w.month, "--to", w.month, "--json")
    assert r.code == 0 and json.loads(r.out)["total"]["cost"] == "2.50"
    for wrong in (("--to", w.month), ("--month", w.month, "--from", w.month)):
        r = w.staff("unit", "usage", *wrong)
        assert r.code == 2 and "--from" in r.err, (wrong, r.err)

    # Storage against the quota: 1 GB of 1.2 GB is above the 80 % warning level.
    w.unit.quota_bytes, w.unit.warning_level = 1_200_000_000, 0.8
    w.unit.save(update_fields=["quota_bytes", "warning_level"])
    r = w.staff("unit", "ls")
    assert r.code == 0, r.err
    assert "Used" in r.out and "1.0 GB" in r.out and "1.2 GB" in r.out
    assert "83.3%" in r.out and "at or above warning level" in r.out
    r = w.staff("unit", "ls", "--json")
    assert [u["stored_bytes"] for u in json.loads(r.out)] == [GB]


def test_the_operator_sees_the_statistics_and_every_unit(usage_world):
    w = usage_world
    operator, password, _ = keyed_user(Role.SUPER_ADMIN)
    su = DDS(w.url, w.tmp / "operator-config", operator, password)
    # This month's, so far: the units and users of the test were created today.
    this_month = month_of(timezone.now())
    stats_snapshot_take(month=this_month)
    su.login()
    r = su("stats", "--json")
    assert r.code == 0, r.err
    [snapshot] = json.loads(r.out)
    assert snapshot["month"] == month_str(this_month) and snapshot["units"] == 2
    assert snapshot["users"]["unit_admin"] == 2 and snapshot["users"]["super_admin"] == 1
    assert snapshot["bytes_stored"] == 6 * GB
    r = su("stats")
    assert r.code == 0 and month_str(this_month) in r.out and "6.0 GB" in r.out
    r = su("unit", "usage", "--month", w.month, "--json")
    assert {u["internal_ref"] for u in json.loads(r.out)["units"]} >= {"oth",
                                                                      w.unit.internal_ref}


def test_a_researcher_is_refused(usage_world):
    w = usage_world
    w.researcher.login()
    for args in (("unit", "usage"), ("stats",)):
        r = w.researcher(*args, "--json")
        assert r.code == 5, (args, r.out, r.err)
        assert json.loads(r.out)["error"]["code"] == "not_allowed"


def test_project_ls_with_usage_shows_gb_months_and_cost(usage_world):
    w = usage_world
    w.staff.login()
    r = w.staff("project", "ls", "--usage", "--month", w.month, "--json")
    assert r.code == 0, r.err
    rows = {p["id"]: p["usage"] for p in json.loads(r.out)}
    assert rows[w.mine.public_id] == {"month": w.month, "gb_months": "1.000000",
                                      "cost": "2.50", "currency": "SEK"}
    assert w.other.internal_ref not in " ".join(rows)  # another unit's projects: not listed
    r = w.staff("project", "ls", "--usage", "--month", w.month)
    assert r.code == 0, r.err
    line = next(x for x in r.out.splitlines() if w.mine.public_id in x)
    assert "1.000000" in line and "2.50 SEK" in line
    # --month alone is a usage error; a researcher is refused by the server.
    assert w.staff("project", "ls", "--month", w.month).code == 2
    w.researcher.login()
    r = w.researcher("project", "ls", "--usage")
    assert r.code == 5, r.err
