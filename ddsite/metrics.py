"""Prometheus metrics: the families the app exports and the small API that records them.

Recording (call from anywhere; cheap, never raises, works with or without gunicorn)::

    from ddsite import metrics
    metrics.login(outcome="ok")                    # ok | failed | locked | throttled
    with metrics.kdf_queued():                     # a password KDF waiting/running
        ...
    metrics.kdf_observe(seconds=0.8)               # one Argon2id derivation
    metrics.transfer(direction="upload", files=1, nbytes=123)
    metrics.transfer_failed(direction="download", reason="checksum")
    metrics.audit_verified(ok=True, events=1234, head_id=99)   # after a verification
    metrics.audit_checkpoint(scope="project:abc", seq=17)       # issue 13's checkpoints
    metrics.job_succeeded / job_failed             # via ddsite.scheduled_jobs only

Exporting: ``render()`` returns the exposition text. Under gunicorn every worker writes
its samples to ``PROMETHEUS_MULTIPROC_DIR`` (set by ddsite/gunicorn_conf.py) and a scrape
sums them; values that live in the database or the shared cache (storage per unit,
projects by status, uploads in progress, job timestamps, the audit head, running key
rotations, the broker) are read at scrape time by ``StateCollector``, in the web
process only. The endpoint is served on a separate port only (``DDS_METRICS_PORT``,
``ddsite.observability``), never through the ingress; see docs/operations.md.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger(__name__)

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # each process writes its files there
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
TASK_BUCKETS = (0.05, 0.25, 1, 5, 15, 60, 300, 900, 3600)

# ---------------------------------------------------------------------- families
HTTP_REQUESTS = Counter("dds_http_requests", "HTTP requests served, by route and status.",
                        ["method", "route", "status"])
HTTP_LATENCY = Histogram("dds_http_request_duration_seconds",
                         "Time to produce a response, by route.", ["method", "route"],
                         buckets=LATENCY_BUCKETS)
LOGINS = Counter("dds_logins", "Login steps by outcome (ok, failed, locked, throttled).",
                 ["outcome"])
KDF_QUEUE = Gauge("dds_kdf_queue_depth",
                  "Password key derivations (Argon2id) waiting or running.",
                  multiprocess_mode="livesum")
KDF_SECONDS = Histogram("dds_kdf_duration_seconds", "Time of one Argon2id derivation.",
                        buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10))
TRANSFER_FILES = Counter("dds_transfer_files", "Files uploaded (completed) or downloaded.",
                         ["direction"])
TRANSFER_BYTES = Counter("dds_transfer_bytes", "Bytes uploaded (stored) or downloaded.",
                         ["direction"])
TRANSFER_FAILURES = Counter("dds_transfer_failures", "Failed transfers, by reason.",
                            ["direction", "reason"])
UPLOADS_STARTED = Counter("dds_uploads_started", "Uploads started.")
CELERY_TASKS = Counter("dds_celery_tasks", "Celery tasks finished, by outcome.",
                       ["task", "outcome"])
CELERY_TASK_SECONDS = Histogram("dds_celery_task_duration_seconds", "Celery task run time.",
                                ["task"], buckets=TASK_BUCKETS)
# "command", not "job": Prometheus's own target label is "job".
JOB_RUNS = Counter("dds_job_runs", "Scheduled job runs in this process, by outcome.",
                   ["command", "outcome"])
AUDIT_CHECKPOINTS = Counter("dds_audit_checkpoints", "Audit chain checkpoints written.")
QUOTA_WARNINGS = Counter("dds_quota_warnings_sent", "Quota warning emails (one per crossing).")

TRANSFER_DIRECTIONS = ("upload", "download")
LOGIN_OUTCOMES = ("ok", "failed", "locked", "throttled")

for _outcome in LOGIN_OUTCOMES:  # the families exist (at 0) before the first login
    LOGINS.labels(outcome=_outcome)
for _direction in TRANSFER_DIRECTIONS:
    TRANSFER_FILES.labels(direction=_direction)
    TRANSFER_BYTES.labels(direction=_direction)


def _safe(fn):
    """Metrics never break the request that records them."""
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception:  # noqa: BLE001
            logger.exception("metrics: recording failed")
            return None
    wrapper.__doc__, wrapper.__name__ = fn.__doc__, fn.__name__
    return wrapper


HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


# ---------------------------------------------------------------------- recording API
@_safe
def http_request(*, method: str, route: str, status: int, seconds: float) -> None:
    # The method is the client's word: only the known ones become label values, so a
    # loop of invented methods cannot grow the series without bound.
    method = method if method in HTTP_METHODS else "other"
    HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
    HTTP_LATENCY.labels(method=method, route=route).observe(seconds)


@_safe
def login(*, outcome: str) -> None:
    """One login step (password or second factor): ok, failed, locked or throttled."""
    if outcome not in LOGIN_OUTCOMES:
        raise ValueError(outcome)
    LOGINS.labels(outcome=outcome).inc()


@contextlib.contextmanager
def kdf_queued() -> Iterator[None]:
    """Around a password KDF from the moment it is requested until it finishes."""
    KDF_QUEUE.inc()
    start = time.monotonic()
    try:
        yield
    finally:
        KDF_QUEUE.dec()
        KDF_SECONDS.observe(time.monotonic() - start)


@_safe
def kdf_observe(*, seconds: float) -> None:
    KDF_SECONDS.observe(seconds)


@_safe
def transfer(*, direction: str, files: int = 1, nbytes: int = 0) -> None:
    """Files (and their bytes) that finished uploading, or were handed out for download."""
    TRANSFER_FILES.labels(direction=direction).inc(files)
    TRANSFER_BYTES.labels(direction=direction).inc(nbytes)


@_safe
def transfer_failed(*, direction: str, reason: str) -> None:
    """A failed transfer: e.g. upload reason aborted|stale|quota|checksum|header."""
    TRANSFER_FAILURES.labels(direction=direction, reason=reason).inc()


@_safe
def upload_started(*, files: int = 1) -> None:
    UPLOADS_STARTED.inc(files)


@_safe
def celery_task(*, task: str, outcome: str, seconds: float | None) -> None:
    CELERY_TASKS.labels(task=task, outcome=outcome).inc()
    if seconds is not None:
        CELERY_TASK_SECONDS.labels(task=task).observe(seconds)


@_safe
def audit_checkpoint(*, scope: str = "", seq: int | None = None) -> None:
    """An audit chain checkpoint was written (issue 13); the count is exported."""
    AUDIT_CHECKPOINTS.inc()


# State shared by pods (a CronJob pod exits; web exports what it wrote): the cache.
AUDIT_STATE_KEY = "dds:metrics:audit"


@_safe
def audit_verified(*, ok: bool, events: int, head_id: int | None = None) -> None:
    """The result of one full audit chain verification (``manage.py audit_verify``)."""
    from django.core.cache import cache

    state = cache.get(AUDIT_STATE_KEY) or {}
    state.update(ok=bool(ok), at=time.time())
    if ok:
        state.update(events=int(events), head_id=head_id, verified_at=time.time())
    cache.set(AUDIT_STATE_KEY, state, timeout=None)


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
        from accounts.models import Unit
        from transfers.annotations import with_unit_storage

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
        units = with_unit_storage(Unit.objects.all()).values_list(
            "internal_ref", "quota_bytes", "warning_level", "stored_bytes", "reserved_bytes")
        for ref, quota_bytes, level, used_bytes, reserved_bytes in units:
            used.add_metric([ref], used_bytes)
            reserved.add_metric([ref], reserved_bytes)
            quota.add_metric([ref], quota_bytes)
            warning.add_metric([ref], level)
        return [used, reserved, quota, warning]

    def _projects(self):
        from django.db.models import Count

        from projects.models import Project, ProjectStatus

        family = GaugeMetricFamily("dds_projects", "Projects by status.", labels=["status"])
        counts = dict(Project.objects.values_list("status").annotate(n=Count("id")))
        for value in ProjectStatus.values:
            family.add_metric([value], counts.get(value, 0))
        return [family]

    def _uploads(self):
        from transfers.models import Upload, UploadStatus

        family = GaugeMetricFamily("dds_uploads_in_progress", "Multipart uploads in progress.")
        family.add_metric([], Upload.objects.filter(status=UploadStatus.IN_PROGRESS).count())
        return [family]

    def _jobs(self):
        from ddsite.scheduled_jobs import INTERVALS, job_states

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
        from django.core.cache import cache

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
        from django.db.models import Min
        from django.utils import timezone

        from keys.models import KeyRotation, KeyRotationStatus

        running = KeyRotation.objects.filter(status=KeyRotationStatus.RUNNING)
        count = GaugeMetricFamily("dds_key_rotations_running", "Project key rotations running.")
        count.add_metric([], running.count())
        oldest = running.aggregate(m=Min("started_at"))["m"]
        age = GaugeMetricFamily("dds_key_rotation_oldest_running_seconds",
                                "Age of the oldest running key rotation (0: none).")
        age.add_metric([], (timezone.now() - oldest).total_seconds() if oldest else 0)
        return [count, age]

    def _broker(self):
        from django.conf import settings

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
    from ddsite.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return True
    except Exception:  # noqa: BLE001 - any failure means "down"
        return False


def _safe_collect(part):
    try:
        return part()
    except Exception:  # noqa: BLE001 - one broken part must not hide the rest
        logger.exception("metrics: collecting %s failed", part.__name__)
        return []


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def process_registry() -> CollectorRegistry:
    """The samples recorded by this process, or by all gunicorn/Celery workers."""
    from prometheus_client import REGISTRY

    if multiprocess_dir():
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


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
    from prometheus_client import REGISTRY

    names = {family.name for family in REGISTRY.collect()}
    names |= {family.name for family in StateCollector().collect()}
    return {n for n in names if n.startswith("dds_")}


# --------------------------------------------------------------------------- tests, CI
def parse(text: str) -> dict[str, dict[tuple, float]]:
    """Exposition text -> {sample name: {sorted label items: value}}.

    For tests (and the production-shape test)::

        samples = metrics.parse(httpx.get(f"http://127.0.0.1:{port}/metrics").text)
        samples["dds_http_requests_total"][(("method", "GET"), ("route", "healthz"),
                                            ("status", "200"))]
    """
    from prometheus_client.parser import text_string_to_metric_families

    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[key] = sample.value
    return samples


def scrape(url: str, timeout: float = 10) -> tuple[dict[str, dict[tuple, float]], set[str]]:
    """GET a metrics endpoint (e.g. ``http://127.0.0.1:9100/metrics``): (samples, families)."""
    import httpx

    response = httpx.get(url, timeout=timeout)
    response.raise_for_status()
    return parse(response.text), families(response.text)


def families(text: str) -> set[str]:
    """Names of the families exported (also those without samples yet)."""
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


def total(samples: dict, name: str, **labels: str) -> float:
    """Sum of a sample's values over the series whose labels include ``labels``."""
    return sum(value for key, value in samples.get(name, {}).items()
               if all((k, v) in key for k, v in labels.items()))
