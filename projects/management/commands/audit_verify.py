import logging

from django.core.management.base import CommandError

from ddsite import metrics
from ddsite.scheduled_jobs import ScheduledJobCommand
from projects.audit import audit_verify

log = logging.getLogger("dds.audit")


class Command(ScheduledJobCommand):
    help = ("Verify the keyed hash chains of the audit log; exits non-zero if it was "
            "tampered with. Prints (and logs) a checkpoint to keep outside the database.")

    def add_arguments(self, parser):
        parser.add_argument(
            "--checkpoint", default=None,
            help="a checkpoint line of an earlier run (events=N,scopes=M,digest=HEX): the "
                 "log must still hold at least N events (catches a wiped database)")
        parser.add_argument("--min-events", type=int, default=0,
                            help="fail if the log holds fewer events than this")

    def handle(self, *args, **options):
        try:
            result = audit_verify(checkpoint=options["checkpoint"],
                                  min_events=options["min_events"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        metrics.audit_verified(ok=result.ok, events=result.checked)
        if not result.ok:
            where = f" at event {result.first_bad_id}" if result.first_bad_id else ""
            log.error("audit log NOT intact: %s", "; ".join(result.problems))
            raise CommandError(f"audit log is NOT intact{where}: {result.reason} "
                               f"({result.checked} events verified)")
        # The checkpoint goes to the log (OpenSearch) too: outside the database it guards.
        log.info("audit verified checkpoint %s", result.checkpoint)
        self.stdout.write(self.style.SUCCESS(
            f"audit log intact: {result.checked} events in {result.scopes} chains; "
            f"checkpoint {result.checkpoint}"))
