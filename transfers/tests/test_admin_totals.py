"""Storage totals in the admin lists, in a constant number of queries."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from accounts.tests.factories import UserFactory
from accounts.tests.helpers import portal_login
from projects.tests.factories import ProjectFactory
from transfers.models import FileVersion, Usage


@pytest.mark.django_db
def test_project_and_unit_lists_show_stored_bytes_and_usage(client, unit_a, admin_a,
                                                            django_assert_max_num_queries):
    projects = ProjectFactory.create_batch(3, unit=unit_a)
    for p in projects:
        FileVersion.objects.create(project=p, object_key=f"k{p.pk}", size_stored=2 * 1024**3)
        FileVersion.objects.create(project=p, object_key=f"d{p.pk}", size_stored=7,
                                   deleted_at=timezone.now())
    start = timezone.now() - dt.timedelta(days=31)
    Usage.objects.create(project=projects[0], period_start=start,
                         period_end=start + dt.timedelta(days=30), byte_hours=36 * 10**11)
    portal_login(client, admin_a)
    with django_assert_max_num_queries(12):
        page = client.get(reverse("admin:projects_project_changelist")).content.decode()
    assert page.count("2.0\xa0GB") == 3  # deleted versions are not counted
    assert "3,600.0" in page
    unit_page = client.get(reverse("admin:accounts_unit_changelist")).content.decode()
    assert "6.0\xa0GB" in unit_page


@pytest.mark.django_db
def test_query_count_does_not_grow_with_projects(client, unit_a, django_assert_max_num_queries):
    admin = UserFactory(role=Role.UNIT_ADMIN, unit=unit_a)
    ProjectFactory.create_batch(30, unit=unit_a)
    portal_login(client, admin)
    with django_assert_max_num_queries(12):
        assert client.get(reverse("admin:projects_project_changelist")).status_code == 200
