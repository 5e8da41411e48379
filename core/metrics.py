"""Prometheus metrics: the families the app exports and the small API that records them.

Recording (call from anywhere; cheap, never raises, works with or without gunicorn)::

    from core import metrics
    metrics.login(outcome="ok")                    # ok | failed | locked | throttled
    with metrics.kdf_queued():                     # a password KDF waiting/running
        ...
    metrics.kdf_observe(seconds=0.8)               # one Argon2id derivation
    metrics.transfer(direction="upload", files=1, nbytes=123)
    metrics.transfer_failed(direction="download", reason="checksum")
    metrics.audit_verified(ok=True, events=1234, head_id=99)   # after a verification
    metrics.audit_checkpoint(scope="project:abc", seq=17)       # issue 13's checkpoints
    metrics.job_succeeded / job_failed             # via jobs.runner only

Exporting is ``ddsite.metrics_export`` (the composition layer: it also reads state from
every app). Under gunicorn every worker writes its samples to ``PROMETHEUS_MULTIPROC_DIR``
(set by ddsite/gunicorn_conf.py) and a scrape sums them; see docs/operations.md.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator

import httpx
from django.core.cache import cache
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
)
from prometheus_client.parser import text_string_to_metric_families

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
        except Exception:
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
    state = cache.get(AUDIT_STATE_KEY) or {}
    state.update(ok=bool(ok), at=time.time())
    if ok:
        state.update(events=int(events), head_id=head_id, verified_at=time.time())
    cache.set(AUDIT_STATE_KEY, state, timeout=None)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def process_registry() -> CollectorRegistry:
    """The samples recorded by this process, or by all gunicorn/Celery workers."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


# --------------------------------------------------------------------------- tests, CI
def parse(text: str) -> dict[str, dict[tuple, float]]:
    """Exposition text -> {sample name: {sorted label items: value}}.

    For tests (and the production-shape test)::

        samples = metrics.parse(httpx.get(f"http://127.0.0.1:{port}/metrics").text)
        samples["dds_http_requests_total"][(("method", "GET"), ("route", "healthz"),
                                            ("status", "200"))]
    """
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[key] = sample.value
    return samples


def scrape(url: str, timeout: float = 10) -> tuple[dict[str, dict[tuple, float]], set[str]]:
    """GET a metrics endpoint (e.g. ``http://127.0.0.1:9100/metrics``): (samples, families)."""
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
