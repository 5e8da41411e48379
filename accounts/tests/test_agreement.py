"""The user agreement: required at registration (API and portal), recorded with its
version, asked again in the portal when the version changes, refused tokens in the API."""

from __future__ import annotations

import secrets

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import AgreementAcceptance, AuthSession, Invite, User
from accounts.services.agreement import (
    AGREEMENT_ACCEPT_PATH,
    AGREEMENT_TEXT_PATH,
    agreement_accept,
    agreement_required,
)
from accounts.tests.helpers import (
    APIClient,
    PortalClient,
    api_login,
    keyed_user,
    last_code,
    new_password,
)
from audit.models import AuditEvent
from keys.services import invite_keys_create
from portal.middleware import UNGATED_PREFIXES

pytestmark = pytest.mark.django_db


def _invite(email: str = "dora@example.org") -> str:
    token = secrets.token_urlsafe(32)
    invite = Invite.objects.create(email=email, role="researcher",
                                   expires_at=timezone.now() + timezone.timedelta(days=7))
    invite_keys_create(invite=invite, token=token)
    return token


def _register_api(token: str, **extra):
    return APIClient().post("/api/v1/auth/register", {
        "token": token, "username": "dora", "name": "Dora D", "password": new_password(),
        **extra}, format="json")


def _portal_login(client, user, password):
    r = client.post("/accounts/login/", {"username": user.username, "password": password})
    assert r.status_code == 302, r.content
    r = client.post("/accounts/login/code/", {"code": last_code(user.email)})
    assert r.status_code == 302, r.content


def test_the_service_paths_are_the_routes():
    assert reverse("accounts:agreement") == AGREEMENT_ACCEPT_PATH
    assert reverse("portal:terms") == AGREEMENT_TEXT_PATH


# --------------------------------------------------------------------------- registration


def test_api_registration_requires_accepting_the_agreement():
    token = _invite()
    missing = _register_api(token)
    assert missing.status_code == 400
    assert "accept_agreement" in missing.json()["errors"]
    refused = _register_api(token, accept_agreement=False)
    assert refused.status_code == 400
    assert "Accept the user agreement" in str(refused.json()["errors"]["accept_agreement"])
    assert not User.objects.filter(username="dora").exists()
    assert Invite.objects.exists()  # the invite still works

    r = _register_api(token, accept_agreement=True)
    assert r.status_code == 201, r.content
    dora = User.objects.get(username="dora")
    assert dora.agreement_version == "1"
    acceptance = AgreementAcceptance.objects.get(user=dora)
    assert acceptance.version == "1" and acceptance.accepted_at <= timezone.now()
    event = AuditEvent.objects.get(action="agreement.accept")
    assert event.actor_id == dora.pk and event.details["version"] == "1"
    assert event.details["at_registration"] is True


def test_api_registration_refuses_an_outdated_version(settings):
    settings.DDS_USER_AGREEMENT_VERSION = "2024-06"
    token = _invite()
    stale = _register_api(token, accept_agreement=True, agreement_version="2023-01")
    assert stale.status_code == 400
    assert "now version 2024-06" in str(stale.json()["errors"]["accept_agreement"])
    assert not User.objects.filter(username="dora").exists()
    r = _register_api(token, accept_agreement=True, agreement_version="2024-06")
    assert r.status_code == 201, r.content
    assert AgreementAcceptance.objects.get().version == "2024-06"


def test_portal_registration_requires_the_ticked_box():
    token = _invite()
    client = PortalClient()
    client.get(f"/accounts/register/?t={token}")
    page = client.get("/accounts/register/")
    body = page.content.decode()
    assert 'type="checkbox" name="accept_agreement"' in body
    assert "accept the user agreement (version 1)" in body
    assert 'href="/terms/"' in body
    password = new_password()
    fields = {"username": "dora", "name": "Dora", "password": password,
              "password_again": password, "agreement_version": "1"}
    unticked = client.post("/accounts/register/", fields)
    assert unticked.status_code == 400
    assert b"Accept the user agreement to continue." in unticked.content
    assert not User.objects.filter(username="dora").exists()

    r = client.post("/accounts/register/", {**fields, "accept_agreement": "on"})
    assert r.status_code == 302 and r.url == "/accounts/login/"
    assert AgreementAcceptance.objects.get(user__username="dora").version == "1"


