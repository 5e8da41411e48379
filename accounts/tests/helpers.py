"""API login helpers for tests: real password, real email code, real tokens."""

from __future__ import annotations

import re
import secrets

from django.core import mail
from django.test import Client, TestCase
from rest_framework.test import APIClient as _APIClient

from accounts.models import Role


class APIClient(_APIClient):
    """Runs the on-commit callbacks (emails) of each request, as a real commit would."""

    def request(self, *args, **kwargs):
        with TestCase.captureOnCommitCallbacks(execute=True):
            return super().request(*args, **kwargs)


class PortalClient(Client):
    def request(self, *args, **kwargs):
        with TestCase.captureOnCommitCallbacks(execute=True):
            return super().request(*args, **kwargs)


def new_password() -> str:
    return "Pw-" + secrets.token_urlsafe(12)


def keyed_user(role=Role.RESEARCHER, unit=None, username=None):
    """A user with a real key pair; returns (user, password)."""
    from keys.tests.helpers import keyed_user as keyed_user_with_kek

    user, password, _kek = keyed_user_with_kek(role, unit, username)
    return user, password


def last_code(email: str) -> str:
    for message in reversed(mail.outbox):
        if email in message.to:
            found = re.search(r"\b(\d{8})\b", message.body)
            if found:
                return found.group(1)
    raise AssertionError(f"no code emailed to {email}")


def last_link(email: str, marker: str) -> str:
    for message in reversed(mail.outbox):
        if email in message.to and marker in message.body:
            return re.search(r"(https?://\S+)", message.body).group(1)
    raise AssertionError(f"no {marker} link emailed to {email}")


def api_login(user, password, client: APIClient | None = None) -> dict:
    """Log in through the API (password, emailed code); returns the token response."""
    client = client or APIClient()
    first = client.post("/api/v1/auth/login", {"username": user.username, "password": password},
                        format="json")
    assert first.status_code == 200, first.content
    pending = first.json()["pending_token"]
    second = client.post("/api/v1/auth/2fa", {"code": last_code(user.email)}, format="json",
                         HTTP_AUTHORIZATION=f"Bearer {pending}")
    assert second.status_code == 200, second.content
    return second.json()


def bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def portal_login(client, user, password: str | None = None) -> None:
    """Log ``client`` in as the portal does (password, then the emailed code), so the
    portal and the admin see a verified user with a live key session."""
    from accounts.tests.factories import TEST_PASSWORD

    with TestCase.captureOnCommitCallbacks(execute=True):
        first = client.post("/accounts/login/", {"username": user.username,
                                                 "password": password or TEST_PASSWORD})
    assert first.status_code == 302, first.content[:500]
    with TestCase.captureOnCommitCallbacks(execute=True):
        second = client.post("/accounts/login/code/", {"code": last_code(user.email)})
    assert second.status_code == 302, second.content[:500]
