"""The Dockerfile's entrypoint, run as CI's smoke test: migrate, collectstatic, gunicorn."""

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.net import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db(transaction=True)
def test_entrypoint_web_serves_health_and_admin(tmp_path):
    from django.db import connection

    port = free_port()
    db = connection.settings_dict
    env = {**os.environ,
           "PYTHON": sys.executable,
           "DJANGO_SETTINGS_MODULE": "ddsite.settings",
           "DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(64),
           "ALLOWED_HOSTS": "127.0.0.1", "SECURE_SSL_REDIRECT": "0",
           "DDS_VAR_DIR": str(tmp_path), "STATIC_ROOT": str(tmp_path / "static"),
           "DDS_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "1", "DDS_MIGRATE": "1"}
    if db["ENGINE"].endswith("postgresql"):
        env["DATABASE_URL"] = (f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:"
                               f"{db['PORT'] or 5432}/{db['NAME']}")
    proc = subprocess.Popen([str(ROOT / "docker/entrypoint.sh"), "web"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                    pytest.fail(f"entrypoint did not serve: {out[-3000:]}")
                time.sleep(0.5)
        assert health.status_code == 200
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert ready.json()["checks"]["database"] == "ok"
        login = httpx.get(f"http://127.0.0.1:{port}/accounts/login/", timeout=5)
        assert login.status_code == 200
        # Static files are collected and served by WhiteNoise with DEBUG off.
        css = httpx.get(f"http://127.0.0.1:{port}/static/admin/css/base.css", timeout=5)
        assert css.status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_entrypoint_refuses_an_unknown_role():
    result = subprocess.run([str(ROOT / "docker/entrypoint.sh"), "nonsense"], cwd=ROOT,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "usage" in result.stderr
