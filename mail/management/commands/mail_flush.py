"""Re-queue emails whose task was lost and drop those too old to matter (CronJob)."""

from jobs.runner import ScheduledJobCommand
from mail.services import mail_flush


class Command(ScheduledJobCommand):
    help = ("Send again the queued emails whose Celery task was lost (broker down at "
            "commit, worker killed); drop those older than an invite's lifetime.")

    def handle(self, *args, **options):
        requeued, dropped = mail_flush()
        self.stdout.write(f"Re-queued {requeued} email(s); dropped {dropped}.")
