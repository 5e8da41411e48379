"""The monthly usage email: each unit's CSV to its billing contact, a summary to the
operators, once per month."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Unit
from audit.actions import AuditAction
from audit.services import audit_record
from core.errors import BadInput
from jobs.runner import operator_emails
from mail.services import mail_send_template
from reports.models import UsageReportDispatch
from reports.services.months import month_end, month_of, month_start, month_str
from reports.services.usage import (
    usage_report,
    usage_report_csv,
    usage_report_filename,
    usage_report_unit,
)
from transfers.services.usage import usage_periods_recorded, usage_record


@dataclass(frozen=True)
class DispatchResult:
    month: dt.date
    #: False: the month had been sent already (nothing sent now).
    sent: bool
    units_emailed: int
    operators_emailed: int
    recorded_now: bool


def usage_report_send(*, month: dt.date, resend: bool = False,
                      now: dt.datetime | None = None) -> DispatchResult:
    """Email ``month``'s usage: to every unit that stored something, its CSV (to
    ``billing_email``, else ``contact_email``); to the operators (DDS_OPERATOR_EMAILS) a
    summary with the whole CSV. Records the month first if the recorder has not.

    Once per month: a second run sends nothing (``sent=False``) unless ``resend``. The
    emails are queued in the same transaction as the row that says they were sent, so a
    failure leaves neither.
    """
    now = now or timezone.now()
    if month >= month_of(now):
        raise BadInput(f"{month_str(month)} has not ended yet: only a past month's usage "
                       "can be sent for invoicing.")
    with transaction.atomic():
        existing = UsageReportDispatch.objects.select_for_update().filter(month=month).first()
        if existing is not None and not resend:
            return DispatchResult(month=month, sent=False, units_emailed=0,
                                  operators_emailed=0, recorded_now=False)
        if existing is not None:
            existing.delete()
        start = month_start(month)
        recorded_now = not usage_periods_recorded([start])
        if recorded_now:
            usage_record(period_start=start, period_end=month_end(month), now=now)
        report = usage_report(first=month, last=month, units=Unit.objects.all(), now=now)
        label = month_str(month)
        emailed = 0
        for unit in report.units:
            if not unit.projects:
                continue
            own = usage_report_unit(report, unit)
            filename = usage_report_filename(own, unit)
            queued = mail_send_template(
                template="reports/usage_unit", to=[unit.billing_email],
                context={"unit": unit, "month": label, "currency": report.currency,
                         "filename": filename, "recorded": report.recorded},
                attachments=[(filename, usage_report_csv(own), "text/csv")])
            emailed += queued is not None
        operators = operator_emails()
        filename = usage_report_filename(report)
        mail_send_template(
            template="reports/usage_summary", to=operators,
            context={"units": report.units, "sent": [u for u in report.units if u.projects],
                     "month": label, "currency": report.currency, "filename": filename,
                     "total_gb_months": report.gb_months, "total_cost": report.cost},
            attachments=[(filename, usage_report_csv(report), "text/csv")])
        try:
            with transaction.atomic():
                UsageReportDispatch.objects.create(month=month, sent_at=now, units=emailed,
                                                   gb_months=report.gb_months)
        except IntegrityError:
            # Another run sent this month meanwhile: ours is undone, emails included.
            transaction.set_rollback(True)
            return DispatchResult(month=month, sent=False, units_emailed=0,
                                  operators_emailed=0, recorded_now=False)
        audit_record(action=AuditAction.USAGE_REPORT, target=label,
                     details={"units_emailed": emailed, "operators": len(operators),
                              "gb_months": str(report.gb_months), "resend": resend})
    return DispatchResult(month=month, sent=True, units_emailed=emailed,
                          operators_emailed=len(operators), recorded_now=recorded_now)
