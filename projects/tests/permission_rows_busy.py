"""Permission rows for the busy-projects list (format: tests/permission_matrix.py)."""

from __future__ import annotations

from tests.permission_matrix import ALLOWED, Row, signed_in

ROWS = {
    # Staff see their unit's (another unit's staff: an empty list), the Super Admin all.
    "projects-busy": Row("get", expect=signed_in(ALLOWED, researcher=403, owner=403)),
}
