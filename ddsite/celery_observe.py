"""Celery: task outcomes and durations as metrics, task ids on log lines, and the worker's
own metrics endpoint.

Imported by every worker at start (``CELERY_IMPORTS`` in settings). With
``PROMETHEUS_MULTIPROC_DIR`` set (the monitoring component sets it), the prefork children
write their samples there and the worker's main process serves their sum on
``DDS_METRICS_PORT`` (``GET /metrics``), which the worker's ServiceMonitor scrapes.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

from celery import signals
from celery.apps import worker as _celery_worker_app
from django.conf import settings
from prometheus_client import multiprocess, start_http_server

from core import logging_json, metrics

logger = logging.getLogger(__name__)
_started: dict[str, float] = {}


@signals.task_prerun.connect(dispatch_uid="dds-task-prerun")
def _prerun(task_id=None, task=None, **kwargs):
    _started[task_id] = time.monotonic()
    logging_json.bind(task_id=task_id, task=getattr(task, "name", None))


@signals.task_failure.connect(dispatch_uid="dds-task-failure")
def _failure(task_id=None, sender=None, **kwargs):
    # Sent before postrun, and also when an eager task's error propagates (no postrun).
    start = _started.pop(task_id, None)
    metrics.celery_task(task=getattr(sender, "name", "unknown"), outcome="failure",
                        seconds=None if start is None else time.monotonic() - start)


@signals.task_postrun.connect(dispatch_uid="dds-task-postrun")
def _postrun(task_id=None, task=None, state=None, retval=None, **kwargs):
    if task_id not in _started:  # counted as a failure already
        logging_json.bind(task_id=None, task=None)
        return
    start = _started.pop(task_id, None)
    outcome = {"SUCCESS": "success", "FAILURE": "failure", "RETRY": "retry"}.get(
        str(state), str(state or "unknown").lower())
    if state is None:
        outcome = "failure"  # an eager task whose error propagated to its caller
    metrics.celery_task(task=getattr(task, "name", "unknown"), outcome=outcome,
                        seconds=None if start is None else time.monotonic() - start)
    logging_json.bind(task_id=None, task=None)


def _say_json(msg: str, f=sys.__stderr__, end: str = "\n") -> None:
    """Celery's signal handlers print ("worker: Warm shutdown"): as a JSON line instead.

    Written straight to the stream (no logging locks: this runs in a signal handler).
    """
    line = json.dumps({"time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                       "level": "INFO", "logger": "celery.worker", "message": str(msg)})
    f.write(line + "\n")
    f.flush()


_celery_worker_app.safe_say = _say_json


@signals.celeryd_init.connect(dispatch_uid="dds-worker-init")
def _worker_init(instance=None, **kwargs):
    # observability imports this module to connect it: the import goes one way at load.
    from ddsite.observability import connect_signals  # noqa: PLC0415 - import cycle by design

    connect_signals()
    if instance is not None:
        # The startup banner is plain text on stdout; every line the worker writes is JSON.
        instance.quiet = True
        logger.info("celery worker starting", extra={"hostname": getattr(instance, "hostname",
                                                                          None)})
    directory = metrics.multiprocess_dir()
    if directory:  # samples of a previous run of this pod are not this run's
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        mine = f"_{os.getpid()}.db"
        for child in path.iterdir():
            if child.is_file() and not child.name.endswith(mine):
                child.unlink()
            elif child.is_dir():
                shutil.rmtree(child, ignore_errors=True)


@signals.worker_ready.connect(dispatch_uid="dds-worker-ready")
def _worker_ready(**kwargs):
    port = getattr(settings, "DDS_METRICS_PORT", 0)
    if not port:
        return
    if not metrics.multiprocess_dir():
        logger.warning("PROMETHEUS_MULTIPROC_DIR is not set: the worker's metrics cover its "
                       "main process only")
    start_http_server(port, addr=os.environ.get("DDS_METRICS_ADDR", "0.0.0.0"),  # noqa: S104
                      registry=metrics.process_registry())
    logger.info("worker metrics on port %s", port)


@signals.worker_process_shutdown.connect(dispatch_uid="dds-worker-child-exit")
def _child_exit(pid=None, **kwargs):
    if metrics.multiprocess_dir():
        multiprocess.mark_process_dead(pid or os.getpid())
