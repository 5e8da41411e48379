"""GET /api/v1/users and /api/v1/units: scoped like the admin."""

import pytest

from accounts.models import Role
from accounts.tests.helpers import api_login, bearer, keyed_user
from projects.services import project_create


@pytest.fixture
def people(unit_a, unit_b):
    admin, admin_pw = keyed_user(Role.UNIT_ADMIN, unit_a)
    keyed_user(Role.UNIT_ADMIN, unit_a)
    other_admin, _ = keyed_user(Role.UNIT_ADMIN, unit_b)
    member, member_pw = keyed_user()
    outsider, _ = keyed_user()
    project_create(unit=unit_a, by=admin, title="p", force=True, researchers=[member])
    return {"admin": (admin, admin_pw), "member": (member, member_pw),
            "other_admin": other_admin, "outsider": outsider}


@pytest.mark.django_db
def test_unit_admin_lists_own_staff_and_project_members(people, unit_a):
    admin, pw = people["admin"]
    client = bearer(api_login(admin, pw)["access"])
    names = {u["username"] for u in client.get("/api/v1/users").json()}
    assert admin.username in names and people["member"][0].username in names
    assert people["other_admin"].username not in names
    assert people["outsider"].username not in names
    units = client.get("/api/v1/units").json()
    assert [u["name"] for u in units] == [unit_a.name]
    # Usage against quota: nothing stored yet in a new unit.
    assert (units[0]["stored_bytes"], units[0]["reserved_bytes"]) == (0, 0)
    assert units[0]["quota_bytes"] == unit_a.quota_bytes
    assert units[0]["warning_level"] == unit_a.warning_level


@pytest.mark.django_db
def test_researchers_cannot_list_users_or_units(people):
    member, pw = people["member"]
    client = bearer(api_login(member, pw)["access"])
    assert client.get("/api/v1/users").status_code == 403
    assert client.get("/api/v1/units").status_code == 403
