"""The holes of issue 11: dumps that log in, shared client addresses, mail floods, secrets
at rest, and the operator's second-factor reset."""

from __future__ import annotations

import pytest
from django.contrib.sessions.models import Session
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test import override_settings

from accounts import services
from accounts.errors import InvalidCode
from accounts.models import AuthSession, EmailDevice, Role, TOTPDevice
from accounts.sessions import PORTAL_KEY_COOKIE
from accounts.tests.helpers import APIClient, PortalClient, keyed_user, last_code, last_link
from audit.models import AuditEvent
from core.sealing import SealError

pytestmark = pytest.mark.django_db


def _portal_login(client, user, password):
    r = client.post("/accounts/login/", {"username": user.username, "password": password})
    assert r.status_code == 302, r.content[:300]
    r = client.post("/accounts/login/code/", {"code": last_code(user.email)})
    assert r.status_code == 302, r.content[:300]


def _session_key_of(user) -> str:
    for session in Session.objects.all():
        if str(session.get_decoded().get("_auth_user_id")) == str(user.pk):
            return session.session_key
    raise AssertionError("no session for the user")


# --------------------------------------------------------------------------- sessions


def test_a_session_key_from_a_dump_opens_nothing(staffed):
    victim, password = staffed["admin"], staffed["admin_pw"]
    victim_client = PortalClient()
    _portal_login(victim_client, victim, password)
    assert victim_client.get("/admin/").status_code == 200
    stolen = _session_key_of(victim)

    attacker = PortalClient()
    attacker.cookies["sessionid"] = stolen
    for path in ("/admin/", "/admin/projects/project/", "/", "/accounts/"):
        r = attacker.get(path)
        assert r.status_code == 302 and "/login/" in r["Location"], path
    project = staffed["project"]
    r = attacker.post("/admin/projects/project/", {
        "action": "archive_projects", "_selected_action": [project.pk]})
    assert r.status_code == 302 and "/login/" in r["Location"]
    project.refresh_from_db()
    assert project.status == "in_progress"

    # A key cookie minted for the attacker's own login does not fit the victim's session.
    other, other_pw = staffed["personnel"], staffed["personnel_pw"]
    own = PortalClient()
    _portal_login(own, other, other_pw)
    attacker.cookies[PORTAL_KEY_COOKIE] = own.cookies[PORTAL_KEY_COOKIE].value
    assert attacker.get("/admin/").status_code == 302

    # The attempts did not even log the victim out.
    assert victim_client.get("/admin/").status_code == 200
    assert AuthSession.objects.filter(user=victim, ended_at__isnull=True).exists()


def test_invite_token_is_kept_out_of_the_session_store(staffed):
    from keys.services import user_kek_derive
    from projects.services import invite_to_project as invite_create

    admin = staffed["admin"]
    with_capture = PortalClient()
    kek = user_kek_derive(user=admin, password=staffed["admin_pw"])
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        invite_create(email="newbie@example.org", role=Role.RESEARCHER, by=admin, by_kek=kek,
                      project=staffed["project"])
    link = last_link("newbie@example.org", "/accounts/register/")
    token = link.split("t=", 1)[1]
    r = with_capture.get(link.replace("http://127.0.0.1:8000", ""))
    assert r.status_code == 302
    cookie = with_capture.cookies["dds_invite"]
    assert cookie["httponly"] and cookie["path"] == "/accounts/register/"
    assert token not in cookie.value
    for session in Session.objects.all():
        assert token not in session.session_data and token not in str(session.get_decoded())
    page = with_capture.get("/accounts/register/")
    assert page.status_code == 200 and b"newbie@example.org" in page.content
    password = "Pw-Registered-1x"
    r = with_capture.post("/accounts/register/", {
        "username": "newbie", "name": "New Bie", "password": password,
        "password_again": password, "agreement_version": "1", "accept_agreement": "on"})
    assert r.status_code == 302, r.content[:500]
    assert staffed["project"].user_keys.filter(user__username="newbie").exists()
    # A forged cookie (not sealed by this server) is no invite.
    forged = PortalClient()
    forged.cookies["dds_invite"] = token
    assert forged.get("/accounts/register/").status_code == 400


