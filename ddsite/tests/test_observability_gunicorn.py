"""A whole journey through the image's entrypoint (gunicorn, DEBUG off) with the real `dds`
client: register from an invite, log in with the emailed code, put, get, a failed login, a
password reset. Every line any process wrote is one JSON object with no secret the journey
used, and the metrics port (never the app port) reports the journey.

The helpers this uses are the ones the production-shape test calls:
``core.logging_json.parse_json_lines`` / ``assert_no_secrets`` and
``core.metrics.scrape`` / ``total``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.core import mail

from core import logging_json, metrics
from ddsite.tests.gunicorn import serve_web
from tests.net import free_port

ROOT = Path(__file__).resolve().parents[2]
CLIENT = "203.0.113.80"


def _mail_since(tmp_path, seen: set[Path], pattern: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted((tmp_path / "mail").glob("*")):
            if path in seen:
                continue
            found = re.search(pattern, path.read_text())
            if found:
                seen.add(path)
                return found.group(1)
        time.sleep(0.1)
    raise AssertionError(f"nothing matching {pattern} was mailed")


class Dds:
    def __init__(self, url: str, config: Path, password: str):
        self.url, self.config, self.password = url, config, password

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DDS_")}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        env.update(DDS_CONFIG_DIR=str(self.config), DDS_URL=self.url, PYTHONPATH=str(ROOT),
                   DDS_PASSWORD=self.password, COLUMNS="200")
        return env

    def __call__(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, env=self.env(),
                              text=True, capture_output=True, timeout=300,
                              stdin=subprocess.DEVNULL)

    def login(self, username: str, code_from) -> str:
        proc = subprocess.Popen([sys.executable, "-m", "cli", "auth", "login", "-u", username],
                                cwd=ROOT, env=self.env(), text=True, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        code = code_from()
        out, err = proc.communicate(code + "\n", timeout=120)
        assert proc.returncode == 0, err
        return code


@pytest.mark.django_db(transaction=True)
def test_journey_through_gunicorn_logs_json_only_and_is_in_the_metrics(tmp_path):
    from accounts.models import Role
    from accounts.services import invite_create, unit_create
    from accounts.tests.helpers import keyed_user

    unit = unit_create(name="Obs unit", display_name="Obs unit", contact_email="u@example.org",
                       internal_ref="obsu")
    admin, _ = keyed_user(Role.UNIT_ADMIN, unit)
    keyed_user(Role.UNIT_ADMIN, unit)  # projects need two Unit Admins
    invite_create(email="journey@example.org", role=Role.UNIT_ADMIN, by=admin)
    invite_token = re.search(r"\?t=(\S+)", mail.outbox[-1].body).group(1)

    port, metrics_port = free_port(), free_port()
    proc, log = serve_web(tmp_path, port, env={
        "DDS_UPLOAD_MIN_PART_SEGMENTS": "1", "GUNICORN_WORKERS": "2",
        "DDS_METRICS_PORT": str(metrics_port)},
        wait_for=(f"http://127.0.0.1:{metrics_port}/metrics",))
    base = f"http://127.0.0.1:{port}"
    password = "Pw-Journey-" + secrets.token_hex(6)
    new_password = "Pw-Reset-" + secrets.token_hex(6)
    seen: set[Path] = set()
    secrets_seen = [invite_token, password, new_password]
    data = tmp_path / "data"
    data.mkdir()
    (data / "reads.txt").write_text("ACGT" * 50_000)
    try:
        with httpx.Client(base_url=base, headers={"X-Forwarded-For": CLIENT}, timeout=60) as http:
            r = http.post("/api/v1/auth/register", json={
                "token": invite_token, "username": "journey", "name": "Jour Ney",
                "password": password, "accept_agreement": True},
                headers={"X-Request-ID": "journey-register-1"})
            assert r.status_code == 201, r.text
            assert r.headers["X-Request-ID"] == "journey-register-1"

            dds = Dds(base, tmp_path / "cli", password)
            code = dds.login("journey", lambda: _mail_since(tmp_path, seen, r"\b(\d{8})\b"))
            secrets_seen.append(code)
            tokens = [v for p in (tmp_path / "cli").rglob("*") if p.is_file()
                      for v in re.findall(r"[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]+",
                                          p.read_text(errors="replace"))]
            assert tokens, "the CLI kept no token"
            secrets_seen += tokens
            r = dds("project", "create", "-t", "Observed delivery", "-pi", "Prof. P",
                    "--force", "--json")
            assert r.returncode == 0, r.stderr
            project = json.loads(r.stdout)["id"]
            r = dds("data", "put", "-p", project, "-s", str(data / "reads.txt"), "--silent")
            assert r.returncode == 0, r.stderr
            r = dds("data", "get", "-p", project, "--get-all", "-d", str(tmp_path / "out"),
                    "--silent")
            assert r.returncode == 0, r.stderr
            assert (tmp_path / "out" / "reads.txt").read_text() == "ACGT" * 50_000

            r = http.post("/api/v1/auth/login", json={"username": "journey",
                                                      "password": "not-" + password})
            assert r.status_code == 401
            r = http.post("/api/v1/auth/password-reset", json={"email": "journey@example.org"})
            assert r.status_code == 202
            uid, reset_token = _mail_since(
                tmp_path, seen, r"/accounts/reset/(\S+/\S+?)/").split("/")
            secrets_seen.append(reset_token)
            r = http.post("/api/v1/auth/password-reset/confirm", json={
                "uid": uid, "token": reset_token, "new_password": new_password})
            assert r.status_code == 200, r.text

        # The metrics port reports the journey, summed over both gunicorn workers.
        samples, names = metrics.scrape(f"http://127.0.0.1:{metrics_port}/metrics")
        # The app port (the one the ingress reaches) has no metrics.
        assert httpx.get(f"{base}/metrics", timeout=10).status_code == 404
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()

    assert metrics.total(samples, "dds_logins_total", outcome="ok") == 1
    assert metrics.total(samples, "dds_logins_total", outcome="failed") == 1
    assert metrics.total(samples, "dds_http_requests_total", route="auth-register",
                         status="201") == 1
    assert metrics.total(samples, "dds_http_requests_total", route="auth-login",
                         status="401") == 1
    assert metrics.total(samples, "dds_http_request_duration_seconds_count") >= 10
    assert metrics.total(samples, "dds_uploads_started_total") == 1
    assert metrics.total(samples, "dds_transfer_files_total", direction="upload") == 1
    assert metrics.total(samples, "dds_transfer_files_total", direction="download") == 1
    stored = metrics.total(samples, "dds_transfer_bytes_total", direction="upload")
    assert stored > 0
    assert metrics.total(samples, "dds_transfer_bytes_total", direction="download") == stored
    assert metrics.total(samples, "dds_unit_storage_used_bytes", unit="obsu") == stored
    assert metrics.total(samples, "dds_projects", status="in_progress") == 1
    assert metrics.total(samples, "dds_uploads_in_progress") == 0
    assert {"dds_job_last_success_timestamp_seconds", "dds_kdf_queue_depth",
            "dds_audit_verify_ok", "dds_broker_up"} <= names

    text = (tmp_path / "server.log").read_text()
    records = logging_json.parse_json_lines(text)
    logging_json.assert_no_secrets(text, secrets_seen)
    access = [r for r in records if r["logger"] == "gunicorn.access"]
    assert len(access) >= 15
    assert all(r["request_id"] and r["client_ip"] and "duration_ms" in r for r in access)
    register = next(r for r in access if r.get("route") == "auth-register")
    assert register["request_id"] == "journey-register-1"
    assert register["client_ip"] == CLIENT and register["status"] == 201
    # The CLI's requests carry its user, and the project's requests the project.
    assert any(r.get("user_id") and r.get("project_id") == project for r in access)
    assert {"gunicorn.error", "gunicorn.access"} <= {r["logger"] for r in records}
