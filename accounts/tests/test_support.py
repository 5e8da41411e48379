"""Support tools: finding users, a unit's users, pending invites and cancelling them,
resetting a second factor, and ``notify`` on the invite API."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied

from accounts.models import Invite, Role, TOTPDevice
from accounts.selectors import USER_FIND_LIMIT, invites_pending, users_find
from accounts.services import invite_create, second_factor_method, totp_setup_start
from accounts.services.support import invite_cancel
from accounts.tests.helpers import APIClient, api_login, bearer
from audit.models import AuditEvent
from core.errors import NotFound
from keys.models import InviteProjectKey
from keys.tests.helpers import keyed_user
from projects.services import invite_to_project, project_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def site(unit_a, unit_b):
    """Two units, each with two admins and a project; unit A also has personnel, a
    member researcher and pending invites (staff, and researchers to its project)."""
    admin, admin_pw, admin_kek = keyed_user(Role.UNIT_ADMIN, unit_a, "sa-admin")
    keyed_user(Role.UNIT_ADMIN, unit_a, "sa-admin2")
    personnel, personnel_pw, _ = keyed_user(Role.UNIT_PERSONNEL, unit_a, "sa-personnel")
    other, other_pw, other_kek = keyed_user(Role.UNIT_ADMIN, unit_b, "sb-admin")
    keyed_user(Role.UNIT_ADMIN, unit_b, "sb-admin2")
    member, member_pw, _ = keyed_user(Role.RESEARCHER, None, "sa-member")
    outsider, _, _ = keyed_user(Role.RESEARCHER, None, "sb-member")
    super_admin, super_pw, _ = keyed_user(Role.SUPER_ADMIN, None, "operator")
    project_a = project_create(unit=unit_a, by=admin, title="A", force=True,
                               researchers=[member])
    project_b = project_create(unit=unit_b, by=other, title="B", force=True,
                               researchers=[outsider])
    invite_create(email="new-staff@example.org", role=Role.UNIT_PERSONNEL, by=admin)
    invite_create(email="new-admin@example.org", role=Role.UNIT_ADMIN, by=admin)
    invite_to_project(project=project_a, email="new-researcher@example.org", by=admin,
                      by_kek=admin_kek)
    invite_to_project(project=project_b, email="b-researcher@example.org", by=other,
                      by_kek=other_kek)
    # One address invited by both units: the invite carries both projects' keys.
    invite_to_project(project=project_a, email="Shared@Example.org", by=admin,
                      by_kek=admin_kek)
    invite_to_project(project=project_b, email="shared@example.org", by=other,
                      by_kek=other_kek, is_owner=True)
    mail.outbox.clear()
    return {"admin": (admin, admin_pw), "personnel": (personnel, personnel_pw),
            "other": (other, other_pw), "member": (member, member_pw),
            "outsider": outsider, "super": (super_admin, super_pw),
            "project_a": project_a, "project_b": project_b}


def _client(site, who) -> APIClient:
    user, password = site[who]
    return bearer(api_login(user, password)["access"])


# --------------------------------------------------------------------------- find


def test_find_by_exact_username_or_email_in_any_case_then_by_prefix(site):
    admin, _ = site["admin"]
    assert [u.username for u in users_find(actor=admin, query="SA-MEMBER@example.ORG")] \
        == ["sa-member"]
    assert [u.username for u in users_find(actor=admin, query="Sa-Admin")] == [
        "sa-admin", "sa-admin2"]  # the exact match first, then the prefix
    assert [u.username for u in users_find(actor=admin, query="sa-")] == [
        "sa-admin", "sa-admin2", "sa-member", "sa-personnel"]
    # An address is matched exactly only: no prefix search on a partial address.
    assert users_find(actor=admin, query="sa-member@") == []


def test_find_is_scoped_and_says_the_same_for_no_such_and_not_yours(site):
    admin, _ = site["admin"]
    super_admin, _ = site["super"]
    assert users_find(actor=admin, query="sb-member@example.org") == []
    assert users_find(actor=admin, query="nobody@example.org") == []
    assert users_find(actor=admin, query="sb-admin") == []
    assert [u.username for u in users_find(actor=super_admin, query="sb-member")] == [
        "sb-member"]
    client = _client(site, "admin")
    hidden = client.get("/api/v1/users", {"q": "sb-member@example.org"})
    missing = client.get("/api/v1/users", {"q": "nobody@example.org"})
    assert hidden.status_code == missing.status_code == 200
    assert hidden.json() == missing.json() == []


def test_find_is_bounded(site, unit_a):
    super_admin, _ = site["super"]
    for i in range(USER_FIND_LIMIT + 3):
        keyed_user(Role.RESEARCHER, None, f"bulk{i:03d}")
    assert len(users_find(actor=super_admin, query="bulk")) == USER_FIND_LIMIT


def _totp_on(user) -> None:
    device = totp_setup_start(user=user)
    device.confirmed = True
    device.save(update_fields=["confirmed"])


def test_find_api_shows_the_second_factor_and_refuses_researchers(site):
    member, _ = site["member"]
    admin_client, member_client = _client(site, "admin"), _client(site, "member")
    got = admin_client.get("/api/v1/users", {"q": "sa-member"})
    assert got.json()[0]["second_factor"] == "email"
    _totp_on(member)
    got = admin_client.get("/api/v1/users", {"q": "sa-member"})
    assert got.status_code == 200
    [row] = got.json()
    assert (row["username"], row["second_factor"], row["unit"]) == ("sa-member", "totp", None)
    assert row["last_login"] is not None and row["date_joined"]
    assert member_client.get("/api/v1/users", {"q": "sa-member"}).status_code == 403
    assert admin_client.get("/api/v1/users", {"q": " "}).status_code == 400


# --------------------------------------------------------------------------- a unit's users


def test_a_unit_s_users_for_its_staff_and_a_super_admin_only(site, unit_a, unit_b):
    got = _client(site, "personnel").get("/api/v1/users", {"unit": unit_a.name})
    assert got.status_code == 200
    assert {u["username"] for u in got.json()} == {"sa-admin", "sa-admin2", "sa-personnel"}
    # Another unit is the same 404 as a unit that does not exist.
    other = _client(site, "admin").get("/api/v1/users", {"unit": unit_b.name})
    nothing = _client(site, "admin").get("/api/v1/users", {"unit": "No such unit"})
    assert other.status_code == nothing.status_code == 404
    assert other.json()["code"] == nothing.json()["code"] == "not_found"
    got = _client(site, "super").get("/api/v1/users", {"unit": unit_b.name})
    assert {u["username"] for u in got.json()} == {"sb-admin", "sb-admin2"}
    # A search within a unit: its staff only (not sb-member, a member of its project).
    got = _client(site, "super").get("/api/v1/users", {"q": "sb-", "unit": unit_b.name})
    assert [u["username"] for u in got.json()] == ["sb-admin", "sb-admin2"]
    assert _client(site, "member").get("/api/v1/users",
                                       {"unit": unit_a.name}).status_code == 403


# --------------------------------------------------------------------------- invites


def test_pending_invites_are_scoped_to_the_unit(site, unit_a):
    admin, _ = site["admin"]
    other, _ = site["other"]
    super_admin, _ = site["super"]
    a, b = site["project_a"].public_id, site["project_b"].public_id
    mine = {i.email.lower(): i for i in invites_pending(admin)}
    assert set(mine) == {"new-staff@example.org", "new-admin@example.org",
                         "new-researcher@example.org", "shared@example.org"}
    assert mine["new-staff@example.org"].unit == unit_a.name
    assert mine["new-researcher@example.org"].projects == [a]
    # Unit A does not learn which of unit B's projects the shared invite carries.
    assert mine["shared@example.org"].projects == [a]
    assert mine["shared@example.org"].invited_by == admin.username
    theirs = {i.email.lower(): i.projects for i in invites_pending(other)}
    assert theirs == {"b-researcher@example.org": [b], "shared@example.org": [b]}
    # Unit A made the shared invite: unit B does not learn A's staff username.
    shared_b = {i.email.lower(): i for i in invites_pending(other)}["shared@example.org"]
    assert shared_b.invited_by is None
    everything = {i.email.lower(): i.projects for i in invites_pending(super_admin)}
    assert len(everything) == 5 and sorted(everything["shared@example.org"]) == sorted([a, b])
    member, _ = site["member"]
    with pytest.raises(PermissionDenied):
        invites_pending(member)


def test_pending_invites_api(site):
    got = _client(site, "personnel").get("/api/v1/invites")
    assert got.status_code == 200
    rows = {r["email"].lower(): r for r in got.json()}
    assert rows["new-researcher@example.org"]["invited_by"] == "sa-admin"
    assert rows["new-researcher@example.org"]["is_expired"] is False
    assert rows["new-admin@example.org"]["role"] == Role.UNIT_ADMIN
    assert _client(site, "member").get("/api/v1/invites").status_code == 403
    assert APIClient().get("/api/v1/invites").status_code == 401


def test_cancel_deletes_the_invite_and_its_keys_audited(site):
    admin, _ = site["admin"]
    invite = Invite.objects.get(email="new-researcher@example.org")
    assert InviteProjectKey.objects.filter(invite=invite).exists()
    got = _client(site, "admin").delete("/api/v1/invites/NEW-researcher@example.org")
    assert got.status_code == 200, got.content
    assert got.json() == {"email": "new-researcher@example.org",
                          "projects": [site["project_a"].public_id], "deleted": True}
    assert not Invite.objects.filter(pk=invite.pk).exists()
    assert not InviteProjectKey.objects.filter(invite_id=invite.pk).exists()
    event = AuditEvent.objects.get(action="invite.cancel", target="new-researcher@example.org")
    assert event.actor_id == admin.pk and event.details["partial"] is False
    assert event.project_id == site["project_a"].pk
    # Cancelled is gone: a second time is a 404.
    again = _client(site, "admin").delete("/api/v1/invites/new-researcher@example.org")
    assert again.status_code == 404


def test_cancel_is_refused_across_units_with_the_same_404_as_unknown(site):
    client = _client(site, "admin")
    other = client.delete("/api/v1/invites/b-researcher@example.org")
    unknown = client.delete("/api/v1/invites/nobody@example.org")
    assert other.status_code == unknown.status_code == 404
    assert other.json()["detail"].replace("b-researcher", "nobody") == unknown.json()["detail"]
    assert Invite.objects.filter(email="b-researcher@example.org").exists()
    assert _client(site, "member").delete(
        "/api/v1/invites/new-staff@example.org").status_code == 403
    assert Invite.objects.filter(email="new-staff@example.org").exists()


def test_personnel_cancel_staff_invites_but_not_a_unit_admin_s(site):
    personnel, _ = site["personnel"]
    invite_cancel(email="new-staff@example.org", by=personnel)
    assert not Invite.objects.filter(email="new-staff@example.org").exists()
    with pytest.raises(PermissionDenied):
        invite_cancel(email="new-admin@example.org", by=personnel)
    assert Invite.objects.filter(email="new-admin@example.org").exists()


def test_a_unit_cancels_only_its_own_part_of_a_shared_invite(site):
    admin, _ = site["admin"]
    other, _ = site["other"]
    a, b = site["project_a"], site["project_b"]
    cancelled = invite_cancel(email="shared@example.org", by=admin)
    assert (cancelled.deleted, cancelled.projects) == (False, [a.public_id])
    invite = Invite.objects.get(email__iexact="shared@example.org")
    assert list(invite.project_keys.values_list("project_id", flat=True)) == [b.pk]
    # The invite now stands for unit B's project only (and is invisible to unit A).
    assert (invite.project_id, invite.is_owner) == (b.pk, True)
    with pytest.raises(NotFound):
        invite_cancel(email="shared@example.org", by=admin)
    assert invite_cancel(email="shared@example.org", by=other).deleted is True
    assert not Invite.objects.filter(email__iexact="shared@example.org").exists()


def test_a_super_admin_cancels_any_invite_whole(site):
    super_admin, _ = site["super"]
    cancelled = invite_cancel(email="shared@example.org", by=super_admin)
    assert cancelled.deleted is True
    assert sorted(cancelled.projects) == sorted([site["project_a"].public_id,
                                                 site["project_b"].public_id])
    assert not Invite.objects.filter(email__iexact="shared@example.org").exists()


# --------------------------------------------------------------------------- second factor


def test_super_admin_resets_a_second_factor(site):
    member, member_pw = site["member"]
    _totp_on(member)
    got = _client(site, "super").post(f"/api/v1/users/{member.username}/second-factor-reset")
    assert got.status_code == 200, got.content
    body = got.json()
    assert (body["username"], body["second_factor"], body["authenticator_removed"]) == (
        member.username, "email", True)
    assert not TOTPDevice.objects.filter(user=member).exists()
    assert second_factor_method(member) == "email"
    event = AuditEvent.objects.get(action="auth.second_factor_reset", target=member.username)
    assert event.details == {"authenticator_removed": True}
    [message] = [m for m in mail.outbox if m.to == [member.email]]
    assert "second factor was reset" in message.subject
    assert "codes sent to this address" in message.body
    # Logging in now asks for an emailed code.
    first = APIClient().post("/api/v1/auth/login", {"username": member.username,
                                                     "password": member_pw}, format="json")
    assert first.json()["second_factor"] == "email"


def test_the_reset_ends_the_user_s_sessions(site):
    member, member_pw = site["member"]
    client = bearer(api_login(member, member_pw)["access"])
    assert client.get("/api/v1/me").status_code == 200
    _client(site, "super").post(f"/api/v1/users/{member.username}/second-factor-reset")
    assert client.get("/api/v1/me").status_code == 401


def test_only_a_super_admin_resets_a_second_factor(site):
    member, _ = site["member"]
    clients = {who: _client(site, who) for who in ("admin", "personnel", "member")}
    _totp_on(member)
    for who, client in clients.items():
        got = client.post(f"/api/v1/users/{member.username}/second-factor-reset")
        assert got.status_code == 403, who
        assert got.json()["detail"] == "Only a Super Admin can do this."
    assert TOTPDevice.objects.filter(user=member, confirmed=True).exists()
    assert not AuditEvent.objects.filter(action="auth.second_factor_reset").exists()
    unknown = _client(site, "super").post("/api/v1/users/nobody/second-factor-reset")
    assert unknown.status_code == 404


def test_listing_invites_and_users_takes_a_fixed_number_of_queries(site,
                                                                   django_assert_num_queries):
    super_admin, _ = site["super"]
    admin, _ = site["admin"]
    with django_assert_num_queries(2):  # the invites with their relations, their keys
        assert len(invites_pending(super_admin)) == 5
    with django_assert_num_queries(2):
        assert len(invites_pending(admin)) == 4
    with django_assert_num_queries(1):
        assert len(users_find(actor=super_admin, query="s")) >= 5


# --------------------------------------------------------------------------- no mail


def test_an_invite_with_notify_false_sends_no_email(site):
    client = _client(site, "admin")
    mail.outbox.clear()
    got = client.post("/api/v1/invites", {"email": "quiet@example.org",
                                          "role": Role.UNIT_PERSONNEL, "notify": False},
                      format="json")
    assert got.status_code == 201, got.content
    assert Invite.objects.filter(email="quiet@example.org").exists()
    assert not [m for m in mail.outbox if "quiet@example.org" in m.to]
    got = client.post("/api/v1/invites", {"email": "loud@example.org",
                                          "role": Role.UNIT_PERSONNEL}, format="json")
    assert got.status_code == 201, got.content
    assert [m for m in mail.outbox if "loud@example.org" in m.to]
