"""Permission rows for the authenticator-app API (format: tests/permission_matrix.py).

Every logged-in user manages their own second factor; a pending login (password only)
and anonymous callers are refused."""

from __future__ import annotations

from tests.permission_matrix import Row, signed_in

ROWS = {
    "me-totp-setup": Row("post", expect=signed_in()),
    # No set-up was started: a 400, past authentication and authorisation.
    "me-totp-confirm": Row("post", body={"code": "000000"}, expect=signed_in()),
    # No authenticator app is set up: a 400, likewise.
    "me-totp": Row("delete", expect=signed_in()),
}
