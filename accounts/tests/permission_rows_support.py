"""Permission rows for the support tools (format: tests/permission_matrix.py).

Cancelling an invite: unit staff cancel their unit's invites (another unit's is the same
404 as an unknown address), a Super Admin any; researchers are refused. Resetting a
second factor: a Super Admin only; everyone else is refused before the user is looked up,
so nobody learns whether the username exists.
"""

from __future__ import annotations

from django.utils import timezone

from tests.permission_matrix import ALLOWED, Row, signed_in


def _unit_a_invite(world):
    from accounts.models import Invite, Role

    Invite.objects.create(email="mx-support-invite@example.org", role=Role.UNIT_PERSONNEL,
                          unit=world.unit_a, created_by=world.unit_admin,
                          expires_at=timezone.now() + timezone.timedelta(days=1))
    return {"email": "mx-support-invite@example.org"}


ROWS = {
    "invite-cancel": Row(
        "delete", kwargs=_unit_a_invite,
        expect=signed_in(ALLOWED, researcher=403, owner=403, other_unit_staff=404)),
    "user-second-factor-reset": Row(
        "post", kwargs=lambda w: {"username": w.target_researcher.username},
        expect=signed_in(403, super_admin=ALLOWED)),
}
