"""The project API over real tokens (password + emailed code)."""

import pytest
from django.core import mail

from accounts.tests.helpers import keyed_user
from projects.models import ProjectStatus
from projects.services import project_release
from projects.tests.helpers import login, make_world


@pytest.fixture
def world(unit_a):
    return make_world(unit_a)


@pytest.mark.django_db
def test_list_shows_status_size_and_role(world, unit_b):
    other = make_world(unit_b)
    staff = login(world, world.staff)
    rows = staff.get("/api/v1/projects").json()
    assert [r["id"] for r in rows] == [world.project.public_id]
    assert rows[0]["role"] == "Unit Personnel" and rows[0]["size_bytes"] == 0
    assert rows[0]["status"] == "in_progress"
    researcher = login(world, world.researcher)
    [row] = researcher.get("/api/v1/projects").json()
    assert row["role"] == "Project Owner"
    assert other.project.public_id not in str(rows)


@pytest.mark.django_db
def test_create_validates_and_reports_rules(world):
    staff = login(world, world.staff)
    bad = staff.post("/api/v1/projects", {"title": ""}, format="json")
    assert bad.status_code == 400 and "title" in bad.json()["errors"]
    garbage = staff.post("/api/v1/projects", "not json", content_type="application/json")
    assert garbage.status_code == 400
    created = staff.post("/api/v1/projects", {"title": "New", "pi": "Dr P",
                                              "researchers": [world.researcher.email]},
                         format="json")
    assert created.status_code == 201, created.content
    assert created.json()["id"].startswith(world.unit.internal_ref + "-")
    researcher = login(world, world.researcher)
    assert researcher.post("/api/v1/projects", {"title": "x"},
                           format="json").status_code == 403


@pytest.mark.django_db
def test_transitions_over_the_api(world):
    staff = login(world, world.staff)
    url = f"/api/v1/projects/{world.project.public_id}"
    too_long = staff.post(f"{url}/release", {"deadline_days": 91}, format="json")
    assert too_long.status_code == 400
    released = staff.post(f"{url}/release", {"deadline_days": 5}, format="json")
    assert released.status_code == 200 and released.json()["status"] == "available"
    again = staff.post(f"{url}/release", {}, format="json")
    assert again.status_code == 409
    assert again.json()["detail"] == "cannot release: project is Available"
    history = staff.get(f"{url}/status").json()
    assert [h["status"] for h in history["history"]] == ["in_progress", "available"]
    assert history["history"][1]["by"] == world.staff.username
    assert staff.post(f"{url}/delete", {}, format="json").status_code == 409
    assert staff.post(f"{url}/archive", {"abort": True}, format="json").json()["status"] \
        == "archived"


@pytest.mark.django_db
def test_researchers_cannot_change_status_and_others_get_404(world, unit_b):
    url = f"/api/v1/projects/{world.project.public_id}"
    researcher = login(world, world.researcher)
    assert researcher.post(f"{url}/release", {}, format="json").status_code == 403
    other = make_world(unit_b)
    outsider = login(other, other.staff)
    assert outsider.get(url).status_code == 404
    assert outsider.post(f"{url}/release", {}, format="json").status_code == 404
    assert outsider.get("/api/v1/projects/nope-00001").status_code == 404


@pytest.mark.django_db
def test_owner_edits_description_only(world):
    url = f"/api/v1/projects/{world.project.public_id}"
    owner = login(world, world.researcher)
    assert owner.patch(url, {"description": "new"}, format="json").json()["description"] == "new"
    refused = owner.patch(url, {"title": "hijack"}, format="json")
    assert refused.status_code == 400 and "only change the description" in refused.json()["detail"]


