from __future__ import annotations

from django.core.management.base import CommandError

from core.errors import DDSError
from jobs.runner import ScheduledJobCommand
from reports.management.commands._month import month_option
from reports.services.dispatch import usage_report_send


class Command(ScheduledJobCommand):
    help = ("Email last month's usage report (or --month's): each unit's CSV to its "
            "billing contact, a summary to the operators. Once per month: a re-run sends "
            "nothing unless --resend.")

    def add_arguments(self, parser):
        parser.add_argument("--month", help="YYYY-MM (default: last month)")
        parser.add_argument("--resend", action="store_true",
                            help="Send again a month that was sent already")

    def handle(self, *args, month=None, resend=False, **options):
        chosen = month_option(month)
        try:
            result = usage_report_send(month=chosen, resend=resend)
        except DDSError as exc:
            raise CommandError(exc.message) from None
        if not result.sent:
            self.stdout.write(f"usage report {chosen:%Y-%m} was sent already; nothing sent "
                              "(--resend to send it again)")
            return
        recorded = " (recorded the month first)" if result.recorded_now else ""
        self.stdout.write(f"usage report {chosen:%Y-%m} sent to {result.units_emailed} "
                          f"unit(s) and {result.operators_emailed} operator(s){recorded}")
