"""GET /api/v1/projects?status=: one of the statuses' codes, or a 400 naming the field (an
unknown status used to give an empty list, which looks like "no such projects")."""

import pytest

from projects.services import project_release
from projects.tests.helpers import login, make_world


@pytest.mark.django_db
def test_the_list_filters_by_a_known_status_and_refuses_others(unit_a):
    world = make_world(unit_a)
    staff = login(world, world.staff)
    listed = staff.get("/api/v1/projects", {"status": "in_progress"})
    assert listed.status_code == 200
    assert [r["id"] for r in listed.json()] == [world.project.public_id]
    assert staff.get("/api/v1/projects", {"status": "available"}).json() == []
    project_release(project=world.project, by=world.staff, deadline_days=5)
    assert [r["id"] for r in staff.get("/api/v1/projects",
                                       {"status": "available"}).json()] == [
        world.project.public_id]

    for bogus in ("bogus", "In Progress"):  # labels are the client's to translate
        refused = staff.get("/api/v1/projects", {"status": bogus})
        assert refused.status_code == 400, bogus
        body = refused.json()
        assert body["code"] == "invalid" and "status" in body["errors"]
        assert "not a valid choice" in body["detail"]