# --------------------------------------------------------------------------- at rest


def _row_text(table: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} WHERE id = %s", [pk])  # noqa: S608
        row = cursor.fetchone()
    return " ".join(bytes(v).hex() if isinstance(v, (bytes, memoryview)) else str(v)
                    for v in row)


def test_totp_key_is_sealed_and_useless_with_another_server_key(researcher_keyed):
    import base64

    user, _ = researcher_keyed
    device = services.totp_setup_start(user=user)
    key = device.bin_key
    text = _row_text("accounts_totpdevice", device.pk)
    assert key.hex() not in text and base64.b32encode(key).decode() not in text
    # A dump plus the password is not enough: without the server key the key stays shut.
    with override_settings(DDS_SEALING_KEY="x" * 64):
        with pytest.raises(SealError):
            _ = TOTPDevice.objects.get(pk=device.pk).bin_key


def test_email_code_is_stored_as_a_keyed_hash_and_used_once(researcher_keyed):
    user, password = researcher_keyed
    client = APIClient()
    first = client.post("/api/v1/auth/login", {"username": user.username,
                                                "password": password}, format="json")
    code = last_code(user.email)
    device = EmailDevice.objects.get(user=user)
    text = _row_text("accounts_emaildevice", device.pk)
    assert code not in text and device.code_hash and len(device.code_hash) == 64
    pending = first.json()["pending_token"]
    ok = client.post("/api/v1/auth/2fa", {"code": code}, format="json",
                     HTTP_AUTHORIZATION=f"Bearer {pending}")
    assert ok.status_code == 200
    again = client.post("/api/v1/auth/2fa", {"code": code}, format="json",
                        HTTP_AUTHORIZATION=f"Bearer {pending}")
    assert again.status_code == 401


def test_queued_mail_is_sealed(researcher_keyed):
    from mail.models import OutboundEmail

    user, _ = researcher_keyed
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("mail.services.after_commit", lambda *a, **k: None)  # no worker: stays queued
        from django.test import TestCase

        with TestCase.captureOnCommitCallbacks(execute=True):
            services.user_password_reset_request(email=user.email)
    row = OutboundEmail.objects.get()
    raw = bytes(row.payload_sealed)
    assert user.email.encode() not in raw and b"/accounts/reset/" not in raw


# --------------------------------------------------------------------------- client address


TRUSTED = {"REMOTE_ADDR": "10.42.0.5"}  # the ingress


@override_settings(DDS_TRUSTED_PROXIES=["10.42.0.0/16"], DDS_LOCKOUT_IP_FAILURES=20)
def test_failures_from_many_clients_behind_the_ingress_lock_no_one_else(researcher_keyed):
    user, password = researcher_keyed
    client = APIClient()
    for i in range(20):
        r = client.post("/api/v1/auth/login", {"username": f"ghost{i}", "password": "Nope-1234"},
                        format="json", HTTP_X_FORWARDED_FOR=f"203.0.113.{i + 1}", **TRUSTED)
        assert r.status_code == 401
    ok = client.post("/api/v1/auth/login", {"username": user.username, "password": password},
                     format="json", HTTP_X_FORWARDED_FOR="203.0.113.99", **TRUSTED)
    assert ok.status_code == 200, ok.content
    ips = set(AuditEvent.objects.filter(action="auth.failure").values_list("ip", flat=True))
    assert ips == {f"203.0.113.{i + 1}" for i in range(20)}
    assert AuditEvent.objects.filter(action="auth.password_ok", ip="203.0.113.99").exists()


