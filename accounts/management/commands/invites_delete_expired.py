"""Delete expired invites (the daily Celery beat job runs the same service)."""

from accounts.services.invites import invites_delete_expired
from jobs.runner import ScheduledJobCommand


class Command(ScheduledJobCommand):
    help = "Delete invites whose 7-day link has expired, with their wrapped project keys."

    def handle(self, *args, **options):
        count = invites_delete_expired()
        self.stdout.write(f"Deleted {count} expired invite(s).")
