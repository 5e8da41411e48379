"""End to end through the API: invite → register → email 2FA → tokens → refresh → logout."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from rest_framework.test import APIRequestFactory

from accounts.models import AuthSession, Invite, Role, User
from accounts.sessions import request_kek
from accounts.tests.helpers import (
    APIClient,
    api_login,
    bearer,
    keyed_user,
    last_code,
    new_password,
)
from audit.models import AuditEvent
from keys.models import ProjectUserKey
from keys.services import project_private_key
from projects.models import ProjectMembership

pytestmark = pytest.mark.django_db


def _kek_for(access: str, user) -> bytes:
    """What request_kek returns for a request carrying this access token."""
    from accounts.authentication import SessionJWTAuthentication

    request = APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {access}")
    user_, token = SessionJWTAuthentication().authenticate(request)
    request.user, request.auth = user_, token
    return request_kek(request)


def _invite_token() -> str:
    body = mail.outbox[-1].body
    return re.search(r"/accounts/register/\?t=(\S+)", body).group(1)


def test_invite_register_login_refresh_logout(staffed):
    admin, project = staffed["admin"], staffed["project"]
    admin_tokens = api_login(admin, staffed["admin_pw"])
    admin_api = bearer(admin_tokens["access"])

    r = admin_api.post("/api/v1/invites", {"email": "Alice@Example.org", "role": "researcher",
                                           "project": project.public_id, "is_owner": True},
                       format="json")
    assert r.status_code == 201, r.content
    assert r.json()["kind"] == "invited"
    token = _invite_token()
    assert Invite.objects.get().token_hash != token  # only a hash is stored

    password = new_password()
    r = APIClient().post("/api/v1/auth/register", {"token": token, "username": "alice",
                                                   "name": "Alice A", "password": password,
                                                   "accept_agreement": True},
                         format="json")
    assert r.status_code == 201, r.content
    assert r.json()["projects"] == [project.public_id]
    alice = User.objects.get(username="alice")
    assert alice.role == Role.RESEARCHER and alice.public_key
    assert ProjectMembership.objects.get(user=alice, project=project).is_owner
    assert not Invite.objects.exists()
    # The invite link works once.
    again = APIClient().post("/api/v1/auth/register", {"token": token, "username": "alice2",
                                                       "name": "A", "password": password,
                                                       "accept_agreement": True},
                             format="json")
    assert again.status_code == 400

    client = APIClient()
    r = client.post("/api/v1/auth/login", {"username": "alice", "password": password},
                    format="json")
    assert r.status_code == 200 and r.json()["second_factor"] == "email"
    pending = r.json()["pending_token"]
    code = last_code(alice.email)
    assert len(code) == 8
    # A pending token is not an access token.
    assert bearer(pending).get("/api/v1/me").status_code == 401
    r = client.post("/api/v1/auth/2fa", {"code": code}, format="json",
                    HTTP_AUTHORIZATION=f"Bearer {pending}")
    assert r.status_code == 200, r.content
    tokens = r.json()
    # The code is single use.
    r = client.post("/api/v1/auth/2fa", {"code": code}, format="json",
                    HTTP_AUTHORIZATION=f"Bearer {pending}")
    assert r.status_code == 401

    me = bearer(tokens["access"]).get("/api/v1/me")
    assert me.status_code == 200
    assert me.json()["projects"][0] == {"project": project.public_id, "title": project.title,
                                        "is_owner": True}
    # The key session opens the project key that was granted through the invite.
    kek = _kek_for(tokens["access"], alice)
    assert len(project_private_key(project=project, user=alice, kek=kek)) == 32

    r = client.post("/api/v1/auth/refresh", {"refresh": tokens["refresh"]}, format="json")
    assert r.status_code == 200
    rotated = r.json()
    assert bearer(rotated["access"]).get("/api/v1/me").status_code == 200
    assert _kek_for(rotated["access"], alice) == kek

    r = bearer(rotated["access"]).post("/api/v1/auth/logout")
    assert r.status_code == 204
    assert bearer(rotated["access"]).get("/api/v1/me").status_code == 401
    assert bearer(tokens["access"]).get("/api/v1/me").status_code == 401
    r = client.post("/api/v1/auth/refresh", {"refresh": rotated["refresh"]}, format="json")
    assert r.status_code == 401
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"invite.create", "user.register", "auth.login", "auth.refresh",
            "auth.sessions_end"} <= actions


def test_reused_refresh_token_ends_the_session(researcher_keyed):
    user, password = researcher_keyed
    tokens = api_login(user, password)
    client = APIClient()
    first = client.post("/api/v1/auth/refresh", {"refresh": tokens["refresh"]}, format="json")
    assert first.status_code == 200
    replay = client.post("/api/v1/auth/refresh", {"refresh": tokens["refresh"]}, format="json")
    assert replay.status_code == 401
    assert "already used" in replay.json()["detail"]
    # The rotated family is dead too: someone else had a copy.
    assert bearer(first.json()["access"]).get("/api/v1/me").status_code == 401


def test_invite_to_existing_user_adds_them_to_the_project(staffed, researcher_keyed):
    user, _ = researcher_keyed
    tokens = api_login(staffed["admin"], staffed["admin_pw"])
    r = bearer(tokens["access"]).post("/api/v1/invites", {
        "email": user.email.upper(), "project": staffed["project"].public_id}, format="json")
    assert r.status_code == 200 and r.json()["kind"] == "added"
    assert ProjectMembership.objects.filter(user=user, project=staffed["project"]).exists()
    assert ProjectUserKey.objects.filter(user=user, project=staffed["project"]).exists()
    assert not Invite.objects.exists()


def test_reinvite_replaces_and_expired_invites_are_purged(staffed):
    from datetime import timedelta

    from django.core.management import call_command
    from django.utils import timezone

    tokens = api_login(staffed["admin"], staffed["admin_pw"])
    api = bearer(tokens["access"])
    for _ in range(2):
        r = api.post("/api/v1/invites", {"email": "bob@example.org",
                                         "project": staffed["project"].public_id},
                     format="json")
        assert r.status_code == 201
    assert Invite.objects.count() == 1
    Invite.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    call_command("invites_delete_expired")
    assert not Invite.objects.exists()


def test_invite_email_survives_a_mail_server_outage(staffed, monkeypatch):
    """The invite commits and its email stays queued (sealed) until the server takes it."""
    from mail.models import OutboundEmail
    from mail.services import mail_deliver

    tokens = api_login(staffed["admin"], staffed["admin_pw"])

    def broken(*args, **kwargs):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr("mail.services.send_mail", broken)
    sent_before = len(mail.outbox)
    r = bearer(tokens["access"]).post("/api/v1/invites", {
        "email": "carol@example.org", "project": staffed["project"].public_id}, format="json")
    assert r.status_code == 201, r.content
    assert Invite.objects.filter(email="carol@example.org").exists()
    queued = OutboundEmail.objects.get()
    assert queued.attempts == 1 and queued.last_error == "ConnectionRefusedError"
    assert b"carol" not in bytes(queued.payload_sealed)  # sealed, not in clear
    assert len(mail.outbox) == sent_before
    monkeypatch.undo()
    assert mail_deliver(email_id=queued.pk) is True
    assert not OutboundEmail.objects.exists()
    assert mail.outbox[-1].to == ["carol@example.org"]
    assert "/accounts/register/?t=" in mail.outbox[-1].body
    assert mail_deliver(email_id=queued.pk) is False  # a duplicate task sends nothing


def test_code_for_another_user_is_refused(researcher_keyed, staffed):
    user, password = researcher_keyed
    other = staffed["personnel"]
    client = APIClient()
    mine = client.post("/api/v1/auth/login", {"username": user.username, "password": password},
                       format="json").json()["pending_token"]
    client.post("/api/v1/auth/login", {"username": other.username,
                                       "password": staffed["personnel_pw"]}, format="json")
    r = client.post("/api/v1/auth/2fa", {"code": last_code(other.email)}, format="json",
                    HTTP_AUTHORIZATION=f"Bearer {mine}")
    assert r.status_code == 401


@pytest.mark.parametrize("body, content_type", [
    ('{"username": "x", "password":', "application/json"),
    ('{"username": ["x"], "password": 5}', "application/json"),
    ('{"username": "' + "x" * 500 + '", "password": "y"}', "application/json"),
    ("[]", "application/json"),
])
def test_bad_login_input_is_a_clear_400(body, content_type):
    r = APIClient().post("/api/v1/auth/login", body, content_type=content_type)
    assert r.status_code == 400


@pytest.mark.parametrize("path, body", [
    ("/api/v1/auth/refresh", {"refresh": "not-a-token"}),
    ("/api/v1/auth/register", {"token": "forged", "username": "zed", "name": "Z",
                               "password": "Abcdefgh-123", "accept_agreement": True}),
    ("/api/v1/auth/password-reset/confirm", {"uid": "MQ", "token": "forged",
                                             "new_password": "Abcdefgh-123"}),
])
def test_forged_tokens_and_links_are_refused(path, body):
    r = APIClient().post(path, body, format="json")
    assert r.status_code in (400, 401)
    assert "detail" in r.json()


def test_forged_bearer_is_401():
    assert bearer("abc.def.ghi").get("/api/v1/me").status_code == 401


def test_session_rows_hold_no_kek_after_logout(researcher_keyed):
    user, password = researcher_keyed
    tokens = api_login(user, password)
    assert AuthSession.objects.get(user=user, state="active").kek_sealed
    bearer(tokens["access"]).post("/api/v1/auth/logout")
    assert all(s.kek_sealed is None for s in AuthSession.objects.filter(user=user))


@pytest.mark.django_db
def test_reinviting_to_a_second_project_keeps_the_first_grant(
        unit_a, django_capture_on_commit_callbacks):
    """Two projects invite the same new address: one invite carries both keys."""
    from accounts.errors import InviteConflict
    from accounts.services import invite_create
    from keys.models import InviteProjectKey
    from keys.services import user_kek_derive
    from projects.services import invite_to_project, project_create

    admin, pw = keyed_user(Role.UNIT_ADMIN, unit_a)
    keyed_user(Role.UNIT_ADMIN, unit_a)
    kek = user_kek_derive(user=admin, password=pw)
    first = project_create(unit=unit_a, by=admin, title="one", force=True)
    second = project_create(unit=unit_a, by=admin, title="two", force=True)
    invite_to_project(email="new@example.org", role=Role.RESEARCHER, by=admin, by_kek=kek,
                      project=first)
    token_mails = len(mail.outbox)
    with django_capture_on_commit_callbacks(execute=True):
        invite_to_project(email="New@example.org", role=Role.RESEARCHER, by=admin,
                          by_kek=kek, project=second, is_owner=True)
    invite = Invite.objects.get()
    assert set(InviteProjectKey.objects.filter(invite=invite)
               .values_list("project__title", "is_owner")) == {("one", False), ("two", True)}
    assert "also been given access" in mail.outbox[-1].subject
    assert len(mail.outbox) == token_mails + 1
    with pytest.raises(InviteConflict):
        invite_create(email="new@example.org", role=Role.UNIT_PERSONNEL, by=admin,
                      unit=unit_a)
    assert Invite.objects.count() == 1
