"""Re-queue emails whose task was lost and drop those too old to matter (CronJob)."""

from accounts.mail import mail_flush
from ddsite.scheduled_jobs import ScheduledJobCommand


class Command(ScheduledJobCommand):
    help = ("Send again the queued emails whose Celery task was lost (broker down at "
            "commit, worker killed); drop those older than an invite's lifetime.")

    def handle(self, *args, **options):
        requeued, dropped = mail_flush()
        self.stdout.write(f"Re-queued {requeued} email(s); dropped {dropped}.")
