"""Facility operations on projects over the API: creating a project that invites new
addresses, adding members without email, and the list of projects with work in flight."""

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import Invite, Role
from keys.models import InviteProjectKey, KeyRotation
from keys.tests.helpers import keyed_user
from projects.models import Project, ProjectMembership, ProjectStatus
from projects.services import project_create
from projects.tests.helpers import login, make_world
from transfers.models import Upload, UploadStatus


@pytest.fixture
def world(unit_a):
    return make_world(unit_a)


def _mails_to(email):
    return [m for m in mail.outbox if email in m.to]


# --------------------------------------------------------------------------- create


@pytest.mark.django_db
def test_create_invites_addresses_without_an_account(world):
    staff = login(world, world.staff)
    created = staff.post("/api/v1/projects", {
        "title": "With newcomers", "researchers": ["New.One@example.org",
                                                   world.researcher.email],
        "owners": ["boss@example.org"]}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    project = Project.objects.get(public_id=body["id"])
    assert [m["username"] for m in body["added"]] == [world.researcher.username]
    assert body["added"][0]["has_key"] is True and body["added"][0]["owner"] is False
    assert sorted((i["email"], i["owner"]) for i in body["invited"]) == [
        ("boss@example.org", True), ("new.one@example.org", False)]
    assert "token" not in str(body) and "/register" not in str(body)
    for email, owner in (("new.one@example.org", False), ("boss@example.org", True)):
        invite = Invite.objects.get(email__iexact=email)
        grant = InviteProjectKey.objects.get(invite=invite, project=project)
        assert grant.is_owner is owner
        [message] = _mails_to(email)
        assert project.public_id in message.body and "/accounts/register/?t=" in message.body
    # The existing researcher is a member with a key, and gets no invitation.
    assert ProjectMembership.objects.filter(project=project, user=world.researcher).exists()
    assert _mails_to(world.researcher.email) == []


@pytest.mark.django_db
def test_create_without_mail_holds_the_invites(world):
    staff = login(world, world.staff)
    sent_before = len(mail.outbox)
    created = staff.post("/api/v1/projects", {
        "title": "Quiet", "researchers": ["quiet@example.org"], "notify": False},
        format="json")
    assert created.status_code == 201, created.content
    assert [i["email"] for i in created.json()["invited"]] == ["quiet@example.org"]
    assert Invite.objects.filter(email="quiet@example.org").exists()
    assert len(mail.outbox) == sent_before
    assert _mails_to("quiet@example.org") == []


@pytest.mark.parametrize("field", ["researchers", "owners"])
@pytest.mark.django_db
def test_create_refuses_a_bad_address_and_creates_nothing(world, field):
    staff = login(world, world.staff)
    before = Project.objects.count()
    refused = staff.post("/api/v1/projects", {
        "title": "Typo", field: ["fine@example.org", "not-an-email"]}, format="json")
    assert refused.status_code == 400, refused.content
    assert "not-an-email" in refused.json()["detail"]
    assert Project.objects.count() == before
    assert not Invite.objects.exists()
    assert _mails_to("fine@example.org") == []


@pytest.mark.django_db
def test_create_refuses_staff_and_other_roles_and_creates_nothing(world, unit_b):
    staff = login(world, world.staff)
    before = Project.objects.count()
    other_staff, _pw, _kek = keyed_user(Role.UNIT_PERSONNEL, unit_b)
    refused = staff.post("/api/v1/projects", {
        "title": "Staff", "researchers": ["new@example.org"],
        "owners": [other_staff.email]}, format="json")
    assert refused.status_code == 400
    detail = refused.json()["detail"]
    assert other_staff.email in detail and "cannot be added" in detail
    # Whose address it is, and as what, is not told to another unit's staff.
    assert other_staff.username not in detail.replace(other_staff.email, "")
    assert "Personnel" not in detail
    deactivated, _pw, _kek = keyed_user(Role.RESEARCHER)
    deactivated.is_active = False
    deactivated.save(update_fields=["is_active"])
    gone = staff.post("/api/v1/projects", {"title": "Gone", "researchers": [deactivated.email]},
                      format="json")
    assert gone.status_code == 400 and gone.json()["detail"] == detail.replace(
        other_staff.email, deactivated.email)
    # A pending invitation as unit staff is not turned into a researcher's.
    Invite.objects.create(email="joining@example.org", role=Role.UNIT_PERSONNEL,
                          unit=world.unit, expires_at=timezone.now() + dt.timedelta(days=3))
    pending = staff.post("/api/v1/projects", {
        "title": "Pending", "researchers": ["new@example.org", "Joining@example.org"]},
        format="json")
    assert pending.status_code == 400
    assert pending.json()["detail"] == detail.replace(other_staff.email, "joining@example.org")
    assert Project.objects.count() == before
    assert list(Invite.objects.values_list("email", flat=True)) == ["joining@example.org"]


# --------------------------------------------------------------------------- members


@pytest.mark.django_db
def test_member_grant_without_mail(world):
    colleague, _pw, _kek = keyed_user()
    owner = login(world, world.researcher)
    url = f"/api/v1/projects/{world.project.public_id}/members"
    added = owner.post(url, {"email": colleague.email, "notify": False}, format="json")
    assert added.status_code == 200 and added.json()["has_key"] is True
    invited = owner.post(url, {"email": "silent@example.org", "notify": False}, format="json")
    assert invited.status_code == 201
    assert _mails_to(colleague.email) == [] and _mails_to("silent@example.org") == []
    assert Invite.objects.filter(email="silent@example.org").exists()
    # Granted again with email: the held invitation goes out.
    again = owner.post(url, {"email": "silent@example.org"}, format="json")
    assert again.status_code == 201
    [message] = _mails_to("silent@example.org")
    assert "/accounts/register/?t=" in message.body


# --------------------------------------------------------------------------- busy


def _upload(project, *, path="a.txt", age=dt.timedelta(minutes=5),
            status=UploadStatus.IN_PROGRESS):
    return Upload.objects.create(
        public_id=f"up-{project.pk}-{path}", project=project, path=path,
        object_key=f"{project.bucket}/{path}", size_original=10, reserved_bytes=100,
        part_size=65564, status=status, created_at=timezone.now() - age)


@pytest.mark.django_db
def test_busy_lists_work_in_flight_by_scope(world, unit_b):
    quiet = project_create(unit=world.unit, by=world.admin, title="Quiet")
    other = make_world(unit_b)
    _upload(world.project, path="one", age=dt.timedelta(minutes=30))
    _upload(world.project, path="two")
    _upload(world.project, path="done", status=UploadStatus.COMPLETED)
    _upload(quiet, path="abandoned", age=dt.timedelta(days=3))  # stale: not in flight
    KeyRotation.objects.create(project=other.project, new_public_key=b"x" * 32)
    purged = project_create(unit=world.unit, by=world.admin, title="Going")
    Project.objects.filter(pk=purged.pk).update(status=ProjectStatus.DELETED)

    staff = login(world, world.staff)
    rows = staff.get("/api/v1/projects/busy")
    assert rows.status_code == 200, rows.content
    by_id = {r["id"]: r for r in rows.json()}
    assert set(by_id) == {world.project.public_id, purged.public_id}
    busy = by_id[world.project.public_id]
    assert busy["uploads"] == 2 and busy["rotation_since"] is None
    assert busy["unit"] == world.unit.display_name and busy["purge_pending"] is False
    assert busy["since"] == busy["uploads_since"]
    assert by_id[purged.public_id]["purge_pending"] is True
    assert by_id[purged.public_id]["uploads"] == 0

    other_staff = login(other, other.staff)
    [rotating] = other_staff.get("/api/v1/projects/busy").json()
    assert rotating["id"] == other.project.public_id
    assert rotating["rotation_since"] and rotating["rotation_files_done"] == 0

    operator, operator_pw, _kek = keyed_user(Role.SUPER_ADMIN)
    world.passwords[operator.username] = operator_pw
    everything = login(world, operator).get("/api/v1/projects/busy").json()
    assert {r["id"] for r in everything} == {world.project.public_id, purged.public_id,
                                             other.project.public_id}

    refused = login(world, world.researcher).get("/api/v1/projects/busy")
    assert refused.status_code == 403
    assert "unit staff and operators" in refused.json()["detail"]


@pytest.mark.django_db
def test_busy_is_empty_when_nothing_is_in_flight(world):
    _upload(world.project, status=UploadStatus.ABORTED)
    assert login(world, world.staff).get("/api/v1/projects/busy").json() == []


@pytest.mark.django_db
def test_busy_is_not_a_project_id(world):
    """The route before projects/<id>: "busy" is never read as a project id."""
    staff = login(world, world.staff)
    assert staff.get("/api/v1/projects/busy").status_code == 200
    assert staff.get(f"/api/v1/projects/{world.project.public_id}").status_code == 200
    assert "-" in world.project.public_id


@pytest.mark.django_db
def test_busy_list_is_one_query(world, django_assert_num_queries):
    from transfers.selectors import projects_busy_for

    for n in range(3):
        project = project_create(unit=world.unit, by=world.admin, title=f"P{n}")
        _upload(project, path=f"f{n}")
    with django_assert_num_queries(1):
        rows = projects_busy_for(world.staff)
    assert len(rows) == 3 and all(r.uploads == 1 for r in rows)
    assert [r.since for r in rows] == sorted(r.since for r in rows)


@pytest.mark.django_db
def test_create_invites_at_most_twenty_new_addresses(world):
    staff = login(world, world.staff)
    many = [f"new{i}@example.org" for i in range(21)]
    refused = staff.post("/api/v1/projects", {"title": "Many", "researchers": many},
                         format="json")
    assert refused.status_code == 400 and "At most 20" in refused.json()["detail"]
    assert not Invite.objects.exists()
