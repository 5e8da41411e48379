"""A unit with three keyed admins, a keyed researcher and a project of theirs."""

from __future__ import annotations

from dataclasses import dataclass

from accounts.models import Role
from keys.tests.helpers import keyed_user
from projects.services import project_create


@dataclass
class World:
    unit: object
    admin: object
    admin_kek: bytes
    staff: object
    staff_kek: bytes
    researcher: object
    researcher_kek: bytes
    project: object
    passwords: dict


def make_world(unit, *, researcher_is_owner: bool = True) -> World:
    admin, admin_pw, admin_kek = keyed_user(Role.UNIT_ADMIN, unit)
    keyed_user(Role.UNIT_ADMIN, unit)
    keyed_user(Role.UNIT_ADMIN, unit)
    staff, staff_pw, staff_kek = keyed_user(Role.UNIT_PERSONNEL, unit)
    researcher, researcher_pw, researcher_kek = keyed_user()
    kwargs = {"owners" if researcher_is_owner else "researchers": [researcher]}
    project = project_create(unit=unit, by=admin, title="Lifecycle", **kwargs)
    passwords = {admin.username: admin_pw, staff.username: staff_pw,
                 researcher.username: researcher_pw}
    return World(unit, admin, admin_kek, staff, staff_kek, researcher, researcher_kek, project,
                 passwords)


def login(world: World, user):
    """An API client logged in (password + emailed code) as ``user``."""
    from accounts.tests.helpers import api_login, bearer

    return bearer(api_login(user, world.passwords[user.username])["access"])