@override_settings(DDS_TRUSTED_PROXIES=["10.42.0.0/16"], DDS_LOCKOUT_IP_FAILURES=20)
def test_a_client_cannot_pick_its_own_address(researcher_keyed):
    user, password = researcher_keyed
    client = APIClient()
    for i in range(20):
        client.post("/api/v1/auth/login", {"username": f"ghost{i}", "password": "Nope-1234"},
                    format="json", HTTP_X_FORWARDED_FOR=f"203.0.113.{i + 1}",
                    REMOTE_ADDR="198.51.100.7")
    # Direct, untrusted peer: its address is locked whatever X-Forwarded-For says.
    r = client.post("/api/v1/auth/login", {"username": user.username, "password": password},
                    format="json", HTTP_X_FORWARDED_FOR="203.0.113.200",
                    REMOTE_ADDR="198.51.100.7")
    assert r.status_code == 429
    assert set(AuditEvent.objects.filter(action="auth.failure")
               .values_list("ip", flat=True)) == {"198.51.100.7"}
    # Through the ingress, a client-written prefix is not believed either.
    client.post("/api/v1/auth/login", {"username": "ghostx", "password": "Nope-1234"},
                format="json", HTTP_X_FORWARDED_FOR="1.1.1.1, 203.0.113.50", **TRUSTED)
    assert AuditEvent.objects.filter(action="auth.failure", ip="203.0.113.50").exists()
    assert not AuditEvent.objects.filter(ip="1.1.1.1").exists()


# --------------------------------------------------------------------------- throttles


def test_the_11th_reset_request_is_refused_and_sends_nothing(researcher_keyed):
    user, _ = researcher_keyed
    client = APIClient()
    for _ in range(10):
        r = client.post("/api/v1/auth/password-reset", {"email": user.email}, format="json")
        assert r.status_code == 202
    sent = len(mail.outbox)
    assert sent == 10
    r = client.post("/api/v1/auth/password-reset", {"email": user.email}, format="json")
    assert r.status_code == 429 and int(r["Retry-After"]) > 0
    assert len(mail.outbox) == sent
    # The portal's form shares the budget (same client address).
    page = PortalClient().post("/accounts/password/reset/", {"email": user.email})
    assert page.status_code == 429 and int(page["Retry-After"]) > 0
    assert len(mail.outbox) == sent


def test_resets_from_many_addresses_do_not_flood_one_mailbox(researcher_keyed):
    user, _ = researcher_keyed
    client = APIClient()
    answers = {client.post("/api/v1/auth/password-reset", {"email": user.email},
                           format="json", REMOTE_ADDR=f"198.51.100.{i}").status_code
               for i in range(1, 16)}
    assert answers == {202}  # the same answer for everyone, known address or not
    assert len([m for m in mail.outbox if user.email in m.to]) == 10


def test_a_reset_answers_alike_for_known_and_unknown_addresses(researcher_keyed):
    user, _ = researcher_keyed
    known = APIClient().post("/api/v1/auth/password-reset", {"email": user.email},
                             format="json")
    unknown = APIClient().post("/api/v1/auth/password-reset",
                               {"email": "nobody@example.org"}, format="json",
                               REMOTE_ADDR="198.51.100.9")
    assert (known.status_code, known.json()) == (unknown.status_code, unknown.json())


def test_code_resends_are_throttled_per_login(researcher_keyed):
    user, password = researcher_keyed
    client = APIClient()
    pending = client.post("/api/v1/auth/login", {"username": user.username,
                                                  "password": password},
                          format="json").json()["pending_token"]
    codes = [client.post("/api/v1/auth/2fa/resend", HTTP_AUTHORIZATION=f"Bearer {pending}",
                         REMOTE_ADDR=f"198.51.100.{i}").status_code for i in range(1, 8)]
    assert codes[:5] == [202] * 5 and codes[5:] == [429, 429]


def test_portal_login_is_throttled_with_retry_after(researcher_keyed):
    user, _ = researcher_keyed
    client = PortalClient()
    statuses = [client.post("/accounts/login/", {"username": user.username,
                                                 "password": "wrong"}).status_code
                for _ in range(31)]
    assert statuses[-1] == 429
    r = client.post("/accounts/login/", {"username": user.username, "password": "wrong"})
    assert r.status_code == 429 and int(r["Retry-After"]) > 0


# --------------------------------------------------------------------------- 2FA reset


