"""Permission rows for the key API (format: tests/permission_matrix.py)."""

from __future__ import annotations

from tests.permission_matrix import ALLOWED, Row, signed_in


def _project(world):
    return {"project_id": world.project.public_id}


ROWS = {
    "project-public-key": Row("get", kwargs=_project,
                              expect=signed_in(ALLOWED, other_unit_staff=404)),
    "project-key-rotation": Row("get", kwargs=_project,
                                expect=signed_in(ALLOWED, researcher=403, owner=403,
                                                 super_admin=403, other_unit_staff=404)),
}
