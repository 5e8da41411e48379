"""Permission rows for the project API (format: tests/permission_matrix.py)."""

from __future__ import annotations

from tests.permission_matrix import ALLOWED, Row, signed_in


def _project(world):
    return {"project_id": world.project.public_id}


def _member(world):
    return {"project_id": world.project.public_id,
            "username": world.target_researcher.username}


#: Anyone who can see the project: its members, its unit's staff and the Super Admin;
#: another unit's staff do not learn that it exists.
VISIBLE = signed_in(ALLOWED, other_unit_staff=404)
#: Lifecycle changes: the project's unit staff only (the Super Admin holds no project role).
STAFF = signed_in(ALLOWED, researcher=403, owner=403, super_admin=403, other_unit_staff=404)
#: Member management: unit staff and the project's owners.
OWNERS = signed_in(ALLOWED, researcher=403, super_admin=403, other_unit_staff=404)

ROWS = {
    "project-list": Row("get", expect=signed_in()),
    "project-detail": Row("get", kwargs=_project, expect=VISIBLE),
    "project-status": Row("get", kwargs=_project, expect=VISIBLE),
    "project-release": Row("post", kwargs=_project, body={"deadline_days": 5}, expect=STAFF),
    "project-retract": Row("post", kwargs=_project, body={}, expect=STAFF),
    "project-extend": Row("post", kwargs=_project, body={"days": 5}, expect=STAFF),
    "project-archive": Row("post", kwargs=_project, body={}, expect=STAFF),
    "project-delete": Row("post", kwargs=_project, body={}, expect=STAFF),
    "project-members": Row("get", kwargs=_project, expect=VISIBLE),
    "project-member": Row("patch", kwargs=_member, body={"owner": True}, expect=OWNERS),
    "project-access-fix": Row("post", kwargs=_project,
                              body=lambda w: {"username": w.target_researcher.username},
                              expect=OWNERS),
}
