"""Shared body of the scheduled-work commands (run by operators and Kubernetes CronJobs)."""

from collections.abc import Callable
from typing import ClassVar

from jobs.runner import ScheduledJobCommand


class ScheduledCommand(ScheduledJobCommand):
    # A scheduled job: its outcome is recorded and a failure emails the operators.
    #: service(dry_run=...) -> the ids of the projects handled (or to handle)
    service: ClassVar[Callable[..., list[str]]]
    verb = ""

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true",
                            help="Print what would change and change nothing.")

    def handle(self, *args, dry_run=False, **options):
        ids = type(self).service(dry_run=dry_run)
        prefix = "would " if dry_run else ""
        for public_id in ids:
            self.stdout.write(f"{prefix}{self.verb} {public_id}")
        self.stdout.write(f"{len(ids)} project(s) {'to ' + self.verb if dry_run else 'done'}")
