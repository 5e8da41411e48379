"""Delete expired invites (the daily Celery beat job runs the same service)."""

from django.core.management.base import BaseCommand

from accounts.services import invites_delete_expired


class Command(BaseCommand):
    help = "Delete invites whose 7-day link has expired, with their wrapped project keys."

    def handle(self, *args, **options):
        count = invites_delete_expired()
        self.stdout.write(f"Deleted {count} expired invite(s).")
