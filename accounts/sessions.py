"""Key sessions: how the server keeps a user's KEK between requests without holding it.

Security model point 6. At login the server derives the user's key-encryption key (KEK)
from the password. It is kept only like this:

- a random 256-bit *session key* encrypts the KEK (AES-256-GCM, the session id as
  associated data); that ciphertext is stored on the ``AuthSession`` row;
- the session key itself is never stored: it is sealed under the server key
  (``core.sealing``) and handed to the client, inside the JWT (claim ``ks``) for the API
  or in an HttpOnly cookie for the portal.

So a database dump has only ciphertext; a token without the server secret opens
nothing; and ending a session erases the stored ciphertext, after which the same token
unlocks nothing even with the server secret.

Other apps call :func:`request_kek` to get the caller's KEK for the current request.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.utils import timezone
from rest_framework.exceptions import NotAuthenticated, PermissionDenied
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken, Token

from accounts.models import AuthSession, AuthSessionKind, AuthSessionState
from core.sealing import SealError, seal, unseal

#: Django session key holding the portal's AuthSession id.
PORTAL_SESSION_KEY = "dds_sid"
#: Cookie holding the portal's sealed session key (HttpOnly; never stored server-side).
PORTAL_KEY_COOKIE = "dds_ks"

NO_KEY_SESSION = ("No unlocked key session: log in again (with your password) to use your "
                  "keys.")


#: How long a login waits for its second factor: the pending token, the pending session
#: and the emailed code all last this long (one rule, DDS_EMAIL_CODE_MINUTES).
SECOND_FACTOR_WINDOW = timedelta(minutes=settings.DDS_EMAIL_CODE_MINUTES)


def session_max_age(kind: str) -> timedelta:
    """The absolute lifetime of a logged-in session: an API token family lives as long as
    its refresh tokens (DDS_REFRESH_MAX_DAYS), a portal login DDS_PORTAL_SESSION_MAX_AGE."""
    if kind == AuthSessionKind.API:
        lifetime: timedelta = jwt_settings.REFRESH_TOKEN_LIFETIME
        return lifetime
    return timedelta(seconds=settings.DDS_PORTAL_SESSION_MAX_AGE)


class PendingToken(Token):
    """Proves a correct password, nothing more: only /auth/2fa accepts it."""

    token_type = "pending"  # noqa: S105 (a token type name, not a secret)
    lifetime = SECOND_FACTOR_WINDOW


@dataclass
class IssuedTokens:
    access: str
    refresh: str
    access_expires_at: datetime
    refresh_expires_at: datetime


# --------------------------------------------------------------------------- sealing


def _aad(session: AuthSession) -> bytes:
    return b"dds-session-kek:" + session.public_id.encode()


def _purpose(session_public_id: str) -> str:
    return f"session-key:{session_public_id}"


def session_key_new() -> bytes:
    return os.urandom(32)


def kek_seal(*, session: AuthSession, session_key: bytes, kek: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(session_key).encrypt(nonce, kek, _aad(session))


def session_key_for_client(*, session: AuthSession, session_key: bytes) -> str:
    """The session key as the client carries it: sealed under the server key, base64."""
    sealed = seal(session_key, purpose=_purpose(session.public_id))
    return base64.urlsafe_b64encode(sealed).decode()


def session_key_from_client(*, session_public_id: str, carried: str) -> bytes:
    try:
        sealed = base64.urlsafe_b64decode(carried.encode())
        return unseal(sealed, purpose=_purpose(session_public_id))
    except (SealError, ValueError, TypeError) as exc:
        raise NotAuthenticated(NO_KEY_SESSION) from exc


def kek_open(*, session: AuthSession, session_key: bytes) -> bytes:
    if not session.kek_sealed:
        raise PermissionDenied("Your account has no key pair, so there are no keys to use.")
    blob = bytes(session.kek_sealed)
    try:
        return AESGCM(session_key).decrypt(blob[:12], blob[12:], _aad(session))
    except (InvalidTag, ValueError) as exc:
        raise NotAuthenticated(NO_KEY_SESSION) from exc


# --------------------------------------------------------------------------- tokens


def _claims(token: Token, session: AuthSession, carried_key: str) -> None:
    token[jwt_settings.USER_ID_CLAIM] = session.user_id
    token["sid"] = session.public_id
    token["ks"] = carried_key


def pending_token_issue(*, session: AuthSession, session_key: bytes) -> str:
    token = PendingToken()
    _claims(token, session, session_key_for_client(session=session, session_key=session_key))
    token.set_exp(lifetime=min(PendingToken.lifetime, session.expires_at - timezone.now()))
    return str(token)


def api_tokens_issue(*, session: AuthSession, carried_key: str) -> IssuedTokens:
    """An access token and the current refresh token of the session's family.

    Neither outlives the session (at most DDS_REFRESH_MAX_DAYS after login).
    """
    now = timezone.now()
    access = AccessToken()
    _claims(access, session, carried_key)
    access_exp = min(now + jwt_settings.ACCESS_TOKEN_LIFETIME, session.expires_at)
    access.set_exp(from_time=now, lifetime=access_exp - now)
    refresh = RefreshToken()
    _claims(refresh, session, carried_key)
    refresh["rc"] = session.refresh_counter
    refresh.set_exp(from_time=now, lifetime=session.expires_at - now)
    return IssuedTokens(access=str(access), refresh=str(refresh), access_expires_at=access_exp,
                        refresh_expires_at=session.expires_at)


# --------------------------------------------------------------------------- lookups


def live_session(*, public_id: str, user_id: int | None = None,
                 state: str = AuthSessionState.ACTIVE) -> AuthSession | None:
    qs = AuthSession.objects.filter(public_id=str(public_id), state=state,
                                    ended_at__isnull=True, expires_at__gt=timezone.now())
    if user_id is not None:
        qs = qs.filter(user_id=user_id)
    return qs.select_related("user").first()


@dataclass
class RequestKeySession:
    session: AuthSession
    carried_key: str

    @property
    def session_key(self) -> bytes:
        return session_key_from_client(session_public_id=self.session.public_id,
                                       carried=self.carried_key)


def request_key_session(request) -> RequestKeySession:
    """The caller's live AuthSession and the carried (sealed) session key.

    Works for DRF requests authenticated by our JWT class and for portal requests
    (Django session + cookie). Raises NotAuthenticated when there is none.
    """
    user = getattr(request, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        raise NotAuthenticated(NO_KEY_SESSION)
    token = getattr(request, "auth", None)
    sid = carried = None
    if token is not None and hasattr(token, "get"):
        sid, carried = token.get("sid"), token.get("ks")
    else:
        django_request = getattr(request, "_request", request)
        session = getattr(django_request, "session", None)
        sid = session.get(PORTAL_SESSION_KEY) if session is not None else None
        carried = django_request.COOKIES.get(PORTAL_KEY_COOKIE)
    if not sid or not carried:
        raise NotAuthenticated(NO_KEY_SESSION)
    auth_session = live_session(public_id=sid, user_id=user.pk)
    if auth_session is None:
        raise NotAuthenticated(NO_KEY_SESSION)
    return RequestKeySession(session=auth_session, carried_key=carried)


def request_kek(request) -> bytes:
    """The caller's KEK for this request (API via JWT, portal via session + cookie).

    Raises ``rest_framework.exceptions.NotAuthenticated`` (401) when the request has no
    unlocked key session, and ``PermissionDenied`` (403) when the account has no key pair.
    """
    ks = request_key_session(request)
    return kek_open(session=ks.session, session_key=ks.session_key)


def portal_cookie_kwargs() -> dict[str, Any]:
    return {"httponly": True, "secure": settings.SESSION_COOKIE_SECURE, "samesite": "Lax",
            "max_age": int(session_max_age(AuthSessionKind.PORTAL).total_seconds())}
