"""DRF authentication: every API view needs a fully (2FA) authenticated, live session.

A JWT alone is not enough: its session must still be live (not logged out, not ended by
a password change, reset or deactivation), so revocation takes effect immediately rather
than when the access token expires.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from accounts.models import AuthSessionState
from accounts.sessions import PendingToken, live_session

SESSION_ENDED = "Your session has ended: log in again."
#: One answer for every unusable token (garbage, expired, the wrong kind, a bad
#: signature): simplejwt's own detail lists each token class it tried, flattened into an
#: unreadable sentence by the one error body (docs/api-errors.md).
ACCESS_REFUSED = "Your access token is not valid or has expired: log in again."
PENDING_REFUSED = "The login token is not valid or has expired: log in again."


def token_invalid(message: str) -> InvalidToken:
    """The 401 for a token that cannot be used: a sentence and ``token_not_valid``, never
    the token or simplejwt's per-class messages."""
    return InvalidToken({"detail": message, "code": "token_not_valid"})


class SessionJWTAuthentication(JWTAuthentication):
    """Access tokens of a live, fully authenticated session (the project-wide default)."""

    session_state = AuthSessionState.ACTIVE

    def get_validated_token(self, raw_token):
        try:
            return super().get_validated_token(raw_token)
        except (InvalidToken, TokenError) as exc:
            raise token_invalid(ACCESS_REFUSED) from exc

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user, token = result
        sid = token.get("sid")
        if not sid or live_session(public_id=sid, user_id=user.pk,
                                   state=self.session_state) is None:
            raise AuthenticationFailed(SESSION_ENDED, code="session_ended")
        return user, token


class PendingTokenAuthentication(SessionJWTAuthentication):
    """Only for /auth/2fa: the short-lived token that proves the password step."""

    session_state = AuthSessionState.PENDING

    def get_validated_token(self, raw_token):
        try:
            return PendingToken(raw_token)
        except TokenError as exc:
            raise token_invalid(PENDING_REFUSED) from exc


class SessionJWTScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.SessionJWTAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "Access token from POST /api/v1/auth/2fa."}


class PendingJWTScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.PendingTokenAuthentication"
    name = "pendingAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "Pending token from POST /api/v1/auth/login."}
