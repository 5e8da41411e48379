"""gunicorn's config for DDS (``--config python:ddsite.gunicorn_conf``, docker/entrypoint.sh).

Metrics in multiprocess mode: each worker writes its samples to files in
``PROMETHEUS_MULTIPROC_DIR`` (a fresh directory per gunicorn master when not given), a
scrape sums them, and a dead worker's live gauges are dropped (``child_exit``).

With ``DDS_METRICS_PORT`` set, gunicorn listens on a second port, on the host of
``DDS_BIND``, where ddsite.observability answers ``/metrics`` and nothing else. The
Service behind the ingress does not expose that port.
"""

from __future__ import annotations

import os
import shutil
import tempfile

_OWN_DIR = False
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Set before any worker imports prometheus_client: the mode is chosen at import.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="dds-metrics-")
    _OWN_DIR = True


def metrics_bind(bind: list[str], port: str | None) -> list[str]:
    """The listeners: the app's, plus the metrics port on the first listener's host."""
    if not port or port == "0":
        return list(bind)
    host = bind[0].rsplit(":", 1)[0] if bind and ":" in bind[0] else "0.0.0.0"  # noqa: S104
    extra = f"{host}:{int(port)}"
    return list(bind) if extra in bind else [*bind, extra]


def on_starting(server):
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):  # a previous master's samples are not ours
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            os.unlink(path)
    server.cfg.set("bind", metrics_bind(server.cfg.bind, os.environ.get("DDS_METRICS_PORT")))


def post_worker_init(worker):
    # The app is loaded (Django set up): make the S3 client before the first request.
    try:
        from transfers.storage.s3 import s3_warm_up  # noqa: PLC0415 - after Django setup

        s3_warm_up()
    except Exception:
        worker.log.exception("could not make the S3 client at start; first use will")


def child_exit(server, worker):
    # Not at the top: prometheus_client picks its value class from PROMETHEUS_MULTIPROC_DIR
    # when first imported, and this file sets that variable first.
    from prometheus_client import multiprocess  # noqa: PLC0415

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _OWN_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
