"""The one task Celery beat schedules: run a periodic job's management command, exactly as
a Kubernetes CronJob does (jobs.schedule)."""

from celery import shared_task
from django.core.management import call_command

from jobs.schedule import JOBS


@shared_task(name="ddsite.tasks.run_scheduled")
def run_scheduled(command: str) -> None:
    if command not in {job.command for job in JOBS}:
        raise ValueError(f"{command!r} is not a scheduled job")
    call_command(command)
