import threading

import pytest
from django.db import connection

from accounts.models import Role
from accounts.tests.factories import UnitFactory, UserFactory
from projects.errors import NeedsForce, ProjectRuleError
from projects.models import Project, ProjectStatus
from projects.services import project_create


@pytest.mark.django_db
def test_public_ids_count_per_unit(unit_a, unit_b, admin_a, admin_b):
    UserFactory(role=Role.UNIT_ADMIN, unit=unit_a)
    UserFactory(role=Role.UNIT_ADMIN, unit=unit_b)
    p1 = project_create(unit=unit_a, by=admin_a, title="one", force=True)
    p2 = project_create(unit=unit_a, by=admin_a, title="two", force=True)
    q1 = project_create(unit=unit_b, by=admin_b, title="other", force=True)
    assert (p1.public_id, p2.public_id, q1.public_id) == ("unita-00001", "unita-00002",
                                                          "unitb-00001")
    assert p1.bucket == "dds-unita-00001"
    assert p1.status == ProjectStatus.IN_PROGRESS
    assert list(p1.status_events.values_list("status", flat=True)) == ["in_progress"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_creation_gets_distinct_ids():
    unit = UnitFactory(internal_ref="race")
    staff = UserFactory(role=Role.UNIT_ADMIN, unit=unit)
    UserFactory.create_batch(2, role=Role.UNIT_ADMIN, unit=unit)
    errors = []
    barrier = threading.Barrier(4)

    def create(i):
        try:
            barrier.wait()
            project_create(unit=unit, by=staff, title=f"t{i}")  # three admins: no force
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    ids = sorted(Project.objects.filter(unit=unit).values_list("public_id", flat=True))
    assert ids == [f"race-{i:05d}" for i in range(1, 5)]


@pytest.mark.django_db
def test_creation_needs_two_unit_admins_and_warns_below_three(unit_a, admin_a):
    with pytest.raises(ProjectRuleError, match="at least 2 are required"):
        project_create(unit=unit_a, by=admin_a, title="x", force=True)
    UserFactory(role=Role.UNIT_ADMIN, unit=unit_a)
    with pytest.raises(NeedsForce, match="3 are recommended"):
        project_create(unit=unit_a, by=admin_a, title="x")
    assert project_create(unit=unit_a, by=admin_a, title="x", force=True).pk
    assert Project.objects.count() == 1


@pytest.mark.django_db
def test_researchers_cannot_create_projects(unit_a, admin_a, researcher):
    UserFactory.create_batch(2, role=Role.UNIT_ADMIN, unit=unit_a)
    with pytest.raises(ProjectRuleError, match="only the unit's staff"):
        project_create(unit=unit_a, by=researcher, title="x")
