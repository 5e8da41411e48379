import logging

from django.core.cache import cache
from django.core.management.base import CommandError

from audit.services import audit_verify
from core import metrics
from jobs.runner import ScheduledJobCommand

log = logging.getLogger("dds.audit")
#: The last good checkpoint, in the cache shared by every pod (Redis in the cluster):
#: outside the database, so a database wiped of its events *and* heads fails the next run.
CHECKPOINT_CACHE_KEY = "dds:audit:checkpoint"


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
        parser.add_argument("--no-cached-checkpoint", action="store_true",
                            help="do not compare with (nor store) the last run's checkpoint "
                                 "kept in the shared cache")

    def handle(self, *args, **options):
        use_cache = not options["no_cached_checkpoint"]
        checkpoint = options["checkpoint"]
        if checkpoint is None and use_cache:
            checkpoint = cache.get(CHECKPOINT_CACHE_KEY)
        try:
            result = audit_verify(checkpoint=checkpoint, min_events=options["min_events"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        metrics.audit_verified(ok=result.ok, events=result.checked)
        if not result.ok:
            where = f" at event {result.first_bad_id}" if result.first_bad_id else ""
            log.error("audit log NOT intact: %s", "; ".join(result.problems))
            raise CommandError(f"audit log is NOT intact{where}: {result.reason} "
                               f"({result.checked} events verified)")
        # The checkpoint goes to the log (OpenSearch) and the cache too: outside the
        # database it guards.
        log.info("audit verified checkpoint %s", result.checkpoint)
        if use_cache:
            cache.set(CHECKPOINT_CACHE_KEY, result.checkpoint, timeout=None)
        self.stdout.write(self.style.SUCCESS(
            f"audit log intact: {result.checked} events in {result.scopes} chains; "
            f"checkpoint {result.checkpoint}"))
