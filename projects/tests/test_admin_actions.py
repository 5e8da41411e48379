import pytest
from django.urls import reverse

from accounts.tests.helpers import portal_login
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
    portal_login(client, world.staff, world.passwords[world.staff.username])
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
    portal_login(client, world.admin, world.passwords[world.admin.username])
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
    portal_login(client, superadmin)
    page = client.get(reverse(CHANGELIST)).content.decode()
    assert "release_projects" not in page


@pytest.mark.django_db
def test_admin_edit_goes_through_the_service(client, world):
    from audit.models import AuditEvent
    from projects.services import project_archive

    portal_login(client, world.staff, world.passwords[world.staff.username])
    url = reverse("admin:projects_project_change", args=[world.project.pk])
    form = {"title": "Renamed", "description": "d", "pi": "Dr P",
            "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0",
            "status_events-TOTAL_FORMS": "0", "status_events-INITIAL_FORMS": "0"}
    assert client.post(url, form).status_code == 302
    assert AuditEvent.objects.filter(action="project.update").exists()
    project_archive(project=world.project, by=world.staff, abort=True)
    page = client.post(url, {**form, "title": "Restored"}, follow=True)
    world.project.refresh_from_db()
    assert "aborted" in world.project.title  # an aborted project's scrubbed title stays
    assert "cannot edit" in page.content.decode()


@pytest.mark.django_db
def test_super_admin_cannot_edit_projects(client, world, superadmin):
    portal_login(client, superadmin)
    url = reverse("admin:projects_project_change", args=[world.project.pk])
    assert client.post(url, {"title": "x"}).status_code == 403
