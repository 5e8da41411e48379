"""A token the API cannot use gets one clear 401: code ``token_not_valid`` and a sentence
that names no token class and repeats no token material (docs/api-errors.md)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from accounts.tests.helpers import api_login, bearer

EXPECTED = {"detail": "Your access token is not valid or has expired: log in again.",
            "code": "token_not_valid"}


def _assert_refused(response, raw: str) -> None:
    assert response.status_code == 401, response.content
    assert response.json() == EXPECTED
    body = response.content.decode()
    for piece in raw.split("."):
        if len(piece) >= 8:  # the header, claims and signature of a JWT
            assert piece not in body


@pytest.mark.django_db
def test_garbage_token():
    _assert_refused(bearer("abc").get("/api/v1/me"), "abc")
    raw = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLWdhcmJhZ2U"
    _assert_refused(bearer(raw).get("/api/v1/me"), raw)


@pytest.mark.django_db
def test_expired_access_token(researcher_keyed):
    user, password = researcher_keyed
    access = api_login(user, password)["access"]
    assert bearer(access).get("/api/v1/me").status_code == 200
    with time_machine.travel(timezone.now() + timedelta(hours=3)):
        _assert_refused(bearer(access).get("/api/v1/me"), access)


@pytest.mark.django_db
def test_refresh_token_used_as_access_token(researcher_keyed):
    user, password = researcher_keyed
    refresh = api_login(user, password)["refresh"]
    _assert_refused(bearer(refresh).get("/api/v1/me"), refresh)


@pytest.mark.django_db
def test_pending_token_keeps_its_own_message(researcher_keyed):
    """The login step's token says so in its own words, with the same code."""
    response = bearer("abc").post("/api/v1/auth/2fa", {"code": "12345678"}, format="json")
    assert response.status_code == 401
    assert response.json() == {"detail": "The login token is not valid or has expired: "
                                         "log in again.", "code": "token_not_valid"}
