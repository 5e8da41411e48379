"""The periodic jobs: written once, here.

In the cluster Kubernetes CronJobs run them (k8s/base/cronjobs.yaml: one per job, with
the same command, schedule and time zone; ddsite/tests/test_k8s.py checks that they
agree). Celery beat is only for a deployment without Kubernetes, and must never run
beside the CronJobs: its schedule is built from the same list.
"""

from __future__ import annotations

from dataclasses import dataclass

from celery.schedules import crontab

#: Schedules are wall-clock times in this zone (the CronJobs' ``timeZone``).
SCHEDULE_TIME_ZONE = "Europe/Stockholm"


@dataclass(frozen=True)
class Job:
    name: str  #: the CronJob is "dds-<name>"
    command: str  #: management command (``entrypoint.sh manage <command>``)
    cron: str  #: "minute hour day-of-month month day-of-week"


JOBS: tuple[Job, ...] = (
    Job("projects-expire", "projects_expire", "5 0 * * *"),
    Job("projects-archive", "projects_archive", "15 0 * * *"),
    Job("projects-storage-cleanup", "projects_storage_cleanup", "30 * * * *"),
    Job("invites-delete-expired", "invites_delete_expired", "0 1 * * *"),
    Job("uploads-abort-stale", "uploads_abort_stale", "45 * * * *"),
    Job("usage-record", "usage_record", "0 2 1 * *"),
    Job("audit-verify", "audit_verify", "0 3 * * *"),
    Job("mail-flush", "mail_flush", "*/10 * * * *"),
    # Facility operations (docs/operator-guide.md).
    Job("quota-monitor", "quota_monitor", "20 * * * *"),
    Job("storage-reconcile", "storage_reconcile", "0 4 * * 1"),
    Job("usage-report-send", "usage_report_send", "0 6 1 * *"),
    Job("stats-snapshot", "stats_snapshot", "30 6 1 * *"),
)


def beat_schedule() -> dict:
    """CELERY_BEAT_SCHEDULE for ``entrypoint.sh beat`` (never used in the cluster)."""
    schedule = {}
    for job in JOBS:
        minute, hour, day_of_month, month, day_of_week = job.cron.split()
        schedule[job.name] = {
            "task": "ddsite.tasks.run_scheduled", "args": [job.command],
            "schedule": crontab(minute=minute, hour=hour, day_of_month=day_of_month,
                                month_of_year=month, day_of_week=day_of_week)}
    return schedule
