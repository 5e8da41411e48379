from jobs.runner import ScheduledJobCommand
from transfers.services.quota import quota_check_all


class Command(ScheduledJobCommand):
    help = ("Check every unit's stored bytes against its quota warning level: a unit that "
            "crossed it gets one email per crossing (its Unit Admins, its contact address "
            "and the operators); a unit back below is re-armed.")

    def handle(self, *args, **options):
        summary = quota_check_all()
        self.stdout.write(f"{summary.checked} unit(s) checked, {len(summary.above)} at or "
                          f"above their warning level, {len(summary.warned)} warned now"
                          + (f": {', '.join(summary.warned)}" if summary.warned else ""))
