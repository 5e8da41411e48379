"""GET /api/v1/usage and /api/v1/stats: who sees what, bad input, CSV."""

from __future__ import annotations

import datetime as dt

import pytest
from rest_framework.test import APIClient

from accounts.models import Role, Unit
from accounts.tests.factories import UserFactory
from reports.services.stats import stats_snapshot_take
from reports.tests.conftest import local


@pytest.fixture(autouse=True)
def _december(november, monkeypatch):
    monkeypatch.setattr("django.utils.timezone.now", lambda: november.now)


def _client(user) -> APIClient:
    c = APIClient()
    c.force_authenticate(user)
    return c


def _user(role, unit=None):
    return UserFactory(role=role, unit=unit)


def test_unit_staff_see_their_own_unit_only(november):
    for role in (Role.UNIT_ADMIN, Role.UNIT_PERSONNEL):
        c = _client(_user(role, november.ngi))
        r = c.get("/api/v1/usage")  # default: last month (November)
        assert r.status_code == 200, r.content
        assert r.json()["from"] == "2026-11"
        assert [u["unit"] for u in r.json()["units"]] == ["NGI"]
        assert r.json()["total"] == {"gb_months": "3.000000", "cost": "4.50"}
        assert c.get("/api/v1/usage", {"unit": "ngi"}).status_code == 200
        other = c.get("/api/v1/usage", {"unit": "nbis"})
        assert other.status_code == 404 and other.json()["code"] == "not_found"


def test_the_super_admin_sees_every_unit_or_one(november):
    c = _client(_user(Role.SUPER_ADMIN))
    r = c.get("/api/v1/usage", {"month": "2026-11"})
    assert [u["internal_ref"] for u in r.json()["units"]] == ["nbis", "ngi"]
    r = c.get("/api/v1/usage", {"from": "2026-10", "to": "2026-11", "unit": "NBIS"})
    assert r.status_code == 200 and r.json()["to"] == "2026-11"
    assert [u["unit"] for u in r.json()["units"]] == ["NBIS"]


def test_researchers_are_refused(november):
    r = _client(_user(Role.RESEARCHER)).get("/api/v1/usage")
    assert r.status_code == 403 and "unit staff" in r.json()["detail"]


@pytest.mark.parametrize(("params", "message"), [
    ({"month": "2026-13"}, "not a month"),
    ({"month": "November"}, "YYYY-MM"),
    ({"from": "2026-11", "to": "2026-10"}, "before it starts"),
    ({"month": "2027-02"}, "has not begun"),
    ({"month": "2026-11", "from": "2026-10"}, "not both"),
])
def test_bad_months_are_a_clear_400(november, params, message):
    r = _client(_user(Role.SUPER_ADMIN)).get("/api/v1/usage", params)
    assert r.status_code == 400 and message in r.json()["detail"], r.content


def test_csv_format(november):
    c = _client(_user(Role.UNIT_ADMIN, november.ngi))
    r = c.get("/api/v1/usage", {"month": "2026-11", "format": "csv"})
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    assert 'filename="dds-usage-2026-11.csv"' in r["Content-Disposition"]
    text = r.content.decode()
    assert text.startswith("row,unit,") and "ngi-00001" in text and "nbis" not in text
    r = c.get("/api/v1/usage", HTTP_ACCEPT="text/csv")
    assert r.status_code == 200 and r.content.decode().startswith("row,unit,")
    bad = c.get("/api/v1/usage", {"month": "x", "format": "csv"})
    assert bad.status_code == 400 and bad["Content-Type"].startswith("application/json")
    assert "YYYY-MM" in bad.json()["detail"]


def test_stats_for_the_super_admin_only(november):
    Unit.objects.update(created_at=local(2026, 10, 1))
    stats_snapshot_take(month=dt.date(2026, 10, 1))
    stats_snapshot_take(month=dt.date(2026, 11, 1))
    r = _client(_user(Role.SUPER_ADMIN)).get("/api/v1/stats")
    assert r.status_code == 200
    assert [s["month"] for s in r.json()] == ["2026-10", "2026-11"]
    assert r.json()[1]["units"] == 2 and "researcher" in r.json()[1]["users"]
    for user in (_user(Role.UNIT_ADMIN, november.ngi), _user(Role.RESEARCHER)):
        assert _client(user).get("/api/v1/stats").status_code == 403
    assert APIClient().get("/api/v1/stats").status_code == 401
