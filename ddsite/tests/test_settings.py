"""The production guard, `check --deploy`, health probes and migrations."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]


def _run(code_or_args, env_overrides):
    env = {k: v for k, v in os.environ.items()
           if k not in ("SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "DJANGO_SETTINGS_MODULE")}
    env.update({"DJANGO_SETTINGS_MODULE": "ddsite.settings", **env_overrides})
    return subprocess.run([sys.executable, *code_or_args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_production_refuses_to_start_without_secret_key(tmp_path):
    result = _run(["manage.py", "check"], {"DEBUG": "0", "ALLOWED_HOSTS": "dds.example.org",
                                           "DDS_VAR_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_production_refuses_wildcard_hosts(tmp_path):
    result = _run(["manage.py", "check"], {"DEBUG": "0", "ALLOWED_HOSTS": "*",
                                           "SECRET_KEY": secrets.token_urlsafe(64),
                                           "DDS_VAR_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "wildcard" in result.stderr


def test_check_deploy_has_no_warnings(tmp_path):
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                  {"DEBUG": "0", "ALLOWED_HOSTS": "dds.example.org",
                   "SECRET_KEY": secrets.token_urlsafe(64), "DDS_VAR_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_debug_without_secret_creates_a_private_dev_key(tmp_path):
    result = _run(["manage.py", "check"], {"DEBUG": "1", "DDS_VAR_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    key_file = tmp_path / "dev-secret-key"
    assert key_file.stat().st_mode & 0o077 == 0
    assert len(key_file.read_text()) >= 50


@pytest.mark.django_db
def test_no_missing_migrations():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_checks_the_database(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["database"] == "ok"


@pytest.mark.django_db
def test_readyz_reports_unavailable_database(client, monkeypatch):
    from django.db.backends.utils import CursorWrapper

    def boom(self, *args, **kwargs):
        raise OSError("connection refused")

    monkeypatch.setattr(CursorWrapper, "execute", boom)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "unavailable"


def test_celery_runs_eagerly_without_a_broker():
    from ddsite.celery import app

    assert app.conf.task_always_eager is True


@pytest.mark.django_db
def test_readyz_reports_the_broker_without_depending_on_it(client, settings):
    from ddsite.celery import app

    original = app.conf.broker_url
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/14"
    app.conf.broker_url = settings.CELERY_BROKER_URL
    kubelet = {"REMOTE_ADDR": "10.42.0.1"}  # straight to the pod, not via the ingress
    try:
        assert client.get("/readyz?full", **kubelet).json()["checks"]["broker"] == "ok"
        # Through the ingress (a trusted proxy) the full report is not given.
        assert "broker" not in client.get("/readyz?full").json()["checks"]
        settings.CELERY_BROKER_URL = app.conf.broker_url = "redis://127.0.0.1:9/0"
        # Web does not need the broker to serve: still ready, and the broker is reported.
        response = client.get("/readyz?full", **kubelet)
        assert response.status_code == 200
        assert response.json()["checks"]["broker"] == "unavailable"
        assert client.get("/readyz").json() == {"status": "ok",
                                                "checks": {"database": "ok"}}
    finally:
        app.conf.broker_url = original


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_answer_the_kubelet_host_header_with_debug_off(client, path, caplog):
    """The kubelet sends Host: <pod IP>:8000, which ALLOWED_HOSTS rejects everywhere else."""
    with caplog.at_level("WARNING"):
        response = client.get(path, HTTP_HOST="10.42.3.17:8000")
        assert response.status_code == 200
        assert client.get("/accounts/login/", HTTP_HOST="10.42.3.17:8000").status_code == 400
    assert not [r for r in caplog.records if "healthz" in r.getMessage()
                or "readyz" in r.getMessage()]


def test_production_refuses_silent_embedded_fallbacks(tmp_path):
    result = _run(["manage.py", "check"], {"DEBUG": "0", "ALLOWED_HOSTS": "dds.example.org",
                                           "SECRET_KEY": secrets.token_urlsafe(64),
                                           "DDS_TRUSTED_PROXIES": "10.0.0.0/8",
                                           "DDS_ALLOW_EMBEDDED": "0", "DATABASE_URL": "",
                                           "EMAIL_URL": "", "CELERY_BROKER_URL": "",
                                           "REDIS_URL": "", "DDS_VAR_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "DATABASE_URL, EMAIL_URL, CELERY_BROKER_URL, REDIS_URL not set" in result.stderr
    result = _run(["manage.py", "check"], {"DEBUG": "0", "ALLOWED_HOSTS": "dds.example.org",
                                           "SECRET_KEY": secrets.token_urlsafe(64),
                                           "DDS_TRUSTED_PROXIES": "10.0.0.0/8",
                                           "DDS_ALLOW_EMBEDDED": "0",
                                           "DATABASE_URL": "postgres://u@127.0.0.1:5432/x",
                                           "EMAIL_URL": "smtp://127.0.0.1:25",
                                           "CELERY_BROKER_URL": "",
                                           "REDIS_URL": "redis://127.0.0.1:6379/1",
                                           "DDS_VAR_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "CELERY_BROKER_URL not set" in result.stderr


@pytest.mark.django_db
def test_a_cache_outage_does_not_fail_every_request(client, monkeypatch):
    """The maintenance flag is read on every request: without the cache it comes from the
    database (Redis down must not turn every page into a 500)."""
    from django.core.cache import cache

    def down(*args, **kwargs):
        raise ConnectionError("redis down")

    monkeypatch.setattr(cache, "get", down)
    monkeypatch.setattr(cache, "set", down)
    assert client.get("/accounts/login/").status_code == 200
    # Throttles open up (the database lockout still counts failures): no 500 on login.
    r = client.post("/api/v1/auth/login", {"username": "nobody", "password": "Wrong-pass-1"},
                    content_type="application/json")
    assert r.status_code == 401
