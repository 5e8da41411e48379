
from jobs.runner import ScheduledJobCommand
from transfers.services.uploads import uploads_abort_stale


class Command(ScheduledJobCommand):
    help = ("Abort multipart uploads older than DDS_UPLOAD_STALE_HOURS and release their "
            "quota reservations (the same service Celery beat runs).")

    def handle(self, *args, **options):
        self.stdout.write(f"{uploads_abort_stale()} stale upload(s) aborted")
