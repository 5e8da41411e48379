"""TOTP, lockout, password change/reset/access fix, and where the KEK (never) lives."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import models
from django.test import override_settings
from django.utils import timezone
from django_otp.oath import totp
from rest_framework.exceptions import NotAuthenticated, PermissionDenied

from accounts import services
from accounts.errors import LinkInvalid
from accounts.models import AuthSession, LoginThrottle, TOTPDevice
from accounts.sessions import kek_open, session_key_from_client
from accounts.tests.helpers import APIClient, api_login, bearer, last_link, new_password
from audit.models import AuditEvent
from keys.services import KeyAccessError, project_private_key, user_kek_derive
from projects.models import ProjectMembership

pytestmark = pytest.mark.django_db


def _login_step1(user, password, client=None):
    client = client or APIClient()
    return client.post("/api/v1/auth/login", {"username": user.username, "password": password},
                       format="json")


def _totp_now(device, offset_steps=0) -> str:
    t = int(timezone.now().timestamp()) + offset_steps * device.step
    return f"{_totp_at(device, t):06d}"


def _totp_at(device, unix_time: int) -> int:
    return totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits,
                drift=(unix_time - int(timezone.now().timestamp())) // device.step)


def test_totp_setup_login_and_replay_refused(researcher_keyed):
    user, password = researcher_keyed
    device = services.totp_setup_start(user=user)
    with pytest.raises(ValidationError):
        services.totp_setup_confirm(user=user, code="000000" if _totp_now(device) != "000000"
                                    else "111111")
    services.totp_setup_confirm(user=user, code=_totp_now(device))
    device.refresh_from_db()
    assert device.confirmed
    assert services.second_factor_method(user) == "totp"

    first = _login_step1(user, password)
    assert first.json()["second_factor"] == "totp"
    pending = first.json()["pending_token"]
    # The set-up code was already accepted: the same time step is never accepted twice.
    replay = APIClient().post("/api/v1/auth/2fa", {"code": _totp_now(device)}, format="json",
                              HTTP_AUTHORIZATION=f"Bearer {pending}")
    assert replay.status_code == 401
    # The next step (within the ±1 tolerance) works once.
    code = _totp_now(device, offset_steps=1)
    ok = APIClient().post("/api/v1/auth/2fa", {"code": code}, format="json",
                          HTTP_AUTHORIZATION=f"Bearer {pending}")
    assert ok.status_code == 200
    pending2 = _login_step1(user, password).json()["pending_token"]
    again = APIClient().post("/api/v1/auth/2fa", {"code": code}, format="json",
                             HTTP_AUTHORIZATION=f"Bearer {pending2}")
    assert again.status_code == 401


def test_totp_disable_needs_the_emailed_link(researcher_keyed, django_capture_on_commit_callbacks):
    user, _ = researcher_keyed
    device = services.totp_setup_start(user=user)
    services.totp_setup_confirm(user=user, code=_totp_now(device))
    with django_capture_on_commit_callbacks(execute=True):
        services.totp_disable_request(user=user)
    token = last_link(user.email, "/accounts/totp/disable/").rstrip("/").rsplit("/", 1)[1]
    with pytest.raises(LinkInvalid):
        services.totp_disable(user=user, token=token + "x")
    services.totp_disable(user=user, token=token)
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert services.second_factor_method(user) == "email"


@override_settings(DDS_LOCKOUT_FAILURES=5, DDS_LOCKOUT_MINUTES=15)
def test_lockout_after_failures_and_its_expiry(researcher_keyed):
    user, password = researcher_keyed
    for _ in range(4):
        r = _login_step1(user, "Wrong-password-1")
        assert r.status_code == 401
        assert r.json()["detail"] == "Invalid username or password."
    r = _login_step1(user, "Wrong-password-1")
    assert r.status_code == 429
    assert "Try again in 15 minutes" in r.json()["detail"]
    # Even the right password is refused while locked.
    assert _login_step1(user, password).status_code == 429
    assert AuditEvent.objects.filter(action="auth.lock", target=user.username).exists()
    LoginThrottle.objects.update(locked_until=timezone.now() - timedelta(seconds=1),
                                 window_start=timezone.now() - timedelta(minutes=16))
    assert _login_step1(user, password).status_code == 200


@override_settings(DDS_LOCKOUT_FAILURES=3)
def test_unknown_username_gets_the_same_answers():
    for _ in range(2):
        r = _login_step1(type("U", (), {"username": "ghost"})(), "Whatever-123")
        assert (r.status_code, r.json()["detail"]) == (401, "Invalid username or password.")
    r = _login_step1(type("U", (), {"username": "ghost"})(), "Whatever-123")
    assert r.status_code == 429
    assert not LoginThrottle.objects.filter(key__contains="ghost").exists()  # hashed keys


@override_settings(DDS_LOCKOUT_FAILURES=3)
def test_wrong_codes_lock_too(researcher_keyed):
    user, password = researcher_keyed
    pending = _login_step1(user, password).json()["pending_token"]
    statuses = [APIClient().post("/api/v1/auth/2fa", {"code": "12345678"}, format="json",
                                 HTTP_AUTHORIZATION=f"Bearer {pending}").status_code
                for _ in range(3)]
    assert statuses[:2] == [401, 401] and statuses[2] == 429
    assert _login_step1(user, password).status_code == 429


def test_password_change_keeps_project_access(staffed):
    admin, project = staffed["admin"], staffed["project"]
    tokens = api_login(admin, staffed["admin_pw"])
    other = api_login(admin, staffed["admin_pw"])
    new = new_password()
    r = bearer(tokens["access"]).post("/api/v1/me/password", {
        "current_password": staffed["admin_pw"], "new_password": new}, format="json")
    assert r.status_code == 200, r.content
    # This session still works, and its KEK is the new one.
    assert bearer(tokens["access"]).get("/api/v1/me").status_code == 200
    assert bearer(other["access"]).get("/api/v1/me").status_code == 401
    admin.refresh_from_db()
    kek = user_kek_derive(user=admin, password=new)
    assert len(project_private_key(project=project, user=admin, kek=kek)) == 32
    assert _login_step1(admin, staffed["admin_pw"]).status_code == 401
    assert api_login(admin, new)["access"]


def test_password_change_rejects_weak_and_wrong(staffed):
    tokens = api_login(staffed["admin"], staffed["admin_pw"])
    api = bearer(tokens["access"])
    weak = api.post("/api/v1/me/password", {"current_password": staffed["admin_pw"],
                                            "new_password": "alllowercase"}, format="json")
    assert weak.status_code == 400 and "new_password" in weak.json()["detail"]
    wrong = api.post("/api/v1/me/password", {"current_password": "Not-the-one-1",
                                             "new_password": new_password()}, format="json")
    assert wrong.status_code == 400 and "current_password" in wrong.json()["detail"]


def test_reset_loses_access_and_access_fix_restores_it(staffed, researcher_keyed):
    from keys.services import project_access_grant

    admin, project = staffed["admin"], staffed["project"]
    user, password = researcher_keyed
    ProjectMembership.objects.create(project=project, user=user, is_owner=False)
    admin_kek = user_kek_derive(user=admin, password=staffed["admin_pw"])
    project_access_grant(project=project, grantee=user, granter=admin, granter_kek=admin_kek)
    user_tokens = api_login(user, password)

    r = APIClient().post("/api/v1/auth/password-reset", {"email": user.email}, format="json")
    assert r.status_code == 202
    link = last_link(user.email, "/accounts/reset/")
    uid, token = link.rstrip("/").split("/")[-2:]
    new = new_password()
    r = APIClient().post("/api/v1/auth/password-reset/confirm",
                         {"uid": uid, "token": token, "new_password": new}, format="json")
    assert r.status_code == 200, r.content
    # The link works once; old sessions ended; unit admins were told.
    again = APIClient().post("/api/v1/auth/password-reset/confirm",
                             {"uid": uid, "token": token, "new_password": new}, format="json")
    assert again.status_code == 400
    assert bearer(user_tokens["access"]).get("/api/v1/me").status_code == 401
    user.refresh_from_db()
    kek = user_kek_derive(user=user, password=new)
    with pytest.raises(KeyAccessError):
        project_private_key(project=project, user=user, kek=kek)
    assert ProjectMembership.objects.filter(project=project, user=user).exists()

    admin_tokens = api_login(admin, staffed["admin_pw"])
    r = bearer(admin_tokens["access"]).post(f"/api/v1/users/{user.username}/access-fix", {},
                                            format="json")
    assert r.status_code == 200 and r.json()["projects"] == [project.public_id]
    assert len(project_private_key(project=project, user=user, kek=kek)) == 32


def _all_stored_bytes():
    """Every value of every column of every model: a full copy of the database."""
    for model in apps.get_models():
        fields = [f for f in model._meta.concrete_fields]
        for row in model.objects.all().values_list(*[f.attname for f in fields]):
            for value in row:
                if isinstance(value, (bytes, memoryview)):
                    yield bytes(value)
                elif isinstance(value, str):
                    yield value.encode()
                elif value is not None and not isinstance(value, (int, float, bool)):
                    yield str(value).encode()


def test_kek_is_nowhere_in_clear_and_a_token_without_the_server_secret_opens_nothing(
        researcher_keyed, settings):
    import base64

    from rest_framework_simplejwt.tokens import AccessToken

    user, password = researcher_keyed
    kek = user_kek_derive(user=user, password=password)
    tokens = api_login(user, password)
    raw = [tokens["access"].encode(), tokens["refresh"].encode()]
    payloads = [base64.urlsafe_b64decode(t.split(b".")[1] + b"==") for t in raw]
    for blob in list(_all_stored_bytes()) + raw + payloads:
        assert kek not in blob
        assert base64.b64encode(kek) not in blob and kek.hex().encode() not in blob

    access = AccessToken(tokens["access"])
    session = AuthSession.objects.get(public_id=access["sid"])
    # With the server secret the token opens the session's KEK …
    key = session_key_from_client(session_public_id=session.public_id, carried=access["ks"])
    assert kek_open(session=session, session_key=key) == kek
    # … without it (a different server key), the same database + token open nothing.
    settings.DDS_SEALING_KEY = "an-attacker-guess-" + "x" * 40
    with pytest.raises(NotAuthenticated):
        session_key_from_client(session_public_id=session.public_id, carried=access["ks"])
    settings.DDS_SEALING_KEY = ""
    # After logout, even with the server secret, the token unlocks nothing.
    bearer(tokens["access"]).post("/api/v1/auth/logout")
    session.refresh_from_db()
    key = session_key_from_client(session_public_id=session.public_id, carried=access["ks"])
    assert session.kek_sealed is None
    with pytest.raises(PermissionDenied):
        kek_open(session=session, session_key=key)


def test_password_field_is_never_stored_in_clear(researcher_keyed):
    user, password = researcher_keyed
    _login_step1(user, "Wrong-password-1")
    for blob in _all_stored_bytes():
        assert password.encode() not in blob
        assert b"Wrong-password-1" not in blob


def test_binary_columns_checked_exist():
    assert any(isinstance(f, models.BinaryField) for f in AuthSession._meta.fields)
