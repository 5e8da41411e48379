"""Permission rows for the accounts API (format: tests/permission_matrix.py)."""

from __future__ import annotations

import secrets

from django.utils import timezone

from tests.permission_matrix import ALLOWED, Row, everyone, expect, signed_in


def _invite_body(world):
    from accounts.models import Invite
    from keys.services import invite_keys_create

    token = secrets.token_urlsafe(32)
    invite = Invite.objects.create(email="mx-new@example.org", role="researcher",
                                   expires_at=timezone.now() + timezone.timedelta(days=1))
    invite_keys_create(invite=invite, token=token)
    return {"token": token, "username": "mx-new", "name": "New Person",
            "password": "Fresh-" + secrets.token_urlsafe(10)}


def _target_staff(world):
    return {"username": world.target_staff.username}


#: Who may manage a unit's staff: its admins and the Super Admin; others of the unit are
#: refused, people outside it do not learn the user exists.
_MANAGE_STAFF = signed_in(404, personnel=403, unit_admin=ALLOWED, super_admin=ALLOWED)

ROWS = {
    "user-list": Row("get", expect=signed_in(ALLOWED, researcher=403, owner=403)),
    "unit-list": Row("get", expect=signed_in(ALLOWED, researcher=403, owner=403)),
    "api-schema": Row("get", expect=expect(ALLOWED, pending=401)),
    "auth-login": Row("post", body=lambda w: {"username": w.researcher.username,
                                              "password": w.password},
                      expect=everyone()),
    "auth-2fa": Row("post", body=lambda w: {"code": w.pending_code},
                    expect=expect(401, pending=ALLOWED)),
    "auth-2fa-resend": Row("post", expect=expect(401, pending=ALLOWED)),
    "auth-refresh": Row("post", body=lambda w: {"refresh": w.tokens["researcher"]["refresh"]},
                        expect=everyone()),
    "auth-logout": Row("post", expect=signed_in()),
    "auth-register": Row("post", body=_invite_body, expect=everyone()),
    "auth-password-reset": Row("post", body={"email": "nobody@example.org"},
                               expect=everyone()),
    "auth-password-reset-confirm": Row("post", body={"uid": "MQ", "token": "x",
                                                     "new_password": "Abcdefgh-123"},
                                       expect=everyone()),
    "me": Row("get", expect=signed_in()),
    "me-password": Row("post", body={"current_password": "wrong", "new_password": "x"},
                       expect=signed_in()),
    "me-delete-request": Row("post", expect=signed_in()),
    "me-delete": Row("post", body={"token": "forged"}, expect=signed_in()),
    "invite-create": Row(
        "post", body=lambda w: {"email": "mx-invitee@example.org",
                                "project": w.project.public_id},
        expect=signed_in(ALLOWED, researcher=403, super_admin=403, other_unit_staff=404)),
    "user-access-fix": Row(
        "post", kwargs=lambda w: {"username": w.target_researcher.username}, body={},
        expect=signed_in(ALLOWED, other_unit_staff=404)),
    "user-deactivate": Row("post", kwargs=_target_staff, expect=_MANAGE_STAFF),
    "user-reactivate": Row("post", kwargs=_target_staff, expect=_MANAGE_STAFF),
    "user-delete": Row("delete", kwargs=_target_staff, expect=_MANAGE_STAFF),
}