def test_portal_registration_refuses_a_version_changed_since_the_page(settings):
    token = _invite()
    client = PortalClient()
    client.get(f"/accounts/register/?t={token}")
    password = new_password()
    settings.DDS_USER_AGREEMENT_VERSION = "2"  # changed after the page showed version 1
    r = client.post("/accounts/register/", {
        "username": "dora", "name": "Dora", "password": password, "password_again": password,
        "agreement_version": "1", "accept_agreement": "on"})
    assert r.status_code == 400 and b"now version 2" in r.content
    assert not User.objects.filter(username="dora").exists()


# --------------------------------------------------------------------------- existing users


def test_accounts_made_outside_registration_start_at_the_version_in_force(settings):
    user, _ = keyed_user()
    assert user.agreement_version == "1" and not agreement_required(user)
    assert not AgreementAcceptance.objects.filter(user=user).exists()  # nobody ticked a box
    settings.DDS_USER_AGREEMENT_VERSION = "7"
    assert agreement_required(user)
    later, _ = keyed_user()
    assert later.agreement_version == "7" and not agreement_required(later)


def test_accepting_twice_is_one_record_and_a_stale_version_is_refused(settings):
    user, _ = keyed_user()
    settings.DDS_USER_AGREEMENT_VERSION = "2"
    with pytest.raises(Exception, match="now version 2"):
        agreement_accept(user=user, version="1")
    agreement_accept(user=user, version="2")
    agreement_accept(user=user, version="2")
    assert AgreementAcceptance.objects.filter(user=user).count() == 1
    assert AuditEvent.objects.filter(action="agreement.accept").count() == 1
    user.refresh_from_db()
    assert user.agreement_version == "2" and not agreement_required(user)


# --------------------------------------------------------------------------- portal gate


def test_a_new_version_sends_the_portal_user_to_the_acceptance_page(settings):
    user, password = keyed_user()
    client = PortalClient()
    _portal_login(client, user, password)
    assert client.get("/").status_code == 200

    settings.DDS_USER_AGREEMENT_VERSION = "2"
    r = client.get("/accounts/?tab=sessions")
    assert r.status_code == 302
    assert r.url == "/accounts/agreement/?next=%2Faccounts%2F%3Ftab%3Dsessions"
    for path in ("/", "/projects/x/", "/admin/"):
        gated = client.get(path)
        assert gated.status_code == 302 and gated.url.startswith(AGREEMENT_ACCEPT_PATH)
    # Not gated: the public pages (the agreement's text among them), the API, the probes.
    assert client.get("/terms/").status_code == 200
    assert client.get("/privacy/").status_code == 200
    assert client.get("/api/v1/schema").status_code == 200
    assert client.get("/version").status_code == 200

    page = client.get(r.url)
    body = page.content.decode()
    assert page.status_code == 200 and "version 2 of the user agreement" in body
    assert 'name="next" value="/accounts/?tab=sessions"' in body
    unticked = client.post(r.url, {"agreement_version": "2",
                                   "next": "/accounts/?tab=sessions"})
    assert unticked.status_code == 400 and agreement_required(User.objects.get(pk=user.pk))

    accepted = client.post(r.url, {"agreement_version": "2", "accept_agreement": "on",
                                   "next": "/accounts/?tab=sessions"})
    assert accepted.status_code == 302 and accepted.url == "/accounts/?tab=sessions"
    assert AgreementAcceptance.objects.get(user=user).version == "2"
    event = AuditEvent.objects.get(action="agreement.accept")
    assert event.details == {"version": "2", "at_registration": False}
    assert client.get("/").status_code == 200
    # Once accepted the page just sends the user on.
    assert client.get(AGREEMENT_ACCEPT_PATH).url == "/"


