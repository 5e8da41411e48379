"""Permission rows of the reports API (tests/permission_matrix.py)."""

from tests.permission_matrix import ALLOWED, Row, signed_in

ROWS = {
    # Unit staff see their own unit (other_unit_staff: theirs), researchers are refused.
    "usage": Row("get", expect=signed_in(ALLOWED, researcher=403, owner=403)),
    "stats": Row("get", expect=signed_in(403, super_admin=ALLOWED)),
}
