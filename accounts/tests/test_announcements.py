"""Messages of the day and maintenance mode: the services, the API, the middleware, the
admin and the portal banner."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.cache import cache
from django.test import Client, TestCase

from accounts.models import MOTD, Maintenance, Role
from accounts.services.announcements import (
    MAINTENANCE_CACHE_KEY,
    MAINTENANCE_DEFAULT_MESSAGE,
    MOTD_MAX_LENGTH,
    maintenance_message,
    maintenance_set,
    maintenance_status,
    motd_add,
    motd_deactivate,
    motd_list,
    motd_send,
)
from accounts.tests.factories import UserFactory
from accounts.tests.helpers import APIClient, api_login, bearer, portal_login
from audit.models import AuditEvent
from core.errors import BadInput, NotAllowed, NotFound
from keys.tests.helpers import keyed_user
from projects.tests.factories import MembershipFactory, ProjectFactory
from tests.permission_matrix import ACTORS, auth_header, build_world

pytestmark = pytest.mark.django_db


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("pk"))


# --------------------------------------------------------------------------- MOTD services


def test_motd_add_validates_and_audits(superadmin):
    motd = motd_add(by=superadmin, message="  Storage upgrade on Friday  ", ip="10.0.0.1")
    assert motd.message == "Storage upgrade on Friday" and motd.is_active
    [event] = _events("motd.add")
    assert event.actor_id == superadmin.pk and event.target == str(motd.pk)
    assert event.ip == "10.0.0.1"

    for bad, words in (("", "empty"), ("   \n ", "empty"),
                       ("x" * (MOTD_MAX_LENGTH + 1), f"at most {MOTD_MAX_LENGTH}"),
                       ("bell\x07", "control character")):
        with pytest.raises(BadInput, match=words):
            motd_add(by=superadmin, message=bad)
    assert MOTD.objects.count() == 1 and len(_events("motd.add")) == 1
    # Lines and tabs are text, not control characters to refuse.
    assert motd_add(by=superadmin, message="Line one\n\tLine two").message == \
        "Line one\n\tLine two"


@pytest.mark.parametrize("role", [Role.RESEARCHER, Role.UNIT_PERSONNEL, Role.UNIT_ADMIN])
def test_only_the_super_admin_announces(role, unit_a, superadmin):
    someone = UserFactory(role=role, unit=None if role == Role.RESEARCHER else unit_a)
    motd = motd_add(by=superadmin, message="Hello")
    with pytest.raises(NotAllowed):
        motd_add(by=someone, message="Mine")
    with pytest.raises(NotAllowed):
        motd_deactivate(by=someone, motd_id=motd.pk)
    with pytest.raises(NotAllowed):
        motd_send(by=someone, motd_id=motd.pk)
    with pytest.raises(NotAllowed):
        maintenance_set(by=someone, on=True)
    inactive = UserFactory(role=Role.SUPER_ADMIN, is_active=False)
    with pytest.raises(NotAllowed):
        motd_add(by=inactive, message="Gone")


def test_motd_deactivate_and_list(superadmin):
    old = motd_add(by=superadmin, message="Old")
    new = motd_add(by=superadmin, message="New")
    assert [m.message for m in motd_list(active_only=True)] == ["New", "Old"]
    motd_deactivate(by=superadmin, motd_id=old.pk)
    motd_deactivate(by=superadmin, motd_id=old.pk)  # again: nothing more to do
    assert [m.pk for m in motd_list(active_only=True)] == [new.pk]
    assert [m.pk for m in motd_list(active_only=False)] == [new.pk, old.pk]
    assert len(_events("motd.deactivate")) == 1
    with pytest.raises(NotFound, match="no message of the day with id 999999"):
        motd_deactivate(by=superadmin, motd_id=999999)


# --------------------------------------------------------------------------- sending


@pytest.fixture
def people(unit_a, unit_b, superadmin, django_capture_on_commit_callbacks):
    """Staff of two units, researchers in each unit's project, one in both, and people
    who must never get an email (deactivated, no address)."""
    staff_a = UserFactory(role=Role.UNIT_ADMIN, unit=unit_a)
    staff_b = UserFactory(role=Role.UNIT_PERSONNEL, unit=unit_b)
    in_a = UserFactory(role=Role.RESEARCHER)
    in_b = UserFactory(role=Role.RESEARCHER)
    in_both = UserFactory(role=Role.RESEARCHER)
    loner = UserFactory(role=Role.RESEARCHER)
    gone = UserFactory(role=Role.RESEARCHER, is_active=False)
    nomail = UserFactory(role=Role.RESEARCHER, email="")
    project_a, project_b = ProjectFactory(unit=unit_a), ProjectFactory(unit=unit_b)
    for user, project in ((in_a, project_a), (in_b, project_b), (in_both, project_a),
                          (in_both, project_b), (gone, project_a), (nomail, project_a)):
        MembershipFactory(user=user, project=project)
    motd = motd_add(by=superadmin, message="The cluster moves on Monday.")
    return {"staff_a": staff_a, "staff_b": staff_b, "in_a": in_a, "in_b": in_b,
            "in_both": in_both, "loner": loner, "gone": gone, "motd": motd,
            "superadmin": superadmin}


def _sent(capture, **kwargs) -> list:
    before = len(mail.outbox)
    with capture(execute=True):
        count = motd_send(**kwargs)
    sent = mail.outbox[before:]
    assert count == len(sent)
    return sent


def test_motd_send_to_everyone_one_email_each(people, django_capture_on_commit_callbacks):
    p = people
    sent = _sent(django_capture_on_commit_callbacks, by=p["superadmin"], motd_id=p["motd"].pk)
    expected = {p[k].email for k in ("staff_a", "staff_b", "in_a", "in_b", "in_both",
                                     "loner", "superadmin")}
    # One email per person, each addressed to that person alone: nobody sees the others.
    assert sorted(a for m in sent for a in m.to) == sorted(expected)
    assert all(len(m.to) == 1 and not m.cc and not m.bcc for m in sent)
    assert all("The cluster moves on Monday." in m.body for m in sent)
    assert all(p["gone"].email not in m.to for m in sent)
    [event] = _events("motd.send")
    assert event.details == {"motd": p["motd"].pk, "unit": None, "recipients": len(expected)}
    assert "@" not in str(event.details)


def test_motd_send_to_one_unit(people, unit_a, django_capture_on_commit_callbacks):
    p = people
    sent = _sent(django_capture_on_commit_callbacks, by=p["superadmin"],
                 motd_id=p["motd"].pk, unit="Unit A")
    assert sorted(m.to[0] for m in sent) == sorted(
        [p["staff_a"].email, p["in_a"].email, p["in_both"].email])
    assert all(unit_a.display_name in m.body for m in sent)
    # The unit may also be named by its public id.
    again = _sent(django_capture_on_commit_callbacks, by=p["superadmin"],
                  motd_id=p["motd"].pk, unit=unit_a.public_id)
    assert len(again) == 3
    with pytest.raises(NotFound, match="No such unit: 'Nowhere'"):
        motd_send(by=p["superadmin"], motd_id=p["motd"].pk, unit="Nowhere")
    with pytest.raises(NotFound):
        motd_send(by=p["superadmin"], motd_id=123456789)


def test_motd_send_many_users_all_queued(superadmin, django_capture_on_commit_callbacks):
    from accounts.services import announcements

    UserFactory.create_batch(25)
    motd = motd_add(by=superadmin, message="Many")
    original = announcements.SEND_CHUNK
    announcements.SEND_CHUNK = 4  # the recipients are read in several chunks
    try:
        sent = _sent(django_capture_on_commit_callbacks, by=superadmin, motd_id=motd.pk)
    finally:
        announcements.SEND_CHUNK = original
    assert len(sent) == 26 and len({m.to[0] for m in sent}) == 26


# --------------------------------------------------------------------------- maintenance


def test_maintenance_set_audits_and_refreshes_the_cache(superadmin,
                                                        django_capture_on_commit_callbacks):
    assert maintenance_message() is None
    assert cache.get(MAINTENANCE_CACHE_KEY) == {"on": False, "message": ""}  # cached
    with django_capture_on_commit_callbacks(execute=True):
        state = maintenance_set(by=superadmin, on=True, message="Back at noon.")
    assert state.active and state.message == "Back at noon."
    # The new state is in the cache at once, not only after the cache timeout.
    assert cache.get(MAINTENANCE_CACHE_KEY) == {"on": True, "message": "Back at noon."}
    assert maintenance_message() == "Back at noon."
    assert maintenance_status().active
    with django_capture_on_commit_callbacks(execute=True):
        maintenance_set(by=superadmin, on=True)  # already on, no new message: no event
        maintenance_set(by=superadmin, on=False)
        maintenance_set(by=superadmin, on=False)
    assert maintenance_message() is None
    assert cache.get(MAINTENANCE_CACHE_KEY) == {"on": False, "message": ""}
    assert [e.action for e in AuditEvent.objects.filter(action__startswith="maintenance")
            .order_by("pk")] == ["maintenance.on", "maintenance.off"]
    # Without a message, switching on says the default, not the last message.
    with django_capture_on_commit_callbacks(execute=True):
        assert maintenance_set(by=superadmin, on=True).message == MAINTENANCE_DEFAULT_MESSAGE
    with pytest.raises(BadInput, match="at most"):
        maintenance_set(by=superadmin, on=True, message="x" * 501)


def test_maintenance_rolled_back_leaves_the_cache_alone(superadmin,
                                                        django_capture_on_commit_callbacks):
    from django.db import transaction

    maintenance_message()  # cached "off"
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                maintenance_set(by=superadmin, on=True, message="Never")
                raise RuntimeError
    assert maintenance_message() is None
    assert not Maintenance.objects.filter(is_active=True).exists()


# --------------------------------------------------------------------------- API


@pytest.fixture
def world(db):
    return build_world()


def _as(world, actor) -> APIClient:
    client = APIClient()
    client.credentials(**auth_header(world, actor))
    return client


def test_api_motd_reads_for_every_actor(world):
    MOTD.objects.create(message="Visible")
    MOTD.objects.create(message="Hidden", is_active=False)
    for actor in ACTORS:
        r = _as(world, actor).get("/api/v1/motd")
        if actor == "pending":
            assert r.status_code == 401, actor  # half logged in: not a valid token here
            continue
        assert r.status_code == 200, (actor, r.content)
        assert [m["message"] for m in r.json()] == ["Visible"], actor
        every = _as(world, actor).get("/api/v1/motd?all=true")
        want = {"super_admin": 200, "anonymous": 401}.get(actor, 403)
        assert every.status_code == want, (actor, every.content)
    listed = _as(world, "super_admin").get("/api/v1/motd", {"all": "1"}).json()
    assert {m["message"]: m["is_active"] for m in listed} == {"Visible": True, "Hidden": False}


def test_api_maintenance_read_for_every_signed_in_actor(world):
    for actor in ACTORS:
        r = _as(world, actor).get("/api/v1/maintenance")
        want = 401 if actor in ("anonymous", "pending") else 200
        assert r.status_code == want, (actor, r.content)
    assert _as(world, "researcher").get("/api/v1/maintenance").json()["active"] is False


def test_maintenance_never_switched_on_has_no_change_time(world):
    assert not Maintenance.objects.exists()
    state = maintenance_status()
    assert not state.active and state.changed_at is None
    body = _as(world, "researcher").get("/api/v1/maintenance").json()
    assert body == {"active": False, "message": "", "changed_at": None}
    admin = _as(world, "super_admin")
    # Switching off what was never on changes nothing: still no change time.
    off = admin.put("/api/v1/maintenance", {"active": False}, format="json")
    assert off.status_code == 200 and off.json()["changed_at"] is None
    assert not Maintenance.objects.exists() and maintenance_status().changed_at is None
    admin.put("/api/v1/maintenance", {"active": True}, format="json")
    admin.put("/api/v1/maintenance", {"active": False}, format="json")
    row = Maintenance.objects.get()
    assert maintenance_status().changed_at == row.changed_at
    assert admin.get("/api/v1/maintenance").json()["changed_at"] is not None


def test_api_motd_flow(world):
    admin = _as(world, "super_admin")
    r = admin.post("/api/v1/motd", {"message": "Storage upgrade"}, format="json")
    assert r.status_code == 201, r.content
    motd_id = r.json()["id"]
    assert r.json()["is_active"] is True and r.json()["message"] == "Storage upgrade"

    bad = admin.post("/api/v1/motd", {"message": "  "}, format="json")
    assert bad.status_code == 400 and "empty" in bad.json()["detail"]
    long = admin.post("/api/v1/motd", {"message": "y" * 5000}, format="json")
    assert long.status_code == 400
    assert admin.post("/api/v1/motd", {}, format="json").status_code == 400

    sent = admin.post(f"/api/v1/motd/{motd_id}/send", {"unit": "Matrix A"}, format="json")
    assert sent.status_code == 202, sent.content
    # Matrix A: its staff (personnel, two admins, target staff) and its project's members.
    assert sent.json() == {"id": motd_id, "unit": "Matrix A",
                           "recipients": sent.json()["recipients"]}
    assert sent.json()["recipients"] >= 5
    assert admin.post(f"/api/v1/motd/{motd_id}/send", {"unit": "Nope"},
                      format="json").status_code == 404

    off = admin.post(f"/api/v1/motd/{motd_id}/deactivate")
    assert off.status_code == 200 and off.json()["is_active"] is False
    assert admin.post("/api/v1/motd/999999/deactivate").status_code == 404
    assert admin.post("/api/v1/motd/99999999999999999999/deactivate").status_code == 404
    assert _as(world, "researcher").get("/api/v1/motd").json() == []


def test_api_maintenance_put_validates(world):
    admin = _as(world, "super_admin")
    assert admin.put("/api/v1/maintenance", {}, format="json").status_code == 400
    assert admin.put("/api/v1/maintenance", {"active": "maybe"},
                     format="json").status_code == 400
    r = admin.put("/api/v1/maintenance", {"active": True, "message": "m" * 501},
                  format="json")
    assert r.status_code == 400 and "at most 500" in r.json()["detail"]
    assert not Maintenance.objects.filter(is_active=True).exists()


# --------------------------------------------------------------------------- middleware


def test_maintenance_mode_end_to_end_through_the_api(db):
    operator, operator_pw, _ = keyed_user(Role.SUPER_ADMIN)
    person, person_pw, _ = keyed_user(Role.RESEARCHER)
    admin = bearer(api_login(operator, operator_pw)["access"])
    researcher_tokens = api_login(person, person_pw)
    researcher = bearer(researcher_tokens["access"])
    assert researcher.get("/api/v1/me").status_code == 200  # caches "off"

    r = admin.put("/api/v1/maintenance", {"active": True, "message": "Back at noon."},
                  format="json")
    assert r.status_code == 200 and r.json()["active"] is True
    # At once (the cache was refreshed, not left to time out).
    refused = researcher.get("/api/v1/me")
    assert refused.status_code == 503
    assert refused.json() == {"detail": "Under maintenance: Back at noon.",
                              "code": "maintenance"}
    assert refused.headers["Retry-After"]
    # The operator still works, and anyone signed in may read the state.
    assert admin.get("/api/v1/me").status_code == 200
    status = researcher.get("/api/v1/maintenance")
    assert status.status_code == 200 and status.json()["message"] == "Back at noon."
    assert researcher.put("/api/v1/maintenance", {"active": False},
                          format="json").status_code == 503
    # A researcher may still refresh a token (the auth endpoints are open) ...
    refreshed = APIClient().post("/api/v1/auth/refresh",
                                 {"refresh": researcher_tokens["refresh"]}, format="json")
    assert refreshed.status_code == 200
    # ... and a bad or ended token is told to authenticate (401), not "maintenance", so
    # that an operator whose access token expired refreshes it and gets through.
    garbage = bearer("not-a-token").get("/api/v1/me")
    assert garbage.status_code == 401

    # A message that says it already is not repeated.
    admin.put("/api/v1/maintenance", {"active": True, "message": "Maintenance until 12."},
              format="json")
    assert researcher.get("/api/v1/me").json()["detail"] == "Maintenance until 12."

    r = admin.put("/api/v1/maintenance", {"active": False}, format="json")
    assert r.status_code == 200 and r.json()["active"] is False
    fresh = bearer(refreshed.json()["access"])
    assert fresh.get("/api/v1/me").status_code == 200


def test_expired_operator_token_gets_401_during_maintenance(db, settings):
    from datetime import timedelta

    from rest_framework_simplejwt.tokens import AccessToken

    operator, operator_pw, _ = keyed_user(Role.SUPER_ADMIN)
    tokens = api_login(operator, operator_pw)
    admin = bearer(tokens["access"])
    assert admin.put("/api/v1/maintenance", {"active": True},
                     format="json").status_code == 200
    expired = AccessToken(tokens["access"])
    expired.set_exp(lifetime=-timedelta(minutes=1))
    r = bearer(str(expired)).get("/api/v1/me")
    assert r.status_code == 401, r.content
    assert r.json()["code"] and r.headers["WWW-Authenticate"].startswith("Bearer")
    new = APIClient().post("/api/v1/auth/refresh", {"refresh": tokens["refresh"]},
                           format="json").json()
    assert bearer(new["access"]).get("/api/v1/me").status_code == 200


# --------------------------------------------------------------------------- admin, portal


def test_during_maintenance_the_admin_is_the_super_admin_s_only(db, unit_a):
    staff = UserFactory(role=Role.UNIT_ADMIN, unit=unit_a)
    operator = UserFactory(role=Role.SUPER_ADMIN)
    staff_client, operator_client = Client(), Client()
    portal_login(staff_client, staff)
    portal_login(operator_client, operator)
    with TestCase.captureOnCommitCallbacks(execute=True):
        maintenance_set(by=operator, on=True, message="Upgrading.")
    assert staff_client.get("/admin/").status_code == 503
    assert operator_client.get("/admin/").status_code == 200
    # The admin's login still leads to the portal login, where the operator gets in.
    r = Client().get("/admin/login/?next=/admin/")
    assert r.status_code == 302 and "/accounts/login/" in r.url


def test_admin_saves_go_through_the_services(db, django_capture_on_commit_callbacks):
    operator = UserFactory(role=Role.SUPER_ADMIN)
    client = Client()
    portal_login(client, operator)
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post("/admin/accounts/motd/add/", {"message": "From the admin",
                                                      "is_active": "on"})
    assert r.status_code == 302, r.content[:2000]
    motd = MOTD.objects.get(message="From the admin")
    assert [e.target for e in _events("motd.add")] == [str(motd.pk)]
    r = client.post("/admin/accounts/motd/add/", {"message": "ring\x07", "is_active": "on"})
    assert r.status_code == 200 and b"control character" in r.content
    assert MOTD.objects.count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(f"/admin/accounts/motd/{motd.pk}/change/", {"message": "From the admin"})
    assert r.status_code == 302
    motd.refresh_from_db()
    assert not motd.is_active and len(_events("motd.deactivate")) == 1

    with django_capture_on_commit_callbacks(execute=True):
        r = client.post("/admin/accounts/maintenance/add/", {"is_active": "on",
                                                             "message": "Admin says wait."})
    assert r.status_code == 302, r.content[:2000]
    assert maintenance_message() == "Admin says wait."
    assert len(_events("maintenance.on")) == 1
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post("/admin/accounts/maintenance/1/change/", {"message": "x"})
    assert r.status_code == 302
    assert maintenance_message() is None and len(_events("maintenance.off")) == 1
    assert Maintenance.objects.count() == 1

    # The maintenance row is not deleted (it keeps when maintenance was last switched);
    # deleting a message of the day is a deactivation.
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/admin/accounts/maintenance/add/", {"is_active": "on", "message": "On"})
    assert maintenance_message() == "On"
    r = client.post("/admin/accounts/maintenance/1/delete/", {"post": "yes"})
    assert r.status_code == 403 and Maintenance.objects.get().is_active
    assert maintenance_message() == "On"
    other = motd_add(by=operator, message="To delete")
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(f"/admin/accounts/motd/{other.pk}/delete/", {"post": "yes"})
    assert r.status_code == 302 and not MOTD.objects.filter(pk=other.pk).exists()
    assert [e.target for e in _events("motd.deactivate")][-1] == str(other.pk)


def test_portal_banner_and_operator_notice(db, rf):
    from django.contrib.auth.models import AnonymousUser

    from portal.context_processors import motd

    for i in range(5):
        MOTD.objects.create(message=f"Message {i}")
    MOTD.objects.create(message="Old news", is_active=False)
    request = rf.get("/")
    request.user = AnonymousUser()
    context = motd(request)
    assert context["motds"]() == ["Message 4", "Message 3", "Message 2"]
    assert context["maintenance_notice"]() is None
    Maintenance.objects.update_or_create(pk=1, defaults={"is_active": True,
                                                         "message": "Upgrading."})
    assert context["maintenance_notice"]() is None  # not the operator
    request.user = UserFactory(role=Role.SUPER_ADMIN)
    assert motd(request)["maintenance_notice"]() == "Upgrading."
    # The login page (open during maintenance) shows the messages to anyone.
    page = Client().get("/accounts/login/").content.decode()
    assert "Message 4" in page and "Old news" not in page
