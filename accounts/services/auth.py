"""Logins: the password step, the second factor, refresh-token rotation, ending sessions.

A login is two steps. The password step derives the user's KEK into a *pending* session
(sealed under a key only the client carries: accounts.sessions) and sends an email code
unless an authenticator app is set up; the code step makes the session live.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeGuard

from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.errors import AccountLocked, InvalidCode, InvalidCredentials, TokenInvalid
from accounts.models import (
    EMAIL_CODE_DIGITS,
    TOTP_DIGITS,
    AuthSession,
    AuthSessionKind,
    AuthSessionState,
    EmailDevice,
    TOTPDevice,
    User,
)
from accounts.services.lockout import (
    lockout_policy,
    login_failure_record,
    login_failure_refuse,
    login_failures_clear,
    login_lock_check,
)
from accounts.sessions import (
    SECOND_FACTOR_WINDOW,
    kek_seal,
    session_key_new,
    session_max_age,
)
from audit.actions import AuditAction
from audit.services import audit_record
from core.kdf_limit import kdf_slot, password_hasher_memory_kib
from keys.errors import KeyAccessError
from keys.services import user_kek_derive
from mail.services import mail_send_template

SecondFactorDevice = TOTPDevice | EmailDevice


# --------------------------------------------------------------------------- second factor


def second_factor_device(user: User, *, for_update: bool = False) -> SecondFactorDevice:
    """The device a login must verify: a confirmed authenticator app, else email.

    ``for_update`` locks the row (inside the caller's transaction): verifying a code
    under the lock is what makes it single-use against concurrent requests.
    """
    totps = TOTPDevice.objects.filter(user=user, confirmed=True)
    emails = EmailDevice.objects.filter(user=user, confirmed=True)
    if for_update:
        totps, emails = totps.select_for_update(), emails.select_for_update()
    # django-otp's Device base is untyped: the rows' types are stated here.
    totp: TOTPDevice | None = totps.first()
    if totp is not None:
        return totp
    device: EmailDevice | None = emails.first()
    if device is None:
        device, _ = EmailDevice.objects.get_or_create(user=user, defaults={
            "name": "email", "confirmed": True})
    return device


def second_factor_method(user: User) -> str:
    """"totp" when a confirmed authenticator app is set up, else "email"."""
    return "totp" if TOTPDevice.objects.filter(user=user, confirmed=True).exists() else "email"


def code_clean(code: object) -> str:
    """A typed code without spaces (apps show "123 456")."""
    return str(code or "").strip().replace(" ", "")


def _code_matches(device: SecondFactorDevice, code: str) -> bool:
    digits = TOTP_DIGITS if isinstance(device, TOTPDevice) else EMAIL_CODE_DIGITS
    return code.isdigit() and len(code) == digits and bool(device.verify_token(code))


def email_code_minutes() -> int:
    """How long an emailed login code is valid (the pending login's window)."""
    return int(SECOND_FACTOR_WINDOW.total_seconds() // 60)


def _email_code_send(user: User, device: EmailDevice) -> None:
    code = device.code_new(length=EMAIL_CODE_DIGITS,
                           valid_secs=int(SECOND_FACTOR_WINDOW.total_seconds()))
    mail_send_template(template="accounts/login_code", to=[user.email],
                       context={"user": user, "code": code, "minutes": email_code_minutes()})


# --------------------------------------------------------------------------- login


@dataclass
class LoginChallenge:
    session: AuthSession
    session_key: bytes = field(repr=False)
    method: str


def _password_matches(user: User | None, password: str) -> TypeGuard[User]:
    """Whether ``user`` exists, is active and has this password — at the same cost when
    there is no such user, so the time taken does not tell whether the username exists."""
    if user is None:
        with kdf_slot(password_hasher_memory_kib()):
            make_password(password)
        return False
    return user.check_password(password) and user.is_active


def login_start(*, username: str, password: str, kind: str,
                ip: str | None = None) -> LoginChallenge:
    """Step 1: check the password, derive the KEK into a pending session, send the code."""
    login_lock_check(username=username, ip=ip)
    user = User.objects.filter(username=username).first()
    if not _password_matches(user, password):
        login_failure_refuse(username=username, ip=ip, stage="password", user=user)
        raise InvalidCredentials()
    try:
        kek: bytes | None = user_kek_derive(user=user, password=password)
    except KeyAccessError:
        kek = None  # an account without a key pair can log in but has no keys to use
    return _login_challenge(user=user, kek=kek, kind=kind, ip=ip)


@transaction.atomic
def _login_challenge(*, user: User, kek: bytes | None, kind: str,
                     ip: str | None) -> LoginChallenge:
    session = AuthSession(user=user, kind=kind, state=AuthSessionState.PENDING, ip=ip,
                          expires_at=timezone.now() + SECOND_FACTOR_WINDOW)
    session_key = session_key_new()
    if kek is not None:
        session.kek_sealed = kek_seal(session=session, session_key=session_key, kek=kek)
    session.save()
    device = second_factor_device(user)
    method = "totp" if isinstance(device, TOTPDevice) else "email"
    if isinstance(device, EmailDevice):
        _email_code_send(user, device)
    audit_record(action=AuditAction.AUTH_PASSWORD_OK, actor=user, target=user.username,
                 ip=ip, details={"kind": kind, "method": method})
    return LoginChallenge(session=session, session_key=session_key, method=method)


def login_code_resend(*, session: AuthSession, ip: str | None = None) -> None:
    """Send a fresh email code for a pending login (the old one stops working)."""
    login_lock_check(username=session.user.username, ip=ip)
    device = second_factor_device(session.user)
    if isinstance(device, EmailDevice):
        with transaction.atomic():
            _email_code_send(session.user, device)
            audit_record(action=AuditAction.AUTH_CODE_RESEND, actor=session.user,
                         target=session.user.username, ip=ip)


def login_verify(*, session: AuthSession, code: str, ip: str | None = None) -> AuthSession:
    """Step 2: check the second factor; the pending session becomes a live one."""
    user = session.user
    login_lock_check(username=user.username, ip=ip)
    code = code_clean(code)
    with transaction.atomic():
        # Codes are single use: the email code is cleared, and a TOTP device remembers the
        # last accepted time step; the row lock makes that hold for parallel requests.
        ok = _code_matches(second_factor_device(user, for_update=True), code)
    if not ok:
        if login_failure_record(username=user.username, ip=ip, stage="code", user=user):
            auth_session_end(session=session, reason="locked", ip=ip)
            raise AccountLocked(lockout_policy().minutes)
        raise InvalidCode()
    return _login_complete(session=session, ip=ip)


@transaction.atomic
def _login_complete(*, session: AuthSession, ip: str | None) -> AuthSession:
    now = timezone.now()
    session.state = AuthSessionState.ACTIVE
    session.expires_at = now + session_max_age(session.kind)
    session.save(update_fields=["state", "expires_at"])
    user = session.user
    user.last_login = now
    user.save(update_fields=["last_login"])
    login_failures_clear(username=user.username)
    audit_record(action=AuditAction.AUTH_LOGIN, actor=user, target=user.username, ip=ip,
                 details={"kind": session.kind, "session": session.public_id})
    return session


# --------------------------------------------------------------------------- sessions


@dataclass
class Refreshed:
    session: AuthSession
    carried_key: str


def auth_session_refresh(*, raw_refresh: str, ip: str | None = None) -> Refreshed:
    """Rotate a refresh token. A token that was already used ends its whole session."""
    try:
        token = RefreshToken(raw_refresh)  # type: ignore[arg-type]  # the stubs want a Token
    except TokenError as exc:
        raise TokenInvalid() from exc
    reused = False
    with transaction.atomic():
        session = (AuthSession.objects.select_for_update().select_related("user")
                   .filter(public_id=str(token.get("sid", "")), kind=AuthSessionKind.API,
                           state=AuthSessionState.ACTIVE).first())
        if (session is None or not session.is_live or not session.user.is_active
                or session.user_id != token.get(jwt_settings.USER_ID_CLAIM)):
            raise TokenInvalid()
        if token.get("rc") != session.refresh_counter:
            # A refresh token came back after it was rotated: someone else holds a copy.
            auth_session_end(session=session, reason="refresh_reused", ip=ip)
            reused = True
        else:
            session.refresh_counter += 1
            session.save(update_fields=["refresh_counter"])
            audit_record(action=AuditAction.AUTH_REFRESH, actor=session.user,
                         target=session.user.username, ip=ip)
    if reused:
        raise TokenInvalid("This refresh token was already used; the session is ended. "
                           "Log in again.")
    return Refreshed(session=session, carried_key=str(token.get("ks", "")))


@transaction.atomic
def auth_session_end(*, session: AuthSession, reason: str, ip: str | None = None) -> None:
    AuthSession.objects.filter(pk=session.pk).update(ended_at=timezone.now(), kek_sealed=None)
    audit_record(action=AuditAction.AUTH_SESSION_END, actor=session.user,
                 target=session.user.username, ip=ip,
                 details={"reason": reason, "session": session.public_id})


@transaction.atomic
def auth_sessions_end(*, user: User, reason: str, by: User | None = None,
                      keep: AuthSession | None = None, ip: str | None = None) -> int:
    """End every session of the user at once (all but ``keep``): the sealed KEKs are erased,
    so tokens and portal cookies unlock nothing even with the server secret."""
    qs = AuthSession.objects.filter(user=user, ended_at__isnull=True)
    if keep is not None:
        qs = qs.exclude(pk=keep.pk)
    ended = qs.update(ended_at=timezone.now(), kek_sealed=None)
    if keep is None:
        # Portal sessions carry a hash that includes the generation (User model).
        User.objects.filter(pk=user.pk).update(session_generation=F("session_generation") + 1)
        user.refresh_from_db(fields=["session_generation"])
    audit_record(action=AuditAction.AUTH_SESSIONS_END, actor=by or user, target=user.username,
                 ip=ip, details={"reason": reason, "sessions": ended})
    return ended


def auth_logout(*, user: User, ip: str | None = None) -> int:
    """Logout ends every session of the user (the issue's rule: one logout, all devices)."""
    return auth_sessions_end(user=user, reason="logout", ip=ip)
