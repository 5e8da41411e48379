import datetime as dt

from django.core.management.base import CommandError
from django.utils import timezone

from core.errors import DDSError
from jobs.runner import ScheduledJobCommand
from transfers.services.usage import usage_record, usage_record_last_month


class Command(ScheduledJobCommand):
    help = ("Record stored byte-hours per project for invoicing: last calendar month by "
            "default, or --month YYYY-MM (a month that has ended). Re-running a month "
            "replaces its figures.")

    def add_arguments(self, parser):
        parser.add_argument("--month", help="YYYY-MM, a past month (default: last month)")

    def handle(self, *args, month=None, **options):
        try:
            if not month:
                n = usage_record_last_month()
            else:
                try:
                    start = dt.datetime.strptime(month, "%Y-%m").replace(
                        tzinfo=timezone.get_current_timezone())
                except ValueError:
                    raise CommandError("--month must look like 2025-01") from None
                end = (start + dt.timedelta(days=32)).replace(day=1)
                n = usage_record(period_start=start, period_end=end)
        except DDSError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"usage recorded for {n} project(s)")
