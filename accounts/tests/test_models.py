import pytest
from django.db import IntegrityError, transaction

from accounts.models import Invite, Role, User
from accounts.tests.factories import InviteFactory, UserFactory


@pytest.mark.django_db
def test_email_is_unique_case_insensitively():
    UserFactory(username="alice", email="Alice@Example.org")
    with pytest.raises(IntegrityError), transaction.atomic():
        UserFactory(username="alice2", email="alice@example.org")


@pytest.mark.django_db
def test_unit_role_requires_a_unit():
    with pytest.raises(IntegrityError), transaction.atomic():
        UserFactory(role=Role.UNIT_PERSONNEL, unit=None)


@pytest.mark.django_db
def test_researcher_cannot_belong_to_a_unit(unit_a):
    with pytest.raises(IntegrityError), transaction.atomic():
        UserFactory(role=Role.RESEARCHER, unit=unit_a)


@pytest.mark.django_db
def test_one_invite_per_email():
    InviteFactory(email="bob@example.org")
    with pytest.raises(IntegrityError), transaction.atomic():
        InviteFactory(email="BOB@example.org")
    assert Invite.objects.count() == 1


@pytest.mark.django_db
def test_roles_decide_admin_access(unit_a):
    assert UserFactory(role=Role.SUPER_ADMIN).is_superuser
    staff = UserFactory(role=Role.UNIT_PERSONNEL, unit=unit_a)
    assert staff.is_staff and not staff.is_superuser
    researcher = UserFactory(role=Role.RESEARCHER)
    assert not researcher.is_staff
    assert not researcher.has_module_perms("projects")


@pytest.mark.django_db
def test_username_is_unique():
    UserFactory(username="carol")
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(username="carol", email="other@example.org", name="C")
