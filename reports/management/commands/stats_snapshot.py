from __future__ import annotations

from django.core.management.base import CommandError

from core.errors import DDSError
from jobs.runner import ScheduledJobCommand
from reports.management.commands._month import month_option
from reports.services.stats import stats_snapshot_take


class Command(ScheduledJobCommand):
    help = ("Take the statistics snapshot of last month (or --month; the current month "
            "gives the figures so far). Taking a month again replaces its snapshot.")

    def add_arguments(self, parser):
        parser.add_argument("--month", help="YYYY-MM (default: last month)")

    def handle(self, *args, month=None, **options):
        chosen = month_option(month)
        try:
            snap = stats_snapshot_take(month=chosen)
        except DDSError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            f"statistics {chosen:%Y-%m}: {snap.units} unit(s), {snap.users_total} user(s), "
            f"{snap.projects_active} active project(s), {snap.bytes_stored} bytes stored, "
            f"{snap.deliveries_released} release(s)")
