"""Every audit row written in a request says from where (core.client_ip): project lifecycle
changes and member changes over the API, the portal and the admin, and the other
request-driven writes that used to record no address (registration's user.create, key
rotation start, storage locations, a session ended by a code lockout). Rows written by the
scheduler or a Celery task have no client, so no address.
"""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import override_settings
from django.urls import reverse

from accounts.tests.helpers import APIClient, keyed_user, new_password, portal_login
from audit.models import AuditEvent
from projects.models import ProjectStatus
from projects.services import project_expire
from projects.tests.helpers import login, make_world

pytestmark = pytest.mark.django_db

#: A documentation address (TEST-NET-3). Test settings trust 127.0.0.1 and ::1 as proxies
#: only, so a request from this peer is taken at its socket address (the direct path).
IP = "203.0.113.7"
FROM = {"REMOTE_ADDR": IP}


@pytest.fixture
def world(unit_a):
    return make_world(unit_a)


def _ips(action: str, **filters) -> list[str | None]:
    """The ``ip`` of each ``action`` event, oldest first (at least one must exist)."""
    ips = list(AuditEvent.objects.filter(action=action, **filters)
               .order_by("id").values_list("ip", flat=True))
    assert ips, f"no {action} event"
    return ips


# --------------------------------------------------------------------------- API


def test_lifecycle_over_the_api_records_the_client_address(world):
    staff = login(world, world.staff)
    url = f"/api/v1/projects/{world.project.public_id}"
    steps = [("release", {"deadline_days": 5}), ("retract", {}), ("release", {}),
             ("extend", {"days": 3})]
    for step, body in steps:
        response = staff.post(f"{url}/{step}", body, format="json", **FROM)
        assert response.status_code == 200, (step, response.content)
    project_expire(project=world.project)  # the scheduler: no request, no address
    rereleased = staff.post(f"{url}/release", {}, format="json", **FROM)
    assert rereleased.status_code == 200, rereleased.content
    archived = staff.post(f"{url}/archive", {"abort": True}, format="json", **FROM)
    assert archived.json()["status"] == ProjectStatus.ARCHIVED
    assert _ips("project.release") == [IP, IP]
    assert _ips("project.retract") == [IP]
    assert _ips("project.extend") == [IP]
    assert _ips("project.expire") == [None]
    assert _ips("project.rerelease") == [IP]
    assert _ips("project.archive") == [IP]


def test_delete_over_the_api_records_the_client_address(world):
    staff = login(world, world.staff)
    response = staff.post(f"/api/v1/projects/{world.project.public_id}/delete", {},
                          format="json", **FROM)
    assert response.status_code == 200, response.content
    assert _ips("project.delete") == [IP]


def test_behind_the_ingress_the_forwarded_client_is_recorded(world):
    """The address is client_ip's, not the socket peer's: via the trusted proxy
    (127.0.0.1 in test settings) the client is the last X-Forwarded-For hop."""
    staff = login(world, world.staff)
    response = staff.post(f"/api/v1/projects/{world.project.public_id}/release", {},
                          format="json", REMOTE_ADDR="127.0.0.1",
                          HTTP_X_FORWARDED_FOR=f"198.51.100.1, {IP}")
    assert response.status_code == 200, response.content
    assert _ips("project.release") == [IP]


def test_create_and_edit_over_the_api_record_the_client_address(world):
    staff = login(world, world.staff)
    created = staff.post("/api/v1/projects", {"title": "Addressed"}, format="json", **FROM)
    assert created.status_code == 201, created.content
    public_id = created.json()["id"]
    edited = staff.patch(f"/api/v1/projects/{public_id}", {"description": "d"},
                         format="json", **FROM)
    assert edited.status_code == 200, edited.content
    assert _ips("project.create", project_public_id=public_id) == [IP]
    assert _ips("project.update", project_public_id=public_id) == [IP]


def test_member_changes_over_the_api_record_the_client_address(world):
    other, _ = keyed_user()
    staff = login(world, world.staff)
    members = f"/api/v1/projects/{world.project.public_id}/members"
    added = staff.post(members, {"email": other.email}, format="json", **FROM)
    assert added.status_code == 200, added.content
    owner = staff.patch(f"{members}/{other.username}", {"owner": True}, format="json", **FROM)
    assert owner.status_code == 200, owner.content
    revoked = staff.delete(f"{members}/{other.username}", **FROM)
    assert revoked.status_code == 204, revoked.content
    assert _ips("project.member_add", target=other.username) == [IP]
    assert _ips("project.member_owner", target=other.username) == [IP]
    assert _ips("project.member_revoke", target=other.username) == [IP]