def test_the_acceptance_page_refuses_a_foreign_next_and_logout_stays_open(settings):
    user, password = keyed_user()
    client = PortalClient()
    _portal_login(client, user, password)
    settings.DDS_USER_AGREEMENT_VERSION = "2"
    r = client.post(AGREEMENT_ACCEPT_PATH, {"agreement_version": "2",
                                            "accept_agreement": "on",
                                            "next": "https://evil.example/"})
    assert r.status_code == 302 and r.url == "/"

    other, other_password = keyed_user()
    client2 = PortalClient()
    settings.DDS_USER_AGREEMENT_VERSION = "1"
    _portal_login(client2, other, other_password)
    settings.DDS_USER_AGREEMENT_VERSION = "3"
    out = client2.post("/accounts/logout/")
    assert out.status_code == 302 and out.url == "/accounts/login/"
    assert client2.get("/").url.startswith("/accounts/login/")  # logged out, not gated


def test_anonymous_and_login_pages_are_never_gated(settings):
    settings.DDS_USER_AGREEMENT_VERSION = "9"
    client = PortalClient()
    assert client.get("/accounts/login/").status_code == 200
    assert client.get("/").url.startswith("/accounts/login/")
    assert client.get(AGREEMENT_ACCEPT_PATH).url.startswith("/accounts/login/")
    assert "/static/" in UNGATED_PREFIXES and "/healthz" in UNGATED_PREFIXES


# --------------------------------------------------------------------------- API


def test_api_refuses_tokens_until_the_new_version_is_accepted(settings):
    user, password = keyed_user()
    tokens = api_login(user, password)  # version 1: fine
    settings.DDS_USER_AGREEMENT_VERSION = "2"

    client = APIClient()
    first = client.post("/api/v1/auth/login", {"username": user.username,
                                               "password": password}, format="json")
    assert first.status_code == 200
    second = client.post("/api/v1/auth/2fa", {"code": last_code(user.email)}, format="json",
                         HTTP_AUTHORIZATION=f"Bearer {first.json()['pending_token']}")
    assert second.status_code == 403
    body = second.json()
    assert body["code"] == "agreement_required" and body["version"] == "2"
    assert body["accept_url"].endswith(AGREEMENT_ACCEPT_PATH)
    assert AGREEMENT_ACCEPT_PATH in body["detail"] and "access" not in body
    # The refused login leaves no live session behind.
    session = AuthSession.objects.filter(user=user).order_by("-created_at").first()
    assert session is not None and session.ended_at is not None

    # A refresh token from before the change gets no new tokens either.
    refreshed = APIClient().post("/api/v1/auth/refresh", {"refresh": tokens["refresh"]},
                                 format="json")
    assert refreshed.status_code == 403 and refreshed.json()["code"] == "agreement_required"

    agreement_accept(user=User.objects.get(pk=user.pk), version="2")
    assert api_login(user, password)["access"]


# --------------------------------------------------------------------------- migration


@pytest.mark.django_db(transaction=True)
def test_accounts_from_before_the_migration_count_as_version_1(settings):
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before = [("accounts", "0006_unit_billing_quota_warned")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old_user = executor.loader.project_state(before).apps.get_model("accounts", "User")
        old_user.objects.create(username="old-timer", email="old@example.org", name="Old",
                                password="!")
        settings.DDS_USER_AGREEMENT_VERSION = "5"  # the site already runs a later version
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
    old = User.objects.get(username="old-timer")
    assert old.agreement_version == "1" and agreement_required(old)
    assert not AgreementAcceptance.objects.filter(user=old).exists()
