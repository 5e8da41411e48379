"""Permission rows for messages of the day and maintenance mode (format:
tests/permission_matrix.py).

One row per URL, so the rows test the writes (Super Admin only). The reads, which have
their own rules (anyone reads the active messages; anyone signed in reads the maintenance
state), are checked for every actor in accounts/tests/test_announcements.py.
"""

from __future__ import annotations

from tests.permission_matrix import ALLOWED, Row, signed_in

_OPERATOR_ONLY = signed_in(403, super_admin=ALLOWED)


def _motd(world) -> dict:
    from accounts.models import MOTD

    return {"motd_id": MOTD.objects.create(message="Matrix message").pk}


ROWS = {
    "motd-list": Row("post", body={"message": "Storage upgrade on Friday"},
                     expect=_OPERATOR_ONLY),
    "motd-deactivate": Row("post", kwargs=_motd, expect=_OPERATOR_ONLY),
    "motd-send": Row("post", kwargs=_motd, body={}, expect=_OPERATOR_ONLY),
    "maintenance": Row("put", body={"active": False, "message": "Back soon."},
                       expect=_OPERATOR_ONLY),
}
