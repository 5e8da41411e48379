"""Every scheduled command records its last success and failure, and a failure emails the
operators: one rule, here, for all of them.

A command opts in by inheriting ``ScheduledJobCommand`` (instead of ``BaseCommand``)::

    class Command(ScheduledJobCommand):
        job_name = "audit_verify"       # default: the command's module name

The outcome is written to the cache shared by every pod (Redis in the cluster), so it
outlives the CronJob pod that ran the command; web exports it as
``dds_job_last_success_timestamp_seconds`` / ``..._failure_...`` / ``dds_job_last_duration_
seconds`` (ddsite.metrics_export.StateCollector), and the PrometheusRule alerts on a stale or
failed job. A failure (an exception, a ``CommandError``, a non-zero exit) also queues one
email to ``DDS_OPERATOR_EMAILS`` and is logged at ERROR; the command still fails (so the
Job's status and exit code tell the truth).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.management.base import BaseCommand

from core import logging_json, metrics
from jobs.schedule import JOBS as SCHEDULED
from mail.services import mail_send_template

logger = logging.getLogger("dds.jobs")

#: The scheduled commands (jobs.schedule: the CronJobs / beat) and how often each runs;
#: all are exported, even before their first run. key_rotations_resume is run by operators
#: (docs/operations.md) and has no schedule, so no staleness alert.
UNSCHEDULED = ("key_rotations_resume",)


def _interval(cron: str) -> int:
    """The longest gap between two runs of a cron line, roughly (alerts add slack)."""
    minute, hour, day_of_month, month, day_of_week = cron.split()
    if hour == "*":
        return 3600
    if day_of_month == "*" and day_of_week == "*":
        return 24 * 3600
    if day_of_month == "*":
        return 7 * 24 * 3600
    return 31 * 24 * 3600


def _schedule() -> dict[str, int]:
    return {job.command: _interval(job.cron) for job in SCHEDULED}


INTERVALS: dict[str, int] = _schedule()
JOBS: tuple[str, ...] = (*INTERVALS, *[j for j in UNSCHEDULED if j not in INTERVALS])


def _key(job: str) -> str:
    return f"dds:jobs:{job}"


def job_states() -> dict[str, dict[str, Any]]:
    """job -> {last_success, last_failure, last_duration, last_error} (epoch seconds)."""
    found = cache.get_many([_key(job) for job in JOBS])
    return {job: found.get(_key(job)) or {} for job in JOBS}


def _record(job: str, **fields: Any) -> None:
    # One key per job, each written by that job only (CronJobs use concurrencyPolicy: Forbid).
    state = cache.get(_key(job)) or {}
    state.update(fields)
    cache.set(_key(job), state, timeout=None)


def operator_emails() -> list[str]:
    return [a.strip() for a in settings.DDS_OPERATOR_EMAILS if a.strip()]


def _notify_failure(job: str, error: BaseException) -> None:
    context = {"job": job, "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
               "error_type": type(error).__name__, "error": str(error)}
    try:
        mail_send_template(template="jobs/failed", context=context, to=operator_emails())
    except Exception:
        logger.exception("could not queue the failure email for job %s", job)


def run_job(job: str, fn: Callable[[], Any]) -> Any:
    """Run one scheduled job's body, recording its outcome (see the module docstring)."""
    outer_task = logging_json.current().get("task")  # e.g. beat's ddsite.tasks.run_scheduled
    logging_json.bind(task=f"job:{job}")
    start = time.monotonic()
    try:
        result = fn()
    except SystemExit as exc:
        if exc.code in (0, None):
            _succeeded(job, start)
            raise
        _failed(job, start, exc)
        raise
    except BaseException as exc:
        _failed(job, start, exc)
        raise
    else:
        _succeeded(job, start)
        return result
    finally:
        logging_json.bind(task=outer_task)


def _succeeded(job: str, start: float) -> None:
    seconds = time.monotonic() - start
    try:
        _record(job, last_success=time.time(), last_duration=seconds)
    except Exception:
        logger.exception("could not record the success of job %s", job)
    metrics.JOB_RUNS.labels(command=job, outcome="success").inc()
    logger.info("job %s succeeded", job,
                extra={"command": job, "duration_ms": round(seconds * 1e3)})


def _failed(job: str, start: float, error: BaseException) -> None:
    seconds = time.monotonic() - start
    logger.error("job %s failed: %s: %s", job, type(error).__name__, error,
                 extra={"command": job, "duration_ms": round(seconds * 1e3)})
    try:
        _record(job, last_failure=time.time(), last_duration=seconds,
                last_error=f"{type(error).__name__}: {error}"[:500])
    except Exception:
        logger.exception("could not record the failure of job %s", job)
    metrics.JOB_RUNS.labels(command=job, outcome="failure").inc()
    _notify_failure(job, error)


class ScheduledJobCommand(BaseCommand):
    """A management command that is a scheduled job (see the module docstring)."""

    job_name: str = ""

    def execute(self, *args, **options):
        job = self.job_name or type(self).__module__.rsplit(".", 1)[-1]
        if options.get("dry_run"):  # a dry run changes nothing and records nothing
            return super().execute(*args, **options)
        return run_job(job, lambda: super(ScheduledJobCommand, self).execute(*args, **options))
