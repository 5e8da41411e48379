"""Shared pytest fixtures: a unit with staff in two units, and a project in each."""

import pytest

from accounts.models import Role
from accounts.tests.factories import UnitFactory, UserFactory
from projects.tests.factories import ProjectFactory


@pytest.fixture
def unit_a(db):
    return UnitFactory(internal_ref="unita", name="Unit A")


@pytest.fixture
def unit_b(db):
    return UnitFactory(internal_ref="unitb", name="Unit B")


@pytest.fixture
def admin_a(unit_a):
    return UserFactory(role=Role.UNIT_ADMIN, unit=unit_a)


@pytest.fixture
def admin_b(unit_b):
    return UserFactory(role=Role.UNIT_ADMIN, unit=unit_b)


@pytest.fixture
def personnel_a(unit_a):
    return UserFactory(role=Role.UNIT_PERSONNEL, unit=unit_a)


@pytest.fixture
def researcher(db):
    return UserFactory(role=Role.RESEARCHER)


@pytest.fixture
def superadmin(db):
    return UserFactory(role=Role.SUPER_ADMIN)


@pytest.fixture
def project_a(unit_a, admin_a):
    return ProjectFactory(unit=unit_a, created_by=admin_a)


@pytest.fixture
def project_b(unit_b, admin_b):
    return ProjectFactory(unit=unit_b, created_by=admin_b)


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttle counters and cached flags live in the cache: each test starts clean."""
    from django.core.cache import cache

    cache.clear()
    yield
