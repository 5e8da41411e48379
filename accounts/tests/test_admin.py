"""The admin shows each unit's staff only their own unit's users, invites and projects."""

import pytest
from django.urls import reverse

from accounts.models import Role
from accounts.tests.factories import InviteFactory, UserFactory
from accounts.tests.helpers import portal_login
from projects.models import Project
from projects.tests.factories import MembershipFactory
from transfers.models import StorageLocation
from transfers.services import storage_location_save


@pytest.fixture
def world(unit_a, unit_b, admin_a, admin_b, project_a, project_b):
    researcher_a = UserFactory(username="res-a")
    MembershipFactory(project=project_a, user=researcher_a)
    researcher_b = UserFactory(username="res-b")
    MembershipFactory(project=project_b, user=researcher_b)
    return {
        "invite_a": InviteFactory(email="inv-a@example.org", unit=unit_a,
                                  role=Role.UNIT_PERSONNEL),
        "invite_b": InviteFactory(email="inv-b@example.org", project=project_b,
                                  created_by=admin_b),
        "researcher_a": researcher_a,
        "researcher_b": researcher_b,
    }


def _change_url(obj):
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def _changelist(model):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


@pytest.mark.django_db
def test_unit_admin_changelists_show_only_their_unit(client, admin_a, admin_b, world,
                                                      project_a, project_b):
    portal_login(client, admin_a)
    projects = client.get(_changelist(Project)).content.decode()
    assert project_a.public_id in projects and project_b.public_id not in projects
    users = client.get(_changelist(admin_a.__class__)).content.decode()
    assert "res-a" in users and admin_a.username in users
    assert "res-b" not in users and admin_b.username not in users
    invites = client.get(_changelist(world["invite_a"].__class__)).content.decode()
    assert "inv-a@example.org" in invites and "inv-b@example.org" not in invites


@pytest.mark.django_db
def test_unit_admin_sees_an_invite_that_carries_one_of_their_projects(client, admin_a,
                                                                       world, project_a):
    """As GET /invites: unit B's invite to which a grant added unit A's project (its key
    waits with the invite) is unit A's to see, and unit B's other invites are not."""
    from keys.models import InviteProjectKey

    shared = world["invite_b"]
    InviteProjectKey.objects.create(invite=shared, project=project_a, key_encrypted=b"x")
    portal_login(client, admin_a)
    invites = client.get(_changelist(shared.__class__)).content.decode()
    assert "inv-b@example.org" in invites and invites.count("inv-b@example.org") == 1
    page = client.get(_change_url(shared))
    assert page.status_code == 200
    # ...but not unit B's project, nor which of unit B's staff made the invite
    for shown in (invites, page.content.decode()):
        assert shared.project.public_id not in shown
        assert shared.created_by.username not in shown


@pytest.mark.django_db
def test_the_inviting_unit_still_sees_its_invites_project_and_inviter(client, admin_b,
                                                                      world):
    invite = world["invite_b"]
    portal_login(client, admin_b)
    assert invite.project.public_id in client.get(_changelist(invite.__class__)).content.decode()
    page = client.get(_change_url(invite)).content.decode()
    assert invite.project.public_id in page and admin_b.username in page


@pytest.mark.django_db
def test_unit_admin_gets_404_for_other_units_objects(client, admin_a, admin_b, world,
                                                     project_b):
    portal_login(client, admin_a)
    for obj in (project_b, admin_b, world["researcher_b"], world["invite_b"]):
        assert client.get(_change_url(obj)).status_code == 404, obj
        # Posting a change is refused the same way and changes nothing.
        assert client.post(_change_url(obj), {"title": "hijack"}).status_code == 404
    project_b.refresh_from_db()
    assert project_b.title != "hijack"


@pytest.mark.django_db
def test_super_admin_sees_every_unit(client, superadmin, world, project_a, project_b):
    portal_login(client, superadmin)
    page = client.get(_changelist(Project)).content.decode()
    assert project_a.public_id in page and project_b.public_id in page
    assert client.get(_change_url(project_b)).status_code == 200


@pytest.mark.django_db
def test_researcher_cannot_enter_the_admin(client, world):
    portal_login(client, world["researcher_a"])
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302 and "login" in response["Location"]


