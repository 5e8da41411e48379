"""A register and reset journey through gunicorn (the image's entrypoint, DEBUG off): the
log shows the real client address and none of the tokens the journey used."""

from __future__ import annotations

import json
import re
import secrets

import httpx
import pytest
from django.core import mail

from ddsite.tests.gunicorn import serve_web
from tests.net import free_port

CLIENT = "203.0.113.77"


def _mailed_link(tmp_path, marker: str) -> str:
    for path in sorted((tmp_path / "mail").glob("*"), key=lambda p: p.stat().st_mtime,
                       reverse=True):
        found = re.search(r"(https?://\S*" + re.escape(marker) + r"\S*)", path.read_text())
        if found:
            return found.group(1)
    raise AssertionError(f"no {marker} link mailed")


@pytest.mark.django_db(transaction=True)
def test_register_and_reset_journey_leaves_no_token_in_the_log(tmp_path):
    from accounts.models import Role
    from accounts.services import invite_create, unit_create
    from accounts.tests.helpers import keyed_user
    from audit.models import AuditEvent

    unit = unit_create(name="Log unit", display_name="Log unit", contact_email="u@example.org",
                       internal_ref="logu")
    admin, _ = keyed_user(Role.UNIT_ADMIN, unit)
    invite_create(email="journey@example.org", role=Role.UNIT_PERSONNEL, by=admin)
    invite_token = re.search(r"\?t=(\S+)", mail.outbox[-1].body).group(1)

    port = free_port()
    proc, log = serve_web(tmp_path, port)
    base = f"http://127.0.0.1:{port}"
    headers = {"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https"}
    password = "Pw-Journey-" + secrets.token_hex(4)
    new_password = "Pw-Reset-" + secrets.token_hex(4)
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            r = http.get(f"/accounts/register/?t={invite_token}")
            assert r.status_code == 302
            r = http.post("/api/v1/auth/register", json={
                "token": invite_token, "username": "journey", "name": "Jour Ney",
                "password": password, "accept_agreement": True})
            assert r.status_code == 201, r.text
            r = http.post("/api/v1/auth/password-reset", json={"email": "journey@example.org"})
            assert r.status_code == 202
            link = _mailed_link(tmp_path, "/accounts/reset/")
            uid, reset_token = link.rstrip("/").split("/")[-2:]
            assert http.get(f"/accounts/reset/{uid}/{reset_token}/").status_code == 200
            assert http.get(f"/accounts/reset/{uid}/{reset_token}x/").status_code == 400
            r = http.post("/api/v1/auth/password-reset/confirm", json={
                "uid": uid, "token": reset_token, "new_password": new_password})
            assert r.status_code == 200, r.text
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
    text = (tmp_path / "server.log").read_text()
    for secret in (invite_token, reset_token, password, new_password):
        assert secret not in text
    # Access lines are JSON (core.logging_json); the client is the one the ingress saw.
    access = [json.loads(line) for line in text.splitlines()
              if "/accounts/re" in line and "HTTP/1.1" in line]
    assert len(access) >= 3, text[-2000:]
    assert all(line["logger"] == "gunicorn.access" for line in access), access
    assert all(line["client_ip"] == CLIENT for line in access), access
    assert "[redacted]" in text
    # The audit log saw the client, not the ingress.
    assert AuditEvent.objects.filter(action="user.register", ip=CLIENT).exists()
    assert AuditEvent.objects.filter(action="user.password_reset", ip=CLIENT).exists()