def test_super_admin_resets_a_second_factor_from_the_admin(researcher_keyed, superadmin,
                                                          unit_a):
    from accounts.tests.factories import TEST_PASSWORD

    user, password = researcher_keyed
    device = services.totp_setup_start(user=user)
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    assert services.second_factor_method(user) == "totp"
    admin_client = PortalClient()
    _portal_login(admin_client, superadmin, TEST_PASSWORD)
    # The user's change page offers the action but shows no secret.
    page = admin_client.get(f"/admin/accounts/user/{user.pk}/change/").content.decode()
    import base64

    assert base64.b32encode(device.bin_key).decode() not in page
    r = admin_client.post("/admin/accounts/user/", {
        "action": "second_factor_reset", "_selected_action": [user.pk]})
    assert r.status_code == 302
    assert services.second_factor_method(user) == "email"
    assert AuditEvent.objects.filter(action="auth.second_factor_reset",
                                     target=user.username).exists()
    assert any("second factor was reset" in m.subject and m.to == [user.email]
               for m in mail.outbox)

    # Unit staff cannot: the action is not even offered.
    staff, staff_pw = keyed_user(Role.UNIT_ADMIN, unit_a)
    staff_client = PortalClient()
    _portal_login(staff_client, staff, staff_pw)
    page = staff_client.get("/admin/accounts/user/").content.decode()
    assert "second_factor_reset" not in page
    with pytest.raises(PermissionDenied):
        services.user_second_factor_reset(user=user, by=staff)


def test_no_second_factor_secret_in_a_login_journey_log(researcher_keyed, caplog):
    user, password = researcher_keyed
    client = APIClient()
    with caplog.at_level("DEBUG"):
        pending = client.post("/api/v1/auth/login", {"username": user.username,
                                                      "password": password},
                              format="json").json()["pending_token"]
        code = last_code(user.email)
        client.post("/api/v1/auth/2fa", {"code": code}, format="json",
                    HTTP_AUTHORIZATION=f"Bearer {pending}")
    text = caplog.text
    assert code not in text and password not in text and pending not in text


@pytest.mark.django_db(transaction=True)
@override_settings(DDS_LOCKOUT_FAILURES=50)  # the refused replays would lock the account
def test_one_totp_code_is_accepted_once_by_parallel_logins():
    import threading

    from django.db import connections
    from django_otp.oath import totp

    from accounts.models import AuthSessionKind

    user, password = keyed_user(Role.RESEARCHER)
    device = services.totp_setup_start(user=user)
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    pendings = [services.login_start(username=user.username, password=password,
                                     kind=AuthSessionKind.API).session for _ in range(8)]
    code = f"{totp(device.bin_key):06d}"
    barrier = threading.Barrier(len(pendings))
    outcomes: list[str] = []

    def attempt(session):
        try:
            barrier.wait()
            services.login_verify(session=session, code=code)
            outcomes.append("ok")
        except InvalidCode:
            outcomes.append("refused")
        except Exception as exc:  # noqa: BLE001 - any other outcome fails the test below
            outcomes.append(type(exc).__name__)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt, args=(s,)) for s in pendings]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok"] + ["refused"] * 7


def test_mail_whose_task_was_lost_is_sent_by_the_flush_job(researcher_keyed):
    """The broker was down at commit: the sealed row waits; mail_flush queues it again,
    and rows older than any link they carry are dropped."""
    from datetime import timedelta

    from django.core.management import call_command
    from django.test import TestCase

    from mail.models import OutboundEmail

    user, _ = researcher_keyed
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("mail.services.after_commit", lambda *a, **k: None)  # the lost task
        with TestCase.captureOnCommitCallbacks(execute=True):
            services.user_password_reset_request(email=user.email)
    row = OutboundEmail.objects.get()
    sent = len(mail.outbox)
    call_command("mail_flush")
    assert OutboundEmail.objects.filter(pk=row.pk).exists()  # too fresh: its task may run
    OutboundEmail.objects.filter(pk=row.pk).update(
        created_at=row.created_at - timedelta(minutes=10))
    call_command("mail_flush")
    assert not OutboundEmail.objects.exists() and len(mail.outbox) == sent + 1
    assert mail.outbox[-1].to == [user.email]
    ancient = OutboundEmail.objects.create(payload_sealed=b"\x01" + b"0" * 40)
    OutboundEmail.objects.filter(pk=ancient.pk).update(
        created_at=ancient.created_at - timedelta(days=30))
    call_command("mail_flush")
    assert not OutboundEmail.objects.exists()