@pytest.mark.django_db
def test_unit_admin_edits_own_project_title(client, admin_a, project_a):
    portal_login(client, admin_a)
    response = client.post(_change_url(project_a), {
        "title": "Renamed", "description": "d", "pi": "Dr P",
        "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0",
        "status_events-TOTAL_FORMS": "0", "status_events-INITIAL_FORMS": "0",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    project_a.refresh_from_db()
    assert project_a.title == "Renamed"


@pytest.mark.django_db
def test_unit_staff_create_a_project_through_the_service(client, personnel_a, unit_a,
                                                         admin_a):
    UserFactory(role=Role.UNIT_ADMIN, unit=unit_a)
    portal_login(client, personnel_a)
    form = {"title": "New delivery", "description": "", "pi": "PI",
            "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0",
            "status_events-TOTAL_FORMS": "0", "status_events-INITIAL_FORMS": "0"}
    # Two Unit Admins: allowed only when confirmed.
    response = client.post(reverse("admin:projects_project_add"), form)
    assert response.status_code == 200
    assert "3 are recommended" in response.content.decode()
    assert not Project.objects.exists()
    response = client.post(reverse("admin:projects_project_add"), {**form, "force": "on"})
    assert response.status_code == 302, response.content.decode()[:2000]
    project = Project.objects.get(title="New delivery")
    assert project.unit == unit_a
    assert project.public_id == f"{unit_a.internal_ref}-00001"
    assert project.status_events.count() == 1


@pytest.mark.django_db
def test_keys_files_and_audit_are_read_only(client, admin_a):
    portal_login(client, admin_a)
    for name in ("keys_projectuserkey", "transfers_file", "audit_auditevent",
                 "transfers_fileversion"):
        assert client.get(reverse(f"admin:{name}_changelist")).status_code == 200
        assert client.get(reverse(f"admin:{name}_add")).status_code == 403


@pytest.mark.django_db
def test_storage_credentials_are_never_displayed(client, superadmin, unit_a, settings):
    settings.DDS_ALLOWED_STORAGE_REGIONS = ["se"]
    loc = storage_location_save(
        location=StorageLocation(unit=unit_a, name="s3", region="se",
                                 endpoint="https://s3.example.se"),
        by=None, access_key="AKIAVISIBLE", secret_key="hidden-secret-value")
    portal_login(client, superadmin)
    page = client.get(_change_url(loc)).content.decode()
    assert "hidden-secret-value" not in page and "AKIAVISIBLE" not in page
    # Saving without re-entering the credentials keeps them.
    response = client.post(_change_url(loc), {
        "unit": unit_a.pk, "name": "s3 renamed", "endpoint": "https://s3.example.se",
        "region": "se", "bucket_prefix": "", "is_active": "on",
        "access_key": "", "secret_key": ""})
    assert response.status_code == 302
    loc.refresh_from_db()
    assert loc.name == "s3 renamed" and loc.has_credentials


@pytest.mark.django_db
def test_admin_refuses_a_region_outside_the_allowed_list(client, superadmin, unit_a,
                                                         settings):
    settings.DDS_ALLOWED_STORAGE_REGIONS = ["se"]
    portal_login(client, superadmin)
    response = client.post(reverse("admin:transfers_storagelocation_add"), {
        "unit": unit_a.pk, "name": "abroad", "endpoint": "", "region": "us-east-1",
        "bucket_prefix": "", "is_active": "on", "access_key": "", "secret_key": ""})
    assert response.status_code == 200
    assert "is not allowed" in response.content.decode()
    assert not StorageLocation.objects.exists()


@pytest.mark.django_db
def test_unit_admin_cannot_edit_a_researchers_email_or_activation(client, admin_a, world):
    portal_login(client, admin_a)
    researcher = world["researcher_a"]
    page = client.get(_change_url(researcher))
    assert page.status_code == 200  # visible, as a member of the unit's project
    response = client.post(_change_url(researcher), {
        "name": "x", "email": "attacker@example.org", "is_active": ""})
    assert response.status_code == 403
    researcher.refresh_from_db()
    assert researcher.email != "attacker@example.org" and researcher.is_active


@pytest.mark.django_db
def test_unit_admin_edits_own_staffs_name_but_not_email(client, admin_a, personnel_a):
    portal_login(client, admin_a)
    response = client.post(_change_url(personnel_a), {
        "name": "Renamed Person", "email": "attacker@example.org"})
    assert response.status_code == 302
    personnel_a.refresh_from_db()
    assert personnel_a.name == "Renamed Person"
    assert personnel_a.email != "attacker@example.org"
    from audit.models import AuditEvent

    assert AuditEvent.objects.filter(action="user.admin_edit",
                                     target=personnel_a.username).exists()


@pytest.mark.django_db
def test_ending_the_session_elsewhere_ends_admin_access(client, admin_a):
    from accounts.services import auth_sessions_end

    portal_login(client, admin_a)
    assert client.get("/admin/").status_code == 200
    auth_sessions_end(user=admin_a, reason="logout everywhere")
    response = client.get("/admin/")
    assert response.status_code == 302 and "login/" in response["Location"]


@pytest.mark.django_db
def test_role_and_unit_never_change_in_the_admin_not_even_by_the_operator(client, superadmin,
                                                                          staffed):
    """No service changes a role in place (the two-admin minimum, the project keys a role
    may hold, the sessions under the old role): the admin shows role and unit read-only
    and says how to change them."""
    from keys.models import ProjectUserKey

    admin, personnel = staffed["admin"], staffed["personnel"]
    keys_before = ProjectUserKey.objects.filter(user__in=[admin, personnel]).count()
    assert keys_before >= 2
    portal_login(client, superadmin)
    page = client.get(_change_url(admin)).content.decode()
    assert 'name="role"' not in page and 'name="unit"' not in page
    assert "invite the address anew" in page
    for user, role in ((admin, Role.RESEARCHER), (personnel, Role.SUPER_ADMIN)):
        response = client.post(_change_url(user), {
            "name": "Edited name", "email": user.email, "role": role, "unit": ""})
        assert response.status_code == 302, response.content.decode()[:2000]
        user.refresh_from_db()
        assert user.name == "Edited name"  # the rest of the form is saved
        assert user.role != role and user.unit == staffed["unit"]
    assert ProjectUserKey.objects.filter(user__in=[admin, personnel]).count() == keys_before
