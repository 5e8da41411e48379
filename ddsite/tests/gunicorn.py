"""gunicorn through the image's entrypoint (DEBUG off), on pytest's PostgreSQL database,
for tests that need the real server and its log: the test plays the ingress (trusted
proxy on loopback) and keys are cheap, as in ddsite/settings_test.py."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def serve_web(tmp_path: Path, port: int, *, env: dict | None = None,
              wait_for: tuple[str, ...] = ()) -> tuple[subprocess.Popen, object]:
    """Start ``entrypoint.sh web`` on ``port``; returns (process, open log file) once
    ``/healthz`` (and every URL in ``wait_for``) answers. The log is tmp_path/server.log."""
    from django.db import connection

    db = connection.settings_dict
    full_env = {**os.environ, "PYTHON": sys.executable,
                "DJANGO_SETTINGS_MODULE": "ddsite.settings", "DEBUG": "0",
                "SECRET_KEY": secrets.token_urlsafe(64), "ALLOWED_HOSTS": "127.0.0.1",
                "SECURE_SSL_REDIRECT": "0", "DDS_TRUSTED_PROXIES": "127.0.0.1",
                "DDS_MIGRATE": "0", "DDS_KDF_TIME_COST": "1", "DDS_KDF_MEMORY_KIB": "256",
                "DDS_KDF_PARALLELISM": "1", "DDS_USER_RSA_BITS": "2048",
                "DDS_VAR_DIR": str(tmp_path), "STATIC_ROOT": str(tmp_path / "static"),
                "DDS_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "1",
                "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:"
                                f"{db['PORT'] or 5432}/{db['NAME']}",
                **(env or {})}
    full_env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # gunicorn_conf makes its own
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen([str(ROOT / "docker/entrypoint.sh"), "web"], cwd=ROOT,
                            env=full_env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while True:
        try:
            for url in (f"http://127.0.0.1:{port}/healthz", *wait_for):
                httpx.get(url, timeout=5)
            return proc, log
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("gunicorn did not start: "
                            + (tmp_path / "server.log").read_text()[-3000:])
            time.sleep(0.5)
