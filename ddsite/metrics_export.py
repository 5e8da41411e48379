"""Prometheus exposition: the recorded samples (core.metrics) plus the gauges read at
scrape time from the database and the shared cache (``StateCollector``, web only).

The endpoint is served on a separate port only (``DDS_METRICS_PORT``,
``ddsite.observability``), never through the ingress; see docs/operations.md.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from accounts.models import Unit
from core.metrics import AUDIT_STATE_KEY, process_registry
from ddsite.celery import app
from jobs.runner import INTERVALS, job_states
from keys.models import KeyRotation, KeyRotationStatus
from projects.models import Project, ProjectStatus
from transfers.annotations import with_unit_storage
from transfers.models import Upload, UploadStatus

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------- exporting
class StateCollector:
    """Gauges read at scrape time from the database and the shared cache (web only)."""

    _broker_cache: tuple[float, float] = (0.0, -1.0)

    def describe(self):
        return []

    def collect(self):
        yield from _safe_collect(self._storage)
        yield from _safe_collect(self._projects)
        yield from _safe_collect(self._uploads)
        yield from _safe_collect(self._jobs)
        yield from _safe_collect(self._audit)
        yield from _safe_collect(self._rotations)
        yield from _safe_collect(self._broker)

    def _storage(self):
        used = GaugeMetricFamily("dds_unit_storage_used_bytes",
                                 "Stored bytes of live file versions, per unit.",
                                 labels=["unit"])
        reserved = GaugeMetricFamily("dds_unit_storage_reserved_bytes",
                                     "Bytes reserved by uploads in progress, per unit.",
                                     labels=["unit"])
        quota = GaugeMetricFamily("dds_unit_quota_bytes", "Quota per unit.", labels=["unit"])
        warning = GaugeMetricFamily("dds_unit_quota_warning_ratio",
                                    "Fraction of the quota at which the unit is warned.",
                                    labels=["unit"])
        # The same totals as the admin's unit list (one query for all units).
        # (the stubs cannot see fields added by annotate() through a generic helper)
        units = with_unit_storage(Unit.objects.all()).values_list(  # type: ignore[misc]
            "internal_ref", "quota_bytes", "warning_level", "stored_bytes", "reserved_bytes")
        for ref, quota_bytes, level, used_bytes, reserved_bytes in units:
            used.add_metric([ref], used_bytes)
            reserved.add_metric([ref], reserved_bytes)
            quota.add_metric([ref], quota_bytes)
            warning.add_metric([ref], level)
        return [used, reserved, quota, warning]

    def _projects(self):
        family = GaugeMetricFamily("dds_projects", "Projects by status.", labels=["status"])
        counts = dict(Project.objects.values_list("status").annotate(n=Count("id")))
        for value in ProjectStatus.values:
            family.add_metric([value], counts.get(value, 0))
        return [family]

    def _uploads(self):
        family = GaugeMetricFamily("dds_uploads_in_progress", "Multipart uploads in progress.")
        family.add_metric([], Upload.objects.filter(status=UploadStatus.IN_PROGRESS).count())
        return [family]

    def _jobs(self):
        success = GaugeMetricFamily("dds_job_last_success_timestamp_seconds",
                                    "When each scheduled job last succeeded (0: never).",
                                    labels=["command"])
        failure = GaugeMetricFamily("dds_job_last_failure_timestamp_seconds",
                                    "When each scheduled job last failed (0: never).",
                                    labels=["command"])
        duration = GaugeMetricFamily("dds_job_last_duration_seconds",
                                     "Run time of each scheduled job's last run.",
                                     labels=["command"])
        interval = GaugeMetricFamily("dds_job_interval_seconds",
                                     "Longest gap between two scheduled runs of each job.",
                                     labels=["command"])
        for job, state in job_states().items():
            success.add_metric([job], state.get("last_success", 0))
            failure.add_metric([job], state.get("last_failure", 0))
            duration.add_metric([job], state.get("last_duration", 0))
        for job, seconds in INTERVALS.items():
            interval.add_metric([job], seconds)
        return [success, failure, duration, interval]

    def _audit(self):
        state = cache.get(AUDIT_STATE_KEY) or {}
        ok = GaugeMetricFamily("dds_audit_verify_ok",
                               "1 if the last audit verification found the chain intact, 0 if "
                               "not, -1 before the first verification.")
        ok.add_metric([], -1 if "ok" not in state else int(state["ok"]))
        events = GaugeMetricFamily("dds_audit_verified_events",
                                   "Events in the chain at its last successful verification.")
        events.add_metric([], state.get("events", 0))
        head = GaugeMetricFamily("dds_audit_verified_head_id",
                                 "Id of the newest event covered by the last successful "
                                 "verification (0: unknown).")
        head.add_metric([], state.get("head_id") or 0)
        at = GaugeMetricFamily("dds_audit_verified_timestamp_seconds",
                               "When the chain was last verified intact (0: never).")
        at.add_metric([], state.get("verified_at", 0))
        return [ok, events, head, at]

    def _rotations(self):
        running = KeyRotation.objects.filter(status=KeyRotationStatus.RUNNING)
        count = GaugeMetricFamily("dds_key_rotations_running", "Project key rotations running.")
        count.add_metric([], running.count())
        oldest = running.aggregate(m=Min("started_at"))["m"]
        age = GaugeMetricFamily("dds_key_rotation_oldest_running_seconds",
                                "Age of the oldest running key rotation (0: none).")
        age.add_metric([], (timezone.now() - oldest).total_seconds() if oldest else 0)
        return [count, age]

    def _broker(self):
        family = GaugeMetricFamily("dds_broker_up",
                                   "1 if the Celery broker answered (cached 15 s), 0 if not; "
                                   "1 without a broker (tasks run in-process).")
        if not settings.CELERY_BROKER_URL:
            family.add_metric([], 1)
            return [family]
        checked, value = StateCollector._broker_cache
        if time.monotonic() - checked > 15 or value < 0:
            value = float(_broker_reachable())
            StateCollector._broker_cache = (time.monotonic(), value)
        family.add_metric([], value)
        return [family]


def _broker_reachable() -> bool:
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return True
    except Exception:  # noqa: BLE001 - any failure means "down"
        return False


def _safe_collect(part):
    try:
        return part()
    except Exception:
        logger.exception("metrics: collecting %s failed", part.__name__)
        return []


def render(*, state: bool = True) -> bytes:
    """The exposition text: recorded samples plus (``state``) the scrape-time gauges."""
    out = generate_latest(process_registry())
    if state:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(StateCollector())
        out += generate_latest(registry)
    return out


def exported_families() -> set[str]:
    """Every family the app can export (also those without samples yet); needs the DB."""
    names = {family.name for family in REGISTRY.collect()}
    names |= {family.name for family in StateCollector().collect()}
    return {n for n in names if n.startswith("dds_")}


