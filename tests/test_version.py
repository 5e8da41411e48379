"""One version (pyproject.toml) everywhere, and too-old clients told to upgrade.

The middleware is not in settings.MIDDLEWARE yet (settings.py has another owner): these
tests put it where it belongs, right after the security headers, with the ``settings``
fixture, so they exercise the same stack the site will run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import tomllib
from importlib import metadata
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from click.testing import CliRunner
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.wsgi import WSGIHandler
from django.db import connections

import cli.version
from cli.errors import Exit
from cli.main import cli as dds
from ddsite import version as server_version
from ddsite.version import CLIENT_VERSION_HEADER, ClientVersionMiddleware, parse_version
from tests.net import free_port

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
MIDDLEWARE = "ddsite.version.ClientVersionMiddleware"


@pytest.fixture
def version_check(settings):
    """The site's middleware with the version check in its place; returns ``settings``."""
    stack = [m for m in settings.MIDDLEWARE if m != MIDDLEWARE]
    stack.insert(stack.index("ddsite.middleware.SecurityHeadersMiddleware") + 1, MIDDLEWARE)
    settings.MIDDLEWARE = stack
    return settings


# ------------------------------------------------------------------------- one version


def test_every_reader_reports_the_pyproject_version():
    # A stale install (pyproject bumped, `pip install -e .` not rerun) fails here.
    assert metadata.version("dds") == PYPROJECT
    assert cli.version.__version__ == PYPROJECT
    assert server_version.__version__ == PYPROJECT
    assert parse_version(PYPROJECT) is not None


def test_version_falls_back_to_pyproject_when_not_installed(monkeypatch):
    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(cli.version.metadata, "version", not_installed)
    assert cli.version.package_version() == PYPROJECT
    monkeypatch.setattr(cli.version, "_PYPROJECT", REPO / "no-such-pyproject.toml")
    assert cli.version.package_version() == cli.version.UNKNOWN


