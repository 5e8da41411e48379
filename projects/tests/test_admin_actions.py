import pytest
from django.urls import reverse

from projects.models import ProjectStatus
from projects.tests.helpers import make_world

CHANGELIST = "admin:projects_project_changelist"


@pytest.fixture
def world(unit_a):
    return make_world(unit_a)


def _act(client, action, project, **extra):
    return client.post(reverse(CHANGELIST), {"action": action, "_selected_action": [project.pk],
                                             **extra}, follow=True)


@pytest.mark.django_db
def test_release_and_retract_actions_call_the_services(client, world):
    client.force_login(world.staff)
    page = _act(client, "release_projects", world.project)
    assert f"Released: {world.project.public_id}" in page.content.decode()
    world.project.refresh_from_db()
    assert world.project.status == ProjectStatus.AVAILABLE
    page = _act(client, "release_projects", world.project)
    assert "cannot release: project is Available" in page.content.decode()
    _act(client, "retract_projects", world.project)
    world.project.refresh_from_db()
    assert world.project.status == ProjectStatus.IN_PROGRESS


@pytest.mark.django_db
def test_archive_asks_for_confirmation_first(client, world):
    client.force_login(world.admin)
    page = _act(client, "archive_projects", world.project)
    assert "Archive projects?" in page.content.decode()
    world.project.refresh_from_db()
    assert world.project.status == ProjectStatus.IN_PROGRESS
    _act(client, "archive_projects", world.project, confirm="yes", abort="on")
    world.project.refresh_from_db()
    assert world.project.status == ProjectStatus.ARCHIVED
    assert world.project.status_events.last().is_aborted


@pytest.mark.django_db
def test_super_admin_has_no_lifecycle_actions(client, world, superadmin):
    client.force_login(superadmin)
    page = client.get(reverse(CHANGELIST)).content.decode()
    assert "release_projects" not in page
