"""The admin: the statistics chart (Super Admin only) and the usage CSV export (scoped)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
from django.test import Client

from accounts.models import Role
from accounts.tests.factories import UserFactory
from accounts.tests.helpers import portal_login
from reports.models import StatsSnapshot
from reports.tests.conftest import GB, local
from transfers.models import Usage
from transfers.services.usage import usage_record

CHANGELIST = "/admin/reports/statssnapshot/"


def _admin(user) -> Client:
    client = Client()
    portal_login(client, user)
    return client


def _snapshot(month, **figures):
    return StatsSnapshot.objects.create(month=month, as_of=local(2026, 12, 1), **figures)


@pytest.mark.django_db
def test_the_super_admin_sees_the_snapshots_drawn_over_time():
    _snapshot(dt.date(2026, 9, 1), units=2, bytes_stored=GB, deliveries_released=1)
    _snapshot(dt.date(2026, 10, 1), units=3, bytes_stored=3 * GB)
    _snapshot(dt.date(2026, 11, 1), units=5, bytes_stored=4 * GB, users_researcher=7)
    r = _admin(UserFactory(role=Role.SUPER_ADMIN)).get(CHANGELIST)
    assert r.status_code == 200
    page = r.content.decode()
    assert page.count('<svg class="dds-chart"') == 8  # one chart per figure
    # Three points per chart, each with its month and value.
    assert page.count('<circle class="point"') == 8 * 3
    assert "<title>2026-10: 3</title>" in page  # units in October
    assert "<title>2026-11: 4.0 GB</title>" in page  # stored in November
    assert ">2026-09</text>" in page and ">2026-11</text>" in page
    # Only SVG presentation attributes: nothing the Content-Security-Policy would block.
    charts = re.findall(r'<svg class="dds-chart".*?</svg>', page, re.S)
    assert charts and not any("style=" in c or "<script" in c or "on" + "load" in c
                              for c in charts)
    assert "default-src 'self'" in r["Content-Security-Policy"]


@pytest.mark.django_db
def test_an_empty_list_says_how_to_take_a_snapshot():
    r = _admin(UserFactory(role=Role.SUPER_ADMIN)).get(CHANGELIST)
    assert r.status_code == 200 and "No snapshot yet" in r.content.decode()


def test_unit_staff_do_not_see_the_statistics(november):
    _snapshot(dt.date(2026, 11, 1), units=5)
    r = _admin(UserFactory(role=Role.UNIT_ADMIN, unit=november.ngi)).get(CHANGELIST)
    assert r.status_code == 403


def test_the_usage_export_is_the_report_csv_of_the_selection_in_scope(november):
    usage_record(period_start=local(2026, 11, 1), period_end=local(2026, 12, 1))
    every = list(Usage.objects.values_list("pk", flat=True))
    assert len(every) == 3
    client = _admin(UserFactory(role=Role.UNIT_ADMIN, unit=november.ngi))
    r = client.post("/admin/transfers/usage/", {"action": "export_csv",
                                                "_selected_action": every})
    assert r.status_code == 200 and r["Content-Type"] == "text/csv"
    assert 'filename="dds-usage-2026-11.csv"' in r["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(r.content.decode())))
    # nbis' row was selected by id, but is not in a NGI admin's scope.
    assert [(x["row"], x["project_id"], x["cost"]) for x in rows] == [
        ("project", "ngi-00001", "3.00"), ("project", "ngi-00002", "1.50"),
        ("unit", "", "4.50"), ("total", "", "4.50")]
    r = _admin(UserFactory(role=Role.SUPER_ADMIN)).post(
        "/admin/transfers/usage/", {"action": "export_csv", "_selected_action": every})
    assert "nbis-00001" in r.content.decode()
