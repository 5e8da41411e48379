"""Errors of accounts: logins, codes, tokens, links and invites (the one model: core.errors).

Invalid input (a field's value) stays Django's ``ValidationError`` and a refused role
Django's ``PermissionDenied``: the one handler (core.errors.api_exception_handler) answers
both with the same body, and field errors keep their per-field ``errors``.
"""

from __future__ import annotations

from rest_framework import status

from core.errors import BadInput, Conflict, DDSError, NotAllowed


class InvalidCredentials(DDSError):
    """Invalid username or password."""

    # One message whether or not the username exists, so logins do not enumerate accounts.
    status_code = status.HTTP_401_UNAUTHORIZED
    code = "invalid_credentials"


class InvalidCode(DDSError):
    """The code is wrong, expired or already used."""

    status_code = status.HTTP_401_UNAUTHORIZED
    code = "invalid_code"


class AccountLocked(DDSError):
    """Too many failed attempts: the account name or the address is locked for a while."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    code = "locked"

    def __init__(self, minutes: int) -> None:
        super().__init__(f"Too many failed attempts. Try again in {minutes} minute"
                         f"{'s' if minutes != 1 else ''}.")
        self.minutes = minutes


class TokenInvalid(DDSError):
    """The token is not valid, expired or already used: log in again."""

    status_code = status.HTTP_401_UNAUTHORIZED
    code = "token_not_valid"


class LinkInvalid(BadInput):
    """The link is not valid or has expired."""

    code = "link_invalid"


class InviteConflict(Conflict):
    """The address already has a pending invitation of another kind."""

    code = "invite_pending"


class AgreementRequired(NotAllowed):
    """The user agreement changed: accept the new version in the portal first."""

    code = "agreement_required"


class PasswordRequired(NotAllowed):
    """A sensitive change (replacing the authenticator app over the API) needs the
    password again."""

    code = "password_required"