def test_cli_version_option():
    result = CliRunner().invoke(dds, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"dds, version {PYPROJECT}"


def test_cli_sends_its_version():
    from cli.client import Api

    api = Api("http://127.0.0.1:9", authenticated=False)
    try:
        assert api.http.headers[CLIENT_VERSION_HEADER] == PYPROJECT
        assert api.http.headers["User-Agent"] == f"dds-cli/{PYPROJECT}"
    finally:
        api.close()


@pytest.mark.django_db  # the maintenance check (cached) reads its flag
def test_version_endpoint_is_public_and_says_only_the_version(client):
    response = client.get("/version")
    assert response.status_code == 200
    assert response.json() == {"version": PYPROJECT}
    assert "no-cache" in response["Cache-Control"]
    assert client.post("/version").status_code == 405


@pytest.mark.django_db
def test_openapi_schema_reports_the_version(client):
    response = client.get("/api/v1/schema", {"format": "json"})
    assert response.status_code == 200
    assert response.json()["info"]["version"] == PYPROJECT


# ------------------------------------------------------------------- version ordering


@pytest.mark.parametrize(("older", "newer"), [
    ("0.1.0", "0.2.0"), ("0.9.9", "0.10.0"), ("1.2", "1.2.1"), ("1.3.0rc1", "1.3.0"),
    ("1.3.0.dev2", "1.3.0"), ("1.2.9", "1.3.0a1"), ("v1.0.0", "1.0.1"),
])
def test_versions_order(older, newer):
    assert parse_version(older) < parse_version(newer)


def test_equal_versions_and_garbage():
    assert parse_version("1.2") == parse_version("1.2.0") == parse_version("v1.2.0")
    assert parse_version("1.2.0+local.3") == parse_version("1.2.0")
    for garbage in ("", "latest", "1.x", "dds-cli", "1.2.3; DROP"):
        assert parse_version(garbage) is None


# ---------------------------------------------------------------- the client check


def test_too_old_client_gets_a_clear_upgrade_message(client, version_check):
    version_check.DDS_MIN_CLIENT_VERSION = "0.3.0"
    response = client.get("/api/v1/projects", headers={CLIENT_VERSION_HEADER: "0.2.9"})
    assert response.status_code == 426
    body = response.json()
    assert body["code"] == "client_too_old" and body["min_client_version"] == "0.3.0"
    assert "0.3.0 or newer" in body["detail"] and "you have 0.2.9" in body["detail"]
    assert "Upgrade the client" in body["detail"]
    # Still a response of this site: the security headers are on it.
    assert "Content-Security-Policy" in response


@pytest.mark.django_db
def test_current_and_newer_clients_pass(client, version_check):
    version_check.DDS_MIN_CLIENT_VERSION = "0.3.0"
    for sent in ("0.3.0", "0.3", "1.0.0", "0.3.1rc1"):
        response = client.get("/api/v1/projects", headers={CLIENT_VERSION_HEADER: sent})
        assert response.status_code == 401, sent  # the API's own answer: log in


def test_pre_release_of_the_minimum_is_too_old(client, version_check):
    version_check.DDS_MIN_CLIENT_VERSION = "0.3.0"
    response = client.get("/api/v1/projects", headers={CLIENT_VERSION_HEADER: "0.3.0rc2"})
    assert response.status_code == 426


def test_unreadable_client_version_is_refused(client, version_check):
    response = client.get("/api/v1/projects", headers={CLIENT_VERSION_HEADER: "banana"})
    assert response.status_code == 426
    assert "you have banana" in response.json()["detail"]


def test_legacy_client_without_the_header_counts_as_0_1_0(client, version_check):
    version_check.DDS_MIN_CLIENT_VERSION = "0.2.0"
    response = client.get("/api/v1/projects", headers={"User-Agent": "dds-cli"})
    assert response.status_code == 426
    assert "you have 0.1.0" in response.json()["detail"]


@pytest.mark.django_db
def test_default_minimum_accepts_every_release(client, version_check):
    del version_check.DDS_MIN_CLIENT_VERSION
    assert server_version.min_client_version()[0] == server_version.DEFAULT_MIN_CLIENT_VERSION
    for headers in ({CLIENT_VERSION_HEADER: "0.1.0"}, {"User-Agent": "dds-cli"}):
        assert client.get("/api/v1/projects", headers=headers).status_code == 401


@pytest.mark.django_db
def test_requests_not_from_the_cli_are_not_checked(client, version_check):
    version_check.DDS_MIN_CLIENT_VERSION = "99.0"
    # A browser or a script: no header, another User-Agent.
    assert client.get("/api/v1/projects", headers={"User-Agent": "curl/8"}).status_code == 401
    # The portal is not the API.
    old = {CLIENT_VERSION_HEADER: "0.1.0"}
    assert client.get("/accounts/login/", headers=old).status_code == 200
    # An old client can still ask which server it talks to.
    response = client.get("/version", headers=old)
    assert response.status_code == 200 and response.json() == {"version": PYPROJECT}


def test_a_minimum_that_is_no_version_stops_the_server(settings):
    settings.DDS_MIN_CLIENT_VERSION = "soon"
    with pytest.raises(ImproperlyConfigured, match="DDS_MIN_CLIENT_VERSION"):
        ClientVersionMiddleware(lambda request: None)


# ------------------------------------------------- end to end: the real `dds` command


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(version_check):
    """The site (built now, with the check in its stack) on a port of its own."""
    handler = WSGIHandler()

    def app(environ, start_response):
        try:
            return handler(environ, start_response)
        finally:
            connections.close_all()  # this thread's, so the test database can be dropped

    httpd = make_server("127.0.0.1", free_port(), app, handler_class=_Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


def _dds_login(url: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DDS_")}
    env.pop("DJANGO_SETTINGS_MODULE", None)  # the CLI must not need Django
    env.update(DDS_CONFIG_DIR=str(tmp_path), PYTHONPATH=str(REPO), DDS_PASSWORD="wrong",
               COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "cli", "--url", url, "auth", "login",
                           "-u", "nobody"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


@pytest.mark.django_db(transaction=True)
def test_dds_command_shows_the_upgrade_message(server, version_check, tmp_path):
    version_check.DDS_MIN_CLIENT_VERSION = "99.0"
    result = _dds_login(server, tmp_path)
    assert result.returncode == Exit.REFUSED
    assert f"needs the dds client 99.0 or newer; you have {PYPROJECT}" in result.stderr


@pytest.mark.django_db(transaction=True)
def test_dds_command_of_the_minimum_version_is_served(server, version_check, tmp_path):
    version_check.DDS_MIN_CLIENT_VERSION = PYPROJECT
    result = _dds_login(server, tmp_path)
    assert result.returncode == Exit.REFUSED  # wrong password: the server's answer
    assert "needs the dds client" not in result.stderr
    assert "password" in result.stderr.lower()
