"""The monthly usage email: one per unit with its CSV attached, a summary to the
operators, once per month."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import TestCase

from audit.models import AuditEvent
from core.errors import BadInput
from reports.models import UsageReportDispatch
from reports.services.dispatch import usage_report_send
from transfers.models import Usage

NOV = dt.date(2026, 11, 1)


@pytest.fixture
def operators(settings):
    settings.DDS_OPERATOR_EMAILS = ["ops@example.org"]


def _send(world, **kw):
    with TestCase.captureOnCommitCallbacks(execute=True):
        return usage_report_send(month=NOV, now=world.now, **kw)


def test_each_unit_gets_its_csv_and_the_operators_a_summary(november, operators):
    result = _send(november)
    assert result.sent and result.units_emailed == 2 and result.recorded_now
    # The month was recorded first (the recorder had not run).
    assert Usage.objects.filter(project=november.p1).count() == 1
    by_to = {tuple(m.to): m for m in mail.outbox}
    assert set(by_to) == {("billing@ngi.example.org",), ("c@nbis.example.org",),
                          ("ops@example.org",)}
    ngi = by_to[("billing@ngi.example.org",)]
    assert "NGI in 2026-11" in ngi.subject
    assert "Total: 3.000000 GB-months" in ngi.body and "Cost: 4.50 SEK" in ngi.body
    [(name, content, mimetype)] = ngi.attachments
    assert (name, mimetype) == ("dds-usage-ngi-2026-11.csv", "text/csv")
    rows = list(csv.DictReader(io.StringIO(content)))
    assert {r["unit"] for r in rows if r["row"] != "total"} == {"NGI"}  # only its own
    assert [r["project_id"] for r in rows if r["row"] == "project"] == ["ngi-00001",
                                                                       "ngi-00002"]
    nbis = by_to[("c@nbis.example.org",)]  # no billing email: the contact
    assert "no cost is given" in nbis.body
    summary = by_to[("ops@example.org",)]
    assert "sent to 2 unit(s)" in summary.subject
    assert "ngi  3.000000 GB-months  4.50 SEK  to billing@ngi.example.org" in summary.body
    [(name, content, _)] = summary.attachments
    assert name == "dds-usage-2026-11.csv" and "nbis-00001" in content and "ngi-00001" in content
    assert UsageReportDispatch.objects.get(month=NOV).units == 2
    event = AuditEvent.objects.get(action="usage.report")
    assert event.target == "2026-11" and event.details["units_emailed"] == 2


def test_a_rerun_sends_nothing_and_resend_sends_again(november, operators):
    _send(november)
    sent = len(mail.outbox)
    again = _send(november)
    assert not again.sent and len(mail.outbox) == sent
    assert AuditEvent.objects.filter(action="usage.report").count() == 1
    resent = _send(november, resend=True)
    assert resent.sent and not resent.recorded_now and len(mail.outbox) == 2 * sent
    assert UsageReportDispatch.objects.count() == 1


def test_a_month_not_ended_is_refused(november):
    with pytest.raises(BadInput, match="has not ended"):
        usage_report_send(month=dt.date(2026, 12, 1), now=november.now)
    assert not UsageReportDispatch.objects.exists() and not mail.outbox


def test_the_command_sends_once(november, operators, monkeypatch):
    monkeypatch.setattr("django.utils.timezone.now", lambda: november.now)
    out = io.StringIO()
    with TestCase.captureOnCommitCallbacks(execute=True):
        call_command("usage_report_send", stdout=out)  # default: last month (November)
    assert "usage report 2026-11 sent to 2 unit(s) and 1 operator(s)" in out.getvalue()
    out = io.StringIO()
    with TestCase.captureOnCommitCallbacks(execute=True):
        call_command("usage_report_send", "--month", "2026-11", stdout=out)
    assert "was sent already" in out.getvalue() and len(mail.outbox) == 3
    with pytest.raises(CommandError, match="has not ended"):
        call_command("usage_report_send", "--month", "2026-12")


def test_an_empty_month_is_recorded_once(november, operators):
    # August 2026: nothing stored. Recorded by the first run, found recorded after.
    aug = dt.date(2026, 8, 1)
    with TestCase.captureOnCommitCallbacks(execute=True):
        first = usage_report_send(month=aug, now=november.now)
    assert first.sent and first.recorded_now and first.units_emailed == 0
    with TestCase.captureOnCommitCallbacks(execute=True):
        again = usage_report_send(month=aug, now=november.now, resend=True)
    assert again.sent and not again.recorded_now
    assert not Usage.objects.exists()
