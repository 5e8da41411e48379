"""The authenticator-app API (/api/v1/me/totp...), as `dds auth twofactor configure` uses it:
set-up, confirmation with a code computed from the returned secret, the way back to email
codes — with the portal's rules (accounts.services.totp)."""

from __future__ import annotations

import base64
import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import mail
from django_otp.oath import TOTP

from accounts.models import TOTPDevice
from accounts.tests.helpers import APIClient, api_login, bearer, last_link
from audit.actions import AuditAction
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def _code(secret: str, steps_ahead: int = 0) -> str:
    totp = TOTP(base64.b32decode(secret), step=30, digits=6)
    totp.time = time.time() + steps_ahead * 30
    return f"{totp.token():06d}"


def _wrong(secret: str) -> str:
    right = {_code(secret, n) for n in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in right)


@pytest.fixture
def client(researcher_keyed):
    user, password = researcher_keyed
    return user, password, bearer(api_login(user, password)["access"])


def _actions(user) -> list[str]:
    return list(AuditEvent.objects.filter(actor_username=user.username)
                .order_by("id").values_list("action", flat=True))


def test_setup_then_confirm_switches_logins_to_the_app(client):
    user, password, api = client
    r = api.post("/api/v1/me/totp/setup", format="json")
    assert r.status_code == 201, r.content
    assert r["Cache-Control"] == "no-store"
    got = r.json()
    assert got["digits"] == 6 and got["period"] == 30
    uri = urlsplit(got["uri"])
    assert uri.scheme == "otpauth" and uri.netloc == "totp"
    assert user.username in uri.path
    assert parse_qs(uri.query)["secret"] == [got["secret"]]
    assert base64.b32decode(got["secret"]) == TOTPDevice.objects.get(user=user).bin_key
    assert not TOTPDevice.objects.get(user=user).confirmed  # not before the first code
    assert AuditAction.AUTH_TOTP_SETUP_START.value in _actions(user)

    sent = len(mail.outbox)
    r = api.post("/api/v1/me/totp/confirm", {"code": _code(got["secret"])}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["second_factor"] == "totp"
    assert TOTPDevice.objects.get(user=user).confirmed
    assert AuditAction.AUTH_TOTP_ENABLE.value in _actions(user)
    emailed = [m for m in mail.outbox[sent:] if user.email in m.to]
    assert [m.subject for m in emailed] == ["Authenticator app enabled"]
    assert got["secret"] not in emailed[0].body  # the secret is never emailed

    # The next login asks for the app's code, and takes it (a later time step).
    first = APIClient().post("/api/v1/auth/login", {"username": user.username,
                                                    "password": password}, format="json")
    assert first.json()["second_factor"] == "totp"
    second = APIClient().post("/api/v1/auth/2fa", {"code": _code(got["secret"], 1)},
                              format="json",
                              HTTP_AUTHORIZATION=f"Bearer {first.json()['pending_token']}")
    assert second.status_code == 200, second.content


def test_a_wrong_code_is_a_400_and_counts_as_a_failure(client):
    user, _, api = client
    secret = api.post("/api/v1/me/totp/setup", format="json").json()["secret"]
    r = api.post("/api/v1/me/totp/confirm", {"code": _wrong(secret)}, format="json")
    assert r.status_code == 400
    assert "The code is wrong" in r.json()["detail"] and secret not in r.content.decode()
    assert not TOTPDevice.objects.get(user=user).confirmed
    assert AuditAction.AUTH_TOTP_ENABLE.value not in _actions(user)
    r = api.post("/api/v1/me/totp/confirm", {"code": ""}, format="json")
    assert r.status_code == 400
    r = api.post("/api/v1/me/totp/confirm", {}, format="json")
    assert r.status_code == 400 and "code" in r.json()


def test_confirm_without_setup_is_a_clear_400(client):
    _, _, api = client
    r = api.post("/api/v1/me/totp/confirm", {"code": "123456"}, format="json")
    assert r.status_code == 400
    assert "Start the authenticator set-up first" in r.json()["detail"]


def test_a_new_setup_replaces_an_unconfirmed_one(client):
    user, _, api = client
    first = api.post("/api/v1/me/totp/setup", format="json").json()["secret"]
    near = {_code(first, n) for n in (-1, 0, 1)}
    for _ in range(5):  # a second secret whose codes differ from the first's right now
        second = api.post("/api/v1/me/totp/setup", format="json").json()["secret"]
        if _code(first) not in {_code(second, n) for n in (-1, 0, 1)} and _code(second) not in near:
            break
    assert first != second
    [device] = TOTPDevice.objects.filter(user=user)
    assert device.bin_key == base64.b32decode(second)
    r = api.post("/api/v1/me/totp/confirm", {"code": _code(first)}, format="json")
    assert r.status_code == 400


def test_replacing_a_confirmed_app_needs_the_password(client):
    user, password, api = client
    secret = api.post("/api/v1/me/totp/setup", format="json").json()["secret"]
    assert api.post("/api/v1/me/totp/confirm", {"code": _code(secret)},
                    format="json").status_code == 200
    # A token alone does not swap in another app.
    r = api.post("/api/v1/me/totp/setup", format="json")
    assert r.status_code == 403 and r.json()["code"] == "password_required"
    r = api.post("/api/v1/me/totp/setup", {"password": "not-the-password"}, format="json")
    assert r.status_code == 403 and "wrong" in r.json()["detail"]
    assert TOTPDevice.objects.filter(user=user).count() == 1  # nothing started
    r = api.post("/api/v1/me/totp/setup", {"password": password}, format="json")
    assert r.status_code == 201
    assert TOTPDevice.objects.filter(user=user, confirmed=True).count() == 1  # until confirmed


def test_back_to_email_codes_is_confirmed_by_an_emailed_link(client):
    user, _, api = client
    r = api.delete("/api/v1/me/totp")
    assert r.status_code == 400 and "No authenticator app" in r.json()["detail"]

    secret = api.post("/api/v1/me/totp/setup", format="json").json()["secret"]
    assert api.post("/api/v1/me/totp/confirm", {"code": _code(secret)},
                    format="json").status_code == 200
    r = api.delete("/api/v1/me/totp")
    assert r.status_code == 202 and "Check your email" in r.json()["detail"]
    link = last_link(user.email, "/accounts/totp/disable/")
    assert re.search(r"/accounts/totp/disable/\S+", link)
    assert TOTPDevice.objects.filter(user=user, confirmed=True).exists()  # until the link
    assert AuditAction.AUTH_TOTP_DISABLE_REQUEST.value in _actions(user)


def test_a_pending_login_cannot_set_up_an_app(researcher_keyed):
    user, password = researcher_keyed
    first = APIClient().post("/api/v1/auth/login", {"username": user.username,
                                                    "password": password}, format="json")
    pending = bearer(first.json()["pending_token"])
    assert pending.post("/api/v1/me/totp/setup", format="json").status_code == 401
    assert not TOTPDevice.objects.filter(user=user).exists()
