import pytest

from accounts.models import Role
from accounts.tests.helpers import keyed_user
from projects.services import project_create


@pytest.fixture
def staffed(unit_a):
    """Unit A with two keyed admins and a personnel, and a project with real keys."""
    admin, admin_pw = keyed_user(Role.UNIT_ADMIN, unit_a)
    admin2, _ = keyed_user(Role.UNIT_ADMIN, unit_a)
    personnel, personnel_pw = keyed_user(Role.UNIT_PERSONNEL, unit_a)
    project = project_create(unit=unit_a, by=admin, title="Keys project", force=True)
    return {"unit": unit_a, "admin": admin, "admin_pw": admin_pw, "admin2": admin2,
            "personnel": personnel, "personnel_pw": personnel_pw, "project": project}


@pytest.fixture
def researcher_keyed(db):
    return keyed_user(Role.RESEARCHER)
