"""The Celery worker as the image runs it, on Redis, with the monitoring component's env:
its prefork children's task outcomes are summed on its metrics port, and every line it
writes is JSON."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis
from django.db import connection

from core import logging_json, metrics
from ddsite.celery import app
from tests.net import free_port

ROOT = Path(__file__).resolve().parents[2]
BROKER = "redis://127.0.0.1:6379/14"


@pytest.mark.django_db(transaction=True)
def test_worker_exports_task_outcomes_and_logs_json(tmp_path):
    redis.Redis.from_url(BROKER).flushdb()
    db = connection.settings_dict
    port = free_port()
    env = {**os.environ, "PYTHON": sys.executable, "DJANGO_SETTINGS_MODULE": "ddsite.settings",
           "DEBUG": "1", "CELERY_BROKER_URL": BROKER, "CELERY_CONCURRENCY": "2",
           "DDS_VAR_DIR": str(tmp_path), "DDS_METRICS_PORT": str(port),
           "DDS_METRICS_ADDR": "127.0.0.1",
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
           "DDS_WORKER_HEARTBEAT_FILE": str(tmp_path / "heartbeat"),
           "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:"
                           f"{db['PORT'] or 5432}/{db['NAME']}"}
    log = open(tmp_path / "worker.log", "wb")
    proc = subprocess.Popen([str(ROOT / "docker/entrypoint.sh"), "worker"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        with app.connection_for_write(BROKER) as conn:
            for command in ("invites_delete_expired", "invites_delete_expired", "no_such_job"):
                app.send_task("ddsite.tasks.run_scheduled", (command,), connection=conn)
        deadline = time.monotonic() + 90
        samples: dict = {}
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            try:
                samples, _ = metrics.scrape(url)
            except httpx.HTTPError:
                samples = {}
            done = metrics.total(samples, "dds_celery_tasks_total",
                                 task="ddsite.tasks.run_scheduled")
            if done >= 3:
                break
            time.sleep(0.5)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    task = "ddsite.tasks.run_scheduled"
    assert metrics.total(samples, "dds_celery_tasks_total", task=task, outcome="success") == 2
    assert metrics.total(samples, "dds_celery_tasks_total", task=task, outcome="failure") == 1
    assert metrics.total(samples, "dds_celery_task_duration_seconds_count", task=task) == 3
    assert metrics.total(samples, "dds_job_runs_total", command="invites_delete_expired",
                         outcome="success") == 2
    text = (tmp_path / "worker.log").read_text()
    records = logging_json.parse_json_lines(text)
    failed = [r for r in records if r["level"] == "ERROR" and r.get("task") == task]
    assert failed and all(r["task_id"] for r in failed)
    assert any(r["logger"] == "dds.jobs" and r.get("command") == "invites_delete_expired"
               for r in records)
