"""Invites and member additions without email (``notify=False``), and how a held invite's
link reaches the invitee later: inviting the address again with email on."""

import re

import pytest
from django.core import mail

from accounts.models import Invite, User
from accounts.services.invites import invite_is_held
from accounts.tests.helpers import APIClient, new_password
from keys.models import InviteProjectKey
from projects.models import ProjectMembership
from projects.services import project_create, project_member_add
from projects.tests.helpers import make_world


@pytest.fixture
def world(unit_a):
    return make_world(unit_a)


def _mails_to(email):
    return [m for m in mail.outbox if email in m.to]


def _register(token):
    return APIClient().post("/api/v1/auth/register", {
        "token": token, "username": "newbie", "name": "New Bie",
        "password": new_password(), "accept_agreement": True}, format="json")


@pytest.mark.django_db
def test_no_mail_invite_is_held_and_resent_with_its_grants(world,
                                                           django_capture_on_commit_callbacks):
    other = project_create(unit=world.unit, by=world.admin, title="Second")
    with django_capture_on_commit_callbacks(execute=True):
        project_member_add(project=world.project, by=world.admin, kek=world.admin_kek,
                           email="newbie@example.org", notify=False)
    invite = Invite.objects.get(email="newbie@example.org")
    assert invite_is_held(invite=invite)
    assert InviteProjectKey.objects.filter(invite=invite, project=world.project).exists()
    assert _mails_to("newbie@example.org") == []

    # Inviting again, to another project, with email: the invitation (with its link)
    # goes out now, and the first project's grant is kept.
    with django_capture_on_commit_callbacks(execute=True):
        project_member_add(project=other, by=world.admin, kek=world.admin_kek,
                           email="newbie@example.org")
    [message] = _mails_to("newbie@example.org")
    token = re.search(r"/accounts/register/\?t=(\S+)", message.body).group(1)
    assert Invite.objects.get().pk == invite.pk
    registered = _register(token)
    assert registered.status_code == 201, registered.content
    assert sorted(registered.json()["projects"]) == sorted([world.project.public_id,
                                                            other.public_id])
    user = User.objects.get(username="newbie")
    assert user.project_keys.count() == 2


@pytest.mark.django_db
def test_resending_a_held_invite_to_the_same_project_sends_a_link(
        world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        project_member_add(project=world.project, by=world.admin, kek=world.admin_kek,
                           email="newbie@example.org", notify=False)
        project_member_add(project=world.project, by=world.admin, kek=world.admin_kek,
                           email="newbie@example.org", owner=True)
    [message] = _mails_to("newbie@example.org")
    token = re.search(r"/accounts/register/\?t=(\S+)", message.body).group(1)
    assert not invite_is_held(invite=Invite.objects.get())  # a fresh, random link
    assert _register(token).status_code == 201
    membership = ProjectMembership.objects.get(user__username="newbie")
    assert membership.project == world.project and membership.is_owner


@pytest.mark.django_db
def test_no_mail_re_invite_keeps_the_link_already_sent(world,
                                                       django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        project_member_add(project=world.project, by=world.admin, kek=world.admin_kek,
                           email="newbie@example.org")
    [message] = _mails_to("newbie@example.org")
    token = re.search(r"/accounts/register/\?t=(\S+)", message.body).group(1)
    with django_capture_on_commit_callbacks(execute=True):
        project_member_add(project=world.project, by=world.admin, kek=world.admin_kek,
                           email="newbie@example.org", owner=True, notify=False)
    assert len(_mails_to("newbie@example.org")) == 1
    assert _register(token).status_code == 201  # the emailed link still works
    assert ProjectMembership.objects.get(user__username="newbie").is_owner


@pytest.mark.django_db
def test_existing_researcher_added_without_mail(world, django_capture_on_commit_callbacks):
    from keys.tests.helpers import keyed_user

    colleague, _pw, _kek = keyed_user()
    with django_capture_on_commit_callbacks(execute=True):
        project_member_add(project=world.project, by=world.admin, kek=world.admin_kek,
                           email=colleague.email, notify=False)
    assert ProjectMembership.objects.filter(project=world.project, user=colleague).exists()
    assert colleague.project_keys.filter(project=world.project).exists()
    assert _mails_to(colleague.email) == []
    with django_capture_on_commit_callbacks(execute=True):
        project_member_add(project=world.project, by=world.admin, kek=world.admin_kek,
                           email=colleague.email)
    assert len(_mails_to(colleague.email)) == 1


@pytest.mark.django_db
def test_staff_invite_without_mail_is_sent_when_invited_again(
        world, django_capture_on_commit_callbacks):
    """accounts' own invites (``dds user add``): held, then re-sent with a fresh link."""
    from accounts.models import Role
    from accounts.services.invites import invite_create

    with django_capture_on_commit_callbacks(execute=True):
        invite_create(email="tech@example.org", role=Role.UNIT_PERSONNEL, by=world.admin,
                      notify=False)
    held = Invite.objects.get(email="tech@example.org")
    assert invite_is_held(invite=held) and _mails_to("tech@example.org") == []
    with django_capture_on_commit_callbacks(execute=True):
        invite_create(email="tech@example.org", role=Role.UNIT_PERSONNEL, by=world.admin)
    [message] = _mails_to("tech@example.org")
    assert "/accounts/register/?t=" in message.body
    assert not invite_is_held(invite=Invite.objects.get(email="tech@example.org"))


@pytest.mark.django_db
def test_another_unit_cannot_send_out_an_invitation_held_by_the_first(
        world, unit_b, django_capture_on_commit_callbacks):
    # Unit A holds an invitation back (it tells the person itself, later); unit B grants
    # the same address access with email on. The link would open A's grant too, so B's
    # grant waits with the invitation and nothing is emailed.
    with django_capture_on_commit_callbacks(execute=True):
        project_member_add(project=world.project, by=world.admin, kek=world.admin_kek,
                           email="shared@example.org", notify=False)
    b = make_world(unit_b)
    with django_capture_on_commit_callbacks(execute=True):
        project_member_add(project=b.project, by=b.admin, kek=b.admin_kek,
                           email="shared@example.org")
    assert _mails_to("shared@example.org") == []
    invite = Invite.objects.get(email="shared@example.org")
    assert invite_is_held(invite=invite)
    assert set(invite.project_keys.values_list("project__unit", flat=True)) == {
        world.unit.pk, unit_b.pk}
    # Unit A, which holds it, sends it when it is ready: the one link opens both grants.
    with django_capture_on_commit_callbacks(execute=True):
        project_member_add(project=world.project, by=world.admin, kek=world.admin_kek,
                           email="shared@example.org")
    assert len(_mails_to("shared@example.org")) == 1
