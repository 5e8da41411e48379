"""Portal pages: login with an email code, key session via cookie, TOTP set-up, register."""

from __future__ import annotations

import secrets

import pytest
from django.test import RequestFactory
from django.utils import timezone

from accounts.models import Invite, TOTPDevice, User
from accounts.sessions import PORTAL_KEY_COOKIE, PORTAL_SESSION_KEY, request_kek
from accounts.tests.helpers import PortalClient, last_code, new_password
from keys.services import invite_keys_create, user_kek_derive

pytestmark = pytest.mark.django_db


def _portal_login(client, user, password):
    r = client.post("/accounts/login/", {"username": user.username, "password": password})
    assert r.status_code == 302 and r.url == "/accounts/login/code/"
    r = client.post("/accounts/login/code/", {"code": last_code(user.email)})
    assert r.status_code == 302, r.content
    return r


def test_portal_login_account_page_and_key_session(researcher_keyed):
    user, password = researcher_keyed
    client = PortalClient()
    assert client.get("/accounts/").status_code == 302  # login required
    bad = client.post("/accounts/login/", {"username": user.username, "password": "Nope-12345"})
    assert bad.status_code == 401 and b"Invalid username or password." in bad.content
    _portal_login(client, user, password)
    page = client.get("/accounts/")
    assert page.status_code == 200 and user.username.encode() in page.content

    # request_kek works for a portal request: session id + the cookie's sealed key.
    request = RequestFactory().get("/")
    request.user = user
    request.session = {PORTAL_SESSION_KEY: client.session[PORTAL_SESSION_KEY]}
    request.COOKIES[PORTAL_KEY_COOKIE] = client.cookies[PORTAL_KEY_COOKIE].value
    assert request_kek(request) == user_kek_derive(user=user, password=password)

    client.post("/accounts/logout/")
    assert client.get("/accounts/").status_code == 302


def test_portal_totp_setup_shows_a_qr_code(researcher_keyed):
    user, password = researcher_keyed
    client = PortalClient()
    _portal_login(client, user, password)
    client.post("/accounts/totp/setup/")
    page = client.get("/accounts/")
    assert b"<svg" in page.content and b"Turn on" in page.content
    assert TOTPDevice.objects.filter(user=user, confirmed=False).exists()


def test_portal_register_from_invite_hides_the_token():
    token = secrets.token_urlsafe(32)
    invite = Invite.objects.create(email="dora@example.org", role="researcher",
                                   expires_at=timezone.now() + timezone.timedelta(days=7))
    invite_keys_create(invite=invite, token=token)
    client = PortalClient()
    r = client.get(f"/accounts/register/?t={token}")
    assert r.status_code == 302 and r.url == "/accounts/register/"
    page = client.get("/accounts/register/")
    assert b"dora@example.org" in page.content
    password = new_password()
    weak = client.post("/accounts/register/", {"username": "dora", "name": "Dora",
                                               "password": "short", "password_again": "short",
                                               "agreement_version": "1", "accept_agreement": "on"})
    assert weak.status_code == 400
    r = client.post("/accounts/register/", {"username": "dora", "name": "Dora",
                                            "password": password, "password_again": password,
                                            "agreement_version": "1", "accept_agreement": "on"})
    assert r.status_code == 302
    assert User.objects.get(username="dora").public_key


def test_portal_forged_invite_is_a_clear_400():
    r = PortalClient().get("/accounts/register/?t=forged", follow=True)
    assert r.status_code == 400 and b"not valid" in r.content