@pytest.mark.django_db
def test_members_add_invite_owner_and_revoke(world):
    url = f"/api/v1/projects/{world.project.public_id}/members"
    owner = login(world, world.researcher)
    colleague, _ = keyed_user()
    added = owner.post(url, {"email": colleague.email}, format="json")
    assert added.status_code == 200 and added.json()["has_key"] is True
    invited = owner.post(url, {"email": "newcomer@example.org", "owner": True}, format="json")
    assert invited.status_code == 201 and invited.json()["owner"] is True
    assert any("newcomer@example.org" in m.to for m in mail.outbox)
    listing = owner.get(url).json()
    assert {m["username"] for m in listing["members"]} == {world.researcher.username,
                                                           colleague.username}
    assert [i["email"] for i in listing["invites"]] == ["newcomer@example.org"]

    promoted = owner.patch(f"{url}/{colleague.username}", {"owner": True}, format="json")
    assert promoted.json()["owner"] is True
    assert owner.delete(f"{url}/{colleague.username}").status_code == 204
    assert owner.delete(f"{url}/{colleague.username}").status_code == 400
    assert colleague.project_keys.count() == 0


@pytest.mark.django_db
def test_plain_researcher_cannot_manage_members(unit_a):
    world = make_world(unit_a, researcher_is_owner=False)
    member = login(world, world.researcher)
    url = f"/api/v1/projects/{world.project.public_id}/members"
    assert member.get(url).status_code == 200
    assert member.post(url, {"email": "x@example.org"}, format="json").status_code == 403


@pytest.mark.django_db
def test_members_refused_on_a_final_project(world):
    project_release(project=world.project, by=world.staff)
    staff = login(world, world.staff)
    url = f"/api/v1/projects/{world.project.public_id}"
    staff.post(f"{url}/archive", {}, format="json")
    refused = staff.post(f"{url}/members", {"email": "late@example.org"}, format="json")
    assert refused.status_code == 409 and "archived" in refused.json()["detail"].lower()
    world.project.refresh_from_db()
    assert world.project.status == ProjectStatus.ARCHIVED


@pytest.mark.django_db
def test_access_fix_after_a_password_reset(world):
    from keys.services import (
        KeyAccessError,
        project_private_key,
        user_kek_derive,
        user_keys_reset,
    )

    user_keys_reset(user=world.researcher, new_password="Reset-Pass-123")
    world.researcher.refresh_from_db()
    kek = user_kek_derive(user=world.researcher, password="Reset-Pass-123")
    with pytest.raises(KeyAccessError):
        project_private_key(project=world.project, user=world.researcher, kek=kek)
    staff = login(world, world.staff)
    url = f"/api/v1/projects/{world.project.public_id}/access-fix"
    fixed = staff.post(url, {"username": world.researcher.username}, format="json")
    assert fixed.status_code == 200 and fixed.json() == {"fixed": [world.project.public_id]}
    assert project_private_key(project=world.project, user=world.researcher, kek=kek)
    unknown = staff.post(url, {"username": "ghost"}, format="json")
    assert unknown.status_code == 404


@pytest.mark.django_db
def test_a_plain_member_cannot_fix_access_for_others(unit_a):
    from keys.services import user_keys_reset
    from projects.services import access_fix_grants as project_access_fix

    world = make_world(unit_a, researcher_is_owner=False)
    colleague, _ = keyed_user()
    world.project.memberships.create(user=colleague)
    from keys.services import project_access_grant

    project_access_grant(project=world.project, grantee=colleague, granter=world.staff,
                         granter_kek=world.staff_kek)
    user_keys_reset(user=colleague, new_password="Reset-Pass-123")
    colleague.refresh_from_db()
    # The researcher holds a key, but does not manage the project's people.
    assert project_access_fix(user=colleague, granter=world.researcher,
                              granter_kek=world.researcher_kek) == []


@pytest.mark.django_db
def test_project_list_query_count_does_not_grow_with_projects(world):
    from projects.services import project_create

    researcher = login(world, world.researcher)

    def count():
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as ctx:
            assert researcher.get("/api/v1/projects").status_code == 200
        return len(ctx.captured_queries)

    count()  # the first request of a login does one-off work (e.g. session bookkeeping)
    before = count()
    for i in range(5):
        project_create(unit=world.unit, by=world.admin, title=f"more {i}",
                       researchers=[world.researcher])
    assert count() == before
    assert len(researcher.get("/api/v1/projects").json()) == 6
