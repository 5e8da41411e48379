"""``migrate``, one process at a time: the release's migration Job may be started more than
once (a retried hook, two syncs, an operator by hand), and concurrent ``migrate`` runs on
one PostgreSQL database crash each other (duplicate type or table). A session-level
advisory lock serialises them; the runs after the first find nothing left to do."""

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connection

#: Advisory lock key: "DDS migrate" as a 63-bit number (any constant unique to DDS).
LOCK_KEY = 0x4444535F4D494752


class Command(BaseCommand):
    help = "Apply migrations, waiting for any other migrate_locked run to finish first."

    def add_arguments(self, parser):
        parser.add_argument("--no-input", "--noinput", action="store_false",
                            dest="interactive", help="Never prompt (as migrate --no-input).")

    def handle(self, *args, interactive=True, verbosity=1, **options):
        if connection.vendor != "postgresql":
            call_command("migrate", interactive=interactive, verbosity=verbosity)
            return
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
        try:
            call_command("migrate", interactive=interactive, verbosity=verbosity)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