def test_key_rotation_start_records_the_client_address(world):
    admin = login(world, world.admin)
    response = admin.post(f"/api/v1/projects/{world.project.public_id}/key-rotation",
                          **FROM)
    assert response.status_code == 202, response.content
    assert _ips("project.key_rotation.start") == [IP]
    assert _ips("project.key_rotation.finish") == [None]  # the Celery task's row


def test_registration_records_the_address_on_the_new_account(world):
    staff = login(world, world.staff)
    invited = staff.post(f"/api/v1/projects/{world.project.public_id}/members",
                         {"email": "newcomer@example.org"}, format="json")
    assert invited.status_code == 201, invited.content
    token = re.search(r"/accounts/register/\?t=(\S+)", mail.outbox[-1].body).group(1)
    registered = APIClient().post("/api/v1/auth/register", {
        "token": token, "username": "newcomer", "name": "New Comer",
        "password": new_password(), "accept_agreement": True}, format="json", **FROM)
    assert registered.status_code == 201, registered.content
    assert _ips("user.create", target="newcomer") == [IP]
    assert _ips("user.register", target="newcomer") == [IP]


@override_settings(DDS_LOCKOUT_FAILURES=3)
def test_a_session_ended_by_a_code_lockout_records_the_client_address(world):
    user, password = world.researcher, world.passwords[world.researcher.username]
    client = APIClient()
    first = client.post("/api/v1/auth/login", {"username": user.username,
                                               "password": password}, format="json", **FROM)
    assert first.status_code == 200, first.content
    pending = first.json()["pending_token"]
    statuses = [client.post("/api/v1/auth/2fa", {"code": "12345678"}, format="json",
                            HTTP_AUTHORIZATION=f"Bearer {pending}", **FROM).status_code
                for _ in range(3)]
    assert statuses == [401, 401, 429]
    ended = AuditEvent.objects.get(action="auth.session_end", target=user.username,
                                   details__reason="locked")
    assert ended.ip == IP


# --------------------------------------------------------------------------- portal


def test_portal_member_changes_record_the_client_address(client, world):
    other, _ = keyed_user()
    portal_login(client, world.staff, world.passwords[world.staff.username])
    pid = world.project.public_id
    client.post(reverse("portal:member-invite", args=[pid]), {"email": other.email}, **FROM)
    client.post(reverse("portal:member-owner", args=[pid, other.username]), {"owner": "1"},
                **FROM)
    client.post(reverse("portal:member-revoke", args=[pid, other.username]), **FROM)
    assert _ips("project.member_add", target=other.username) == [IP]
    assert _ips("project.member_owner", target=other.username) == [IP]
    assert _ips("project.member_revoke", target=other.username) == [IP]


# --------------------------------------------------------------------------- admin

CHANGELIST = "admin:projects_project_changelist"
INLINES = {"memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0",
           "status_events-TOTAL_FORMS": "0", "status_events-INITIAL_FORMS": "0"}


def _act(client, action, project, **extra):
    response = client.post(reverse(CHANGELIST), {"action": action,
                                                 "_selected_action": [project.pk], **extra},
                           **FROM)
    assert response.status_code == 302, response.content.decode()[:2000]


def test_admin_lifecycle_actions_record_the_client_address(client, world):
    portal_login(client, world.staff, world.passwords[world.staff.username])
    _act(client, "release_projects", world.project)
    _act(client, "retract_projects", world.project)
    _act(client, "archive_projects", world.project, confirm="yes")
    world.project.refresh_from_db()
    assert world.project.status == ProjectStatus.ARCHIVED
    assert _ips("project.release") == [IP]
    assert _ips("project.retract") == [IP]
    assert _ips("project.archive") == [IP]


def test_admin_add_and_edit_record_the_client_address(client, world):
    portal_login(client, world.staff, world.passwords[world.staff.username])
    added = client.post(reverse("admin:projects_project_add"),
                        {"title": "From the admin", "description": "", "pi": "PI",
                         **INLINES}, **FROM)
    assert added.status_code == 302, added.content.decode()[:2000]
    new = AuditEvent.objects.get(action="project.create", project__title="From the admin")
    assert new.ip == IP
    url = reverse("admin:projects_project_change", args=[world.project.pk])
    edited = client.post(url, {"title": "Renamed", "description": "d", "pi": "Dr P",
                               **INLINES}, **FROM)
    assert edited.status_code == 302, edited.content.decode()[:2000]
    assert _ips("project.update", project=world.project) == [IP]


def test_admin_storage_location_save_records_the_client_address(client, world, superadmin):
    portal_login(client, superadmin)
    response = client.post(reverse("admin:transfers_storagelocation_add"), {
        "unit": world.unit.pk, "name": "s3", "endpoint": "https://s3.example.se",
        "region": "se", "bucket_prefix": "", "is_active": "on",
        "access_key": "AKIAEXAMPLE", "secret_key": "example-secret"}, **FROM)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert _ips("storage_location.save") == [IP]
