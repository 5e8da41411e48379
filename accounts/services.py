"""Writes for units, users, invites, logins and key sessions.

Views (API and portal), admin actions, Celery tasks and management commands call these;
no rule lives anywhere else. Every email is queued with mail.services.mail_queue (sealed,
sent by a task after commit; only its id crosses the broker).
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from rest_framework import status

from accounts.models import (
    UNIT_ROLES,
    USERNAME_VALIDATOR,
    AuthSession,
    AuthSessionKind,
    AuthSessionState,
    EmailDevice,
    Invite,
    LoginThrottle,
    Role,
    TOTPDevice,
    Unit,
    User,
)
from accounts.sessions import PendingToken, kek_seal, session_key_new
from audit.services import audit_record
from core.errors import DDSError
from core.input_guard import names_check
from core.kdf_limit import kdf_slot, password_hasher_memory_kib
from core.throttling import throttle_allow
from keys.services import (
    KeyAccessError,
    invite_access_grant,
    invite_keys_create,
    invite_keys_transfer,
    invite_token_hash,
    project_access_fix,
    project_access_grant,
    user_kek_derive,
    user_keypair_new,
    user_keys_create,
    user_keys_reset,
    user_keys_rewrap,
)
from mail.services import mail_queue
from projects.models import Project, ProjectMembership
from projects.selectors import Need, project_get_for_user

log = logging.getLogger(__name__)

PENDING_LIFETIME = PendingToken.lifetime  # one value for the pending session and token


# --------------------------------------------------------------------------- errors


class InvalidCredentials(DDSError):
    # One message whether or not the username exists, so logins do not enumerate accounts.
    status_code = status.HTTP_401_UNAUTHORIZED
    code = "invalid_credentials"

    def __init__(self, msg: str = "Invalid username or password."):
        super().__init__(msg)


class InvalidCode(DDSError):
    status_code = status.HTTP_401_UNAUTHORIZED
    code = "invalid_code"

    def __init__(self, msg: str = "The code is wrong, expired or already used."):
        super().__init__(msg)


class AccountLocked(DDSError):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    code = "locked"

    def __init__(self, minutes: int):
        self.minutes = minutes
        super().__init__(f"Too many failed attempts. Try again in {minutes} minute"
                         f"{'s' if minutes != 1 else ''}.")


class TokenInvalid(DDSError):
    status_code = status.HTTP_401_UNAUTHORIZED
    code = "token_not_valid"

    def __init__(self, msg: str = "The token is not valid, expired or already used: "
                                  "log in again."):
        super().__init__(msg)


class LinkInvalid(DDSError):
    code = "link_invalid"

    def __init__(self, msg: str = "The link is not valid or has expired."):
        super().__init__(msg)


# --------------------------------------------------------------------------- helpers


def _link(path: str) -> str:
    return f"{settings.DDS_PUBLIC_URL}{path}"


def _minutes_left(until) -> int:
    return max(1, math.ceil((until - timezone.now()).total_seconds() / 60))


# --------------------------------------------------------------------------- units, users


@transaction.atomic
def unit_create(*, name: str, display_name: str, contact_email: str, internal_ref: str,
                by: User | None = None, **options) -> Unit:
    names_check(name=name, display_name=display_name)
    unit = Unit(name=name, display_name=display_name, contact_email=contact_email,
                internal_ref=internal_ref, **options)
    unit.full_clean()
    unit.save()
    audit_record(action="unit.create", actor=by, target=unit.name)
    return unit


@transaction.atomic
def user_create(*, username: str, email: str, name: str, password: str, role: str,
                unit: Unit | None = None, by: User | None = None,
                keypair: tuple[bytes, bytes] | None = None) -> User:
    """Create an account with its key pair. Unit roles need a unit, others must not have one."""
    if role in UNIT_ROLES and unit is None:
        raise ValueError(f"a {Role(role).label} must belong to a unit")
    if role not in UNIT_ROLES:
        unit = None
    user = User.objects.create_user(username=username, email=email, password=password,
                                    name=name, role=role, unit=unit)
    user_keys_create(user=user, password=password, keypair=keypair)
    audit_record(action="user.create", actor=by or user, target=user.username,
                 details={"role": role, "unit": unit.name if unit else None})
    return user


def user_manage_check(*, user: User, by: User) -> None:
    """Super Admins manage anyone; Unit Admins the staff of their own unit."""
    if by.role == Role.SUPER_ADMIN:
        return
    if by.role == Role.UNIT_ADMIN and user.unit_id and user.unit_id == by.unit_id:
        return
    raise PermissionDenied("Only your unit's admins (or a Super Admin) may manage this user.")


@transaction.atomic
def user_deactivate(*, user: User, by: User, ip: str | None = None) -> User:
    user_manage_check(user=user, by=by)
    if user.pk == by.pk:
        raise ValidationError("You cannot deactivate your own account.")
    _last_admins_check(user, by=by)
    user.is_active = False
    user.save(update_fields=["is_active"])
    auth_sessions_end(user=user, by=by, reason="deactivated", ip=ip)
    audit_record(action="user.deactivate", actor=by, target=user.username, ip=ip)
    return user


@transaction.atomic
def user_reactivate(*, user: User, by: User, ip: str | None = None) -> User:
    user_manage_check(user=user, by=by)
    user.is_active = True
    user.save(update_fields=["is_active"])
    audit_record(action="user.reactivate", actor=by, target=user.username, ip=ip)
    return user


@transaction.atomic
def user_delete(*, user: User, by: User, ip: str | None = None) -> None:
    """Delete an account (its keys and memberships go with it; audit rows keep the name)."""
    if user.pk == by.pk:
        raise ValidationError("Delete your own account from the account page (it needs an "
                              "email confirmation).")
    user_manage_check(user=user, by=by)
    _last_admins_check(user, by=by)
    audit_record(action="user.delete", actor=by, target=user.username, ip=ip,
                 details={"role": user.role})
    user.delete()


# --------------------------------------------------------------------------- lockout


def _throttle_key(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


def _throttle_keys(username: str, ip: str | None) -> list[tuple[str, int, str]]:
    return [(_throttle_key("user", (username or "").strip().lower()),
             settings.DDS_LOCKOUT_FAILURES, "account"),
            (_throttle_key("ip", ip or "-"), settings.DDS_LOCKOUT_IP_FAILURES, "address")]


def login_lock_check(*, username: str, ip: str | None) -> None:
    """Refuse early while the account (by name, existing or not) or the address is locked."""
    keys = [k for k, _, _ in _throttle_keys(username, ip)]
    row = (LoginThrottle.objects.filter(key__in=keys, locked_until__gt=timezone.now())
           .order_by("-locked_until").first())
    if row is not None:
        raise AccountLocked(_minutes_left(row.locked_until))


def _throttle_row_locked(key: str) -> LoginThrottle:
    """The counter row, created if missing, locked. A successful login deletes the
    account's row, possibly between our insert and our lock: then insert again."""
    while True:
        LoginThrottle.objects.bulk_create([LoginThrottle(key=key)], ignore_conflicts=True)
        row = LoginThrottle.objects.select_for_update(no_key=True).filter(key=key).first()
        if row is not None:
            return row


@transaction.atomic
def login_failure_record(*, username: str, ip: str | None, stage: str,
                         user: User | None = None) -> bool:
    """Count one failed password or code; lock after too many. Returns True if now locked."""
    now = timezone.now()
    window = timedelta(minutes=settings.DDS_LOCKOUT_MINUTES)
    locks: list[dict] = []
    # Lock order (docs/locking.md): the throttle rows, in key order, then the audit head
    # last; a successful login (which deletes the account's row) takes them the same way.
    for key, limit, scope in sorted(_throttle_keys(username, ip)):
        row = _throttle_row_locked(key)
        if row.window_start + window < now or (row.locked_until and row.locked_until <= now):
            row.failures, row.window_start, row.locked_until = 0, now, None
        row.failures += 1
        if row.failures >= limit and row.locked_until is None:
            row.locked_until = now + window
            locks.append({"scope": scope, "stage": stage, "failures": row.failures,
                          "minutes": settings.DDS_LOCKOUT_MINUTES})
        row.save()
    audit_record(action="auth.failure", actor=user, target=user.username if user else "",
                 ip=ip, details={"stage": stage})
    for details in locks:
        audit_record(action="auth.lock", actor=user, target=user.username if user else "",
                     ip=ip, details=details)
    return bool(locks)


def _raise_if_locked_now(locked: bool) -> None:
    if locked:
        raise AccountLocked(settings.DDS_LOCKOUT_MINUTES)


# --------------------------------------------------------------------------- login


def second_factor_device(user: User, *, for_update: bool = False) -> TOTPDevice | EmailDevice:
    """The device a login must verify: a confirmed authenticator app, else email.

    ``for_update`` locks the row (inside the caller's transaction): verifying a code
    under the lock is what makes it single-use against concurrent requests.
    """
    totps = TOTPDevice.objects.filter(user=user, confirmed=True)
    emails = EmailDevice.objects.filter(user=user, confirmed=True)
    if for_update:
        totps, emails = totps.select_for_update(), emails.select_for_update()
    totp = totps.first()
    if totp is not None:
        return totp
    device = emails.first()
    if device is None:
        device, _ = EmailDevice.objects.get_or_create(user=user, defaults={
            "name": "email", "confirmed": True})
    return device


def second_factor_method(user: User) -> str:
    return "totp" if TOTPDevice.objects.filter(user=user, confirmed=True).exists() else "email"


def _email_code_send(user: User, device: EmailDevice) -> None:
    minutes = settings.DDS_EMAIL_CODE_MINUTES
    code = device.code_new(length=8, valid_secs=minutes * 60)
    mail_queue(
        subject="Your DDS login code",
        body=(f"Hello {user.name},\n\nYour DDS login code is {code}. It is valid for "
              f"{minutes} minutes and can be used once.\n\nIf you did not try to log in, "
              "change your password.\n"),
        to=[user.email])


@dataclass
class LoginChallenge:
    session: AuthSession
    session_key: bytes = field(repr=False)
    method: str


def login_start(*, username: str, password: str, kind: str,
                ip: str | None = None) -> LoginChallenge:
    """Step 1: check the password, derive the KEK into a pending session, send the code."""
    login_lock_check(username=username, ip=ip)
    user = User.objects.filter(username=username).first()
    if user is None:
        with kdf_slot(password_hasher_memory_kib()):
            make_password(password)  # same cost as a real check: no timing hint of existence
        ok = False
    else:
        ok = user.check_password(password) and user.is_active
    if not ok:
        locked = login_failure_record(username=username, ip=ip, stage="password", user=user)
        _raise_if_locked_now(locked)
        raise InvalidCredentials()
    try:
        kek = user_kek_derive(user=user, password=password)
    except KeyAccessError:
        kek = None  # an account without a key pair can log in but has no keys to use
    return _login_challenge(user=user, kek=kek, kind=kind, ip=ip)


@transaction.atomic
def _login_challenge(*, user: User, kek: bytes | None, kind: str,
                     ip: str | None) -> LoginChallenge:
    session = AuthSession(user=user, kind=kind, state=AuthSessionState.PENDING, ip=ip,
                          expires_at=timezone.now() + PENDING_LIFETIME)
    session_key = session_key_new()
    if kek is not None:
        session.kek_sealed = kek_seal(session=session, session_key=session_key, kek=kek)
    session.save()
    device = second_factor_device(user)
    method = "totp" if isinstance(device, TOTPDevice) else "email"
    if method == "email":
        _email_code_send(user, device)
    audit_record(action="auth.password_ok", actor=user, target=user.username, ip=ip,
                 details={"kind": kind, "method": method})
    return LoginChallenge(session=session, session_key=session_key, method=method)


def login_code_resend(*, session: AuthSession, ip: str | None = None) -> None:
    """Send a fresh email code for a pending login (the old one stops working)."""
    login_lock_check(username=session.user.username, ip=ip)
    device = second_factor_device(session.user)
    if isinstance(device, EmailDevice):
        with transaction.atomic():
            _email_code_send(session.user, device)
            audit_record(action="auth.code_resend", actor=session.user,
                         target=session.user.username, ip=ip)


def _code_clean(code) -> str:
    return str(code or "").strip().replace(" ", "")


def login_verify(*, session: AuthSession, code: str, ip: str | None = None) -> AuthSession:
    """Step 2: check the second factor; the pending session becomes a live one."""
    user = session.user
    login_lock_check(username=user.username, ip=ip)
    code = _code_clean(code)
    with transaction.atomic():
        # Codes are single use: the email code is cleared, and a TOTP device remembers the
        # last accepted time step; the row lock makes that hold for parallel requests.
        device = second_factor_device(user, for_update=True)
        expected = 6 if isinstance(device, TOTPDevice) else 8
        ok = code.isdigit() and len(code) == expected and device.verify_token(code)
    if not ok:
        locked = login_failure_record(username=user.username, ip=ip, stage="code", user=user)
        if locked:
            auth_session_end(session=session, reason="locked")
        _raise_if_locked_now(locked)
        raise InvalidCode()
    return _login_complete(session=session, ip=ip)


@transaction.atomic
def _login_complete(*, session: AuthSession, ip: str | None) -> AuthSession:
    now = timezone.now()
    if session.kind == AuthSessionKind.API:
        max_age = settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"]
    else:
        max_age = timedelta(seconds=settings.DDS_PORTAL_SESSION_MAX_AGE)
    session.state = AuthSessionState.ACTIVE
    session.expires_at = now + max_age
    session.save(update_fields=["state", "expires_at"])
    user = session.user
    user.last_login = now
    user.save(update_fields=["last_login"])
    LoginThrottle.objects.filter(key=_throttle_keys(user.username, None)[0][0]).delete()
    audit_record(action="auth.login", actor=user, target=user.username, ip=ip,
                 details={"kind": session.kind, "session": session.public_id})
    return session


@dataclass
class Refreshed:
    session: AuthSession
    carried_key: str


def auth_session_refresh(*, raw_refresh: str, ip: str | None = None) -> Refreshed:
    """Rotate a refresh token. A token that was already used ends its whole session."""
    from rest_framework_simplejwt.exceptions import TokenError
    from rest_framework_simplejwt.settings import api_settings as jwt_settings
    from rest_framework_simplejwt.tokens import RefreshToken

    try:
        token = RefreshToken(raw_refresh)
    except TokenError:
        raise TokenInvalid()
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
            audit_record(action="auth.refresh", actor=session.user,
                         target=session.user.username, ip=ip)
    if reused:
        raise TokenInvalid("This refresh token was already used; the session is ended. "
                           "Log in again.")
    return Refreshed(session=session, carried_key=str(token.get("ks", "")))


@transaction.atomic
def auth_session_end(*, session: AuthSession, reason: str, ip: str | None = None) -> None:
    AuthSession.objects.filter(pk=session.pk).update(ended_at=timezone.now(), kek_sealed=None)
    audit_record(action="auth.session_end", actor=session.user, target=session.user.username,
                 ip=ip, details={"reason": reason, "session": session.public_id})


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
    audit_record(action="auth.sessions_end", actor=by or user, target=user.username, ip=ip,
                 details={"reason": reason, "sessions": ended})
    return ended


def auth_logout(*, user: User, ip: str | None = None) -> int:
    """Logout ends every session of the user (the issue's rule: one logout, all devices)."""
    return auth_sessions_end(user=user, reason="logout", ip=ip)


# --------------------------------------------------------------------------- invites


@dataclass
class InviteResult:
    kind: str  # "invited" (email with a registration link) or "added" (existing user)
    email: str
    invite: Invite | None = None
    user: User | None = None


def _invite_scope(*, by: User, role: str, unit: Unit | None, project: Project | None,
                  is_owner: bool) -> tuple[Unit | None, Project | None]:
    """Who may invite whom (issue rule 1). Returns the invite's (unit, project)."""
    if role not in Role.values:
        raise ValidationError({"role": "Unknown role."})
    if is_owner and (role != Role.RESEARCHER or project is None):
        raise ValidationError({"is_owner": "Only a researcher invited to a project can be "
                                           "its owner."})
    if by.role == Role.SUPER_ADMIN:
        if project is not None:
            raise PermissionDenied("A Super Admin holds no project keys, so cannot invite to "
                                   "a project; ask the unit's staff.")
        if role in UNIT_ROLES and unit is None:
            raise ValidationError({"unit": "A unit role needs a unit."})
        return (unit if role in UNIT_ROLES else None), None
    if role in UNIT_ROLES:
        allowed = {Role.UNIT_ADMIN: UNIT_ROLES, Role.UNIT_PERSONNEL: (Role.UNIT_PERSONNEL,)}
        if role not in allowed.get(by.role, ()):
            raise PermissionDenied(f"You may not invite a {Role(role).label}.")
        if unit is not None and unit.pk != by.unit_id:
            raise PermissionDenied("You may only invite staff to your own unit.")
        if project is not None:
            raise ValidationError({"project": "Staff have access through their unit."})
        return by.unit, None
    if role != Role.RESEARCHER:
        raise PermissionDenied(f"You may not invite a {Role(role).label}.")
    if project is None:
        if by.role == Role.RESEARCHER:
            raise PermissionDenied("Researchers may not invite users.")
        raise ValidationError({"project": "Invite a researcher to one of your unit's "
                                          "projects."})
    # Staff of the project's unit, or the project's owners (Need.OWNER covers both).
    project_get_for_user(user=by, public_id=project.public_id, need=Need.OWNER)
    return None, project


def invite_create(*, email: str, role: str, by: User, by_kek: bytes | None = None,
                  unit: Unit | None = None, project: Project | None = None,
                  is_owner: bool = False, ip: str | None = None) -> InviteResult:
    """Invite someone (or add an existing researcher to the project).

    The invite email is queued in the same transaction (mail.services): it is sent only
    if the invite commits, and retried until the mail server takes it.
    """
    email = (email or "").strip()
    unit, project = _invite_scope(by=by, role=role, unit=unit, project=project,
                                  is_owner=is_owner)
    if project is not None and by_kek is None:
        raise KeyAccessError("granting project access needs your unlocked keys; log in again")
    existing = User.objects.filter(email__iexact=email).first()
    if existing is not None:
        return _invite_existing(user=existing, role=role, project=project, by=by,
                                by_kek=by_kek, is_owner=is_owner, ip=ip)
    pending = _invite_pending_elsewhere(email=email, project=project)
    if pending is not None:
        return _invite_add_project(invite=pending, role=role, project=project, by=by,
                                   by_kek=by_kek, is_owner=is_owner, ip=ip)
    keypair = user_keypair_new()  # RSA before the transaction: no lock held across it
    with transaction.atomic():
        # Re-inviting replaces an expired invite, or one that only carries this project.
        Invite.objects.filter(email__iexact=email).delete()
        invite = Invite(email=email, role=role, unit=unit, project=project,
                        is_owner=is_owner, created_by=by,
                        expires_at=timezone.now() + timedelta(days=settings.DDS_INVITE_DAYS))
        invite.full_clean(exclude=["token_hash"])
        invite.save()
        token = secrets.token_urlsafe(32)
        invite_keys_create(invite=invite, token=token, keypair=keypair)
        if project is not None:
            invite_access_grant(invite=invite, project=project, granter=by,
                                granter_kek=by_kek, is_owner=is_owner)
        audit_record(action="invite.create", actor=by, project=project, target=email, ip=ip,
                     details={"role": role, "unit": unit.name if unit else None,
                              "is_owner": is_owner})
        where = f" to project {project.public_id} ({project.title})" if project else ""
        mail_queue(
            subject="Your invitation to the Data Delivery System",
            body=(f"{by.name} invited you to the Data Delivery System as "
                  f"{'Project Owner' if is_owner else Role(role).label}{where}.\n\n"
                  f"Register within {settings.DDS_INVITE_DAYS} days at:\n"
                  f"{_link('/accounts/register/?t=' + token)}\n"),
            to=[email])
    return InviteResult(kind="invited", email=email, invite=invite)


def _invite_pending_elsewhere(*, email: str, project: Project | None) -> Invite | None:
    """A live invite for ``email`` that holds keys of *other* projects.

    Replacing it would destroy those grants (only the invitee's token opens its key), so
    it is extended instead of replaced.
    """
    invite = Invite.objects.filter(email__iexact=email, expires_at__gt=timezone.now()).first()
    if invite is None:
        return None
    others = invite.project_keys.exclude(project=project) if project else invite.project_keys
    return invite if others.exists() else None


class InviteConflict(DDSError):
    status_code = status.HTTP_409_CONFLICT
    code = "invite_pending"


@transaction.atomic
def _invite_add_project(*, invite: Invite, role: str, project: Project | None, by: User,
                        by_kek: bytes | None, is_owner: bool, ip: str | None) -> InviteResult:
    if project is None or role != invite.role:
        raise InviteConflict(
            f"{invite.email} already has a pending invitation (as "
            f"{Role(invite.role).label}, valid until {invite.expires_at:%Y-%m-%d}); it must "
            "be used or expire before a different one can be sent.")
    invite_access_grant(invite=invite, project=project, granter=by, granter_kek=by_kek,
                        is_owner=is_owner)
    audit_record(action="invite.add_project", actor=by, project=project, target=invite.email,
                 ip=ip, details={"is_owner": is_owner})
    mail_queue(
        subject=f"You have also been given access to {project.public_id}",
        body=(f"{by.name} gave you access to project {project.public_id} ({project.title}) "
              "in the Data Delivery System. Register with the invitation link you already "
              f"received (valid until {invite.expires_at:%Y-%m-%d}); this project will be "
              "there too.\n"),
        to=[invite.email])
    return InviteResult(kind="invited", email=invite.email, invite=invite)


@transaction.atomic
def _invite_existing(*, user: User, role: str, project: Project | None, by: User,
                     by_kek: bytes | None, is_owner: bool, ip: str | None) -> InviteResult:
    if project is None:
        raise ValidationError({"email": "An account with this email address already exists."})
    if user.role != Role.RESEARCHER:
        raise ValidationError({"email": "This account is unit staff or an operator, not a "
                                        "researcher."})
    membership, created = ProjectMembership.objects.get_or_create(
        project=project, user=user, defaults={"is_owner": is_owner})
    if is_owner and not membership.is_owner:
        membership.is_owner = True
        membership.save(update_fields=["is_owner"])
    project_access_grant(project=project, grantee=user, granter=by, granter_kek=by_kek)
    audit_record(action="project.member_add", actor=by, project=project, target=user.username,
                 ip=ip, details={"is_owner": membership.is_owner, "new": created})
    mail_queue(subject=f"You now have access to {project.public_id}",
                    body=f"{by.name} gave you access to project {project.public_id} "
                         f"({project.title}) in the Data Delivery System.\n",
                    to=[user.email])
    return InviteResult(kind="added", email=user.email, user=user)


def invite_get_by_token(token: str, *, for_update: bool = False) -> Invite | None:
    """A valid (unexpired) invite for an emailed token, or None."""
    if not token or len(token) > 200:
        return None
    qs = Invite.objects.select_related("project", "unit", "created_by")
    if for_update:
        qs = qs.select_for_update(of=("self",))
    invite = qs.filter(token_hash=invite_token_hash(token)).first()
    if invite is None or invite.is_expired:
        return None
    return invite


@transaction.atomic
def invites_delete_expired(*, now=None) -> int:
    """Remove expired invites (and with them their wrapped project keys)."""
    expired = Invite.objects.filter(expires_at__lte=now or timezone.now())
    emails = list(expired.values_list("email", flat=True)[:1000])
    deleted = expired.delete()[1].get("accounts.Invite", 0)
    if deleted:
        audit_record(action="invite.expire", details={"count": deleted,
                                                      "emails": emails[:50]})
    return deleted


# --------------------------------------------------------------------------- registration


def username_check(username: str) -> None:
    USERNAME_VALIDATOR(username)
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError({"username": "This username is taken."})


def user_register(*, token: str, username: str, name: str, password: str,
                  ip: str | None = None) -> User:
    """Create the invited account, its key pair, and move the invite's project keys to it."""
    if invite_get_by_token(token) is None:  # cheap refusal before the slow key pair
        raise LinkInvalid("The invite link is not valid or has expired.")
    # RSA before the transaction, so the invite's row lock is not held across it.
    return _user_register(token=token, username=username, name=name, password=password,
                          ip=ip, keypair=user_keypair_new())


@transaction.atomic
def _user_register(*, token: str, username: str, name: str, password: str,
                   ip: str | None, keypair: tuple[bytes, bytes]) -> User:
    invite = invite_get_by_token(token, for_update=True)
    if invite is None:
        raise LinkInvalid("The invite link is not valid or has expired.")
    username, name = (username or "").strip(), (name or "").strip()
    try:
        username_check(username)
    except ValidationError as exc:
        raise ValidationError({"username": exc.messages})
    if not name or len(name) > 255:
        raise ValidationError({"name": "Give your name (at most 255 characters)."})
    names_check(name=name)
    if User.objects.filter(email__iexact=invite.email).exists():
        raise LinkInvalid("An account already exists for this invite's email address.")
    try:
        validate_password(password, User(username=username, email=invite.email, name=name))
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages})
    owners = {row.project_id: row.is_owner for row in invite.project_keys.all()}
    user = user_create(username=username, email=invite.email, name=name, password=password,
                       role=invite.role, unit=invite.unit, by=invite.created_by,
                       keypair=keypair)
    projects = invite_keys_transfer(invite=invite, token=token, user=user)
    if user.role == Role.RESEARCHER:
        for project in projects:
            ProjectMembership.objects.get_or_create(
                project=project, user=user, defaults={"is_owner": owners.get(project.pk, False)})
    EmailDevice.objects.create(user=user, name="email", confirmed=True)
    audit_record(action="user.register", actor=user, target=user.username, ip=ip,
                 details={"role": user.role, "projects": [p.public_id for p in projects],
                          "invited_by": invite.created_by.username if invite.created_by else None})
    invite.delete()
    return user


# --------------------------------------------------------------------------- passwords


def _password_validate(password: str, user: User, field_name: str = "new_password") -> None:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ValidationError({field_name: exc.messages})


def user_password_change(*, user: User, current_password: str, new_password: str,
                         keep: AuthSession | None = None, keep_key: bytes | None = None,
                         ip: str | None = None) -> None:
    """Change the password: same key pair re-wrapped (project access kept); every other
    session ends; the caller's session keeps working with the new KEK."""
    login_lock_check(username=user.username, ip=ip)
    if not user.check_password(current_password):
        locked = login_failure_record(username=user.username, ip=ip, stage="password_change",
                                      user=user)
        _raise_if_locked_now(locked)
        raise ValidationError({"current_password": "The current password is wrong."})
    _password_validate(new_password, user)
    with transaction.atomic():
        has_keys = bool(user.private_key_encrypted)
        new_kek = None
        if has_keys:
            kek = user_kek_derive(user=user, password=current_password)
            new_kek = user_keys_rewrap(user=user, kek=kek, new_password=new_password)
        user.set_password(new_password)
        user.save(update_fields=["password"])
        auth_sessions_end(user=user, reason="password_change", keep=keep, ip=ip)
        if keep is not None and keep_key is not None and new_kek is not None:
            keep.kek_sealed = kek_seal(session=keep, session_key=keep_key, kek=new_kek)
            keep.save(update_fields=["kek_sealed"])
        audit_record(action="user.password_change", actor=user, target=user.username, ip=ip)
        mail_queue(subject="Your DDS password was changed",
                        body="Your Data Delivery System password was changed. If this was "
                             "not you, reset your password and tell your unit.\n",
                        to=[user.email])


def password_reset_link(user: User) -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return _link(f"/accounts/reset/{uid}/{default_token_generator.make_token(user)}/")


@transaction.atomic
def user_password_reset_request(*, email: str, ip: str | None = None) -> None:
    """Email a 1-hour reset link if the address has an active account (no answer either way)."""
    email = (email or "").strip()
    user = User.objects.filter(email__iexact=email, is_active=True).first()
    # Per target address, whoever asks: a mailbox is not flooded from many addresses.
    # Over the rate the answer is the same and nothing is sent (no hint either way).
    allowed = throttle_allow("password_reset_address", email.lower())
    audit_record(action="user.password_reset_request", actor=user,
                 target=user.username if user else "", ip=ip,
                 details={} if allowed else {"throttled": True})
    if user is not None and allowed:
        mail_queue(
            subject="Reset your DDS password",
            body=("Someone asked to reset your Data Delivery System password. Open this "
                  f"link within an hour to choose a new one:\n{password_reset_link(user)}\n\n"
                  "Resetting makes a new key pair: you lose access to project data until "
                  "someone with access restores it (an \"access fix\").\n"),
            to=[user.email])


def password_reset_user(uid: str, token: str) -> User | None:
    """The user a reset link is for, if the link is valid (unused, under an hour old)."""
    try:
        pk = int(force_str(urlsafe_base64_decode(uid or "")))
    except (TypeError, ValueError, OverflowError, UnicodeDecodeError):
        return None
    user = User.objects.filter(pk=pk, is_active=True).first()
    if user is None or not default_token_generator.check_token(user, token or ""):
        return None
    return user


def _reset_notify_recipients(user: User) -> list[str]:
    """The unit's admins for staff; each project's owners (or its unit admins) for others."""
    if user.unit_id:
        qs = User.objects.filter(unit_id=user.unit_id, role=Role.UNIT_ADMIN, is_active=True)
        return sorted(set(qs.exclude(pk=user.pk).values_list("email", flat=True)))
    emails: set[str] = set()
    for membership in user.memberships.select_related("project"):
        owners = ProjectMembership.objects.filter(project=membership.project, is_owner=True,
                                                  user__is_active=True).exclude(user=user)
        found = set(owners.values_list("user__email", flat=True))
        if not found:
            found = set(User.objects.filter(unit_id=membership.project.unit_id,
                                            role=Role.UNIT_ADMIN, is_active=True)
                        .values_list("email", flat=True))
        emails |= found
    return sorted(emails)


def user_password_reset(*, uid: str, token: str, new_password: str,
                        ip: str | None = None) -> User:
    """Reset from the emailed link: new password, new key pair, project keys lost."""
    user = password_reset_user(uid, token)
    if user is None:
        raise LinkInvalid("The reset link is not valid, already used or older than an hour.")
    _password_validate(new_password, user)
    # The RSA pair before the transaction: no row lock is held across it (docs/locking.md).
    return _user_password_reset(uid=uid, token=token, new_password=new_password, ip=ip,
                                keypair=user_keypair_new())


@transaction.atomic
def _user_password_reset(*, uid: str, token: str, new_password: str, ip: str | None,
                         keypair: tuple[bytes, bytes]) -> User:
    user = password_reset_user(uid, token)  # again: the link is single use
    if user is None:
        raise LinkInvalid("The reset link is not valid, already used or older than an hour.")
    lost = user_keys_reset(user=user, new_password=new_password, keypair=keypair)
    user.set_password(new_password)
    user.save(update_fields=["password"])
    auth_sessions_end(user=user, reason="password_reset", ip=ip)
    audit_record(action="user.password_reset", actor=user, target=user.username, ip=ip,
                 details={"project_keys_lost": lost})
    if lost:
        mail_queue(
            subject=f"{user.username} reset their DDS password",
            body=(f"{user.name} ({user.username}) reset their password and lost access to "
                  f"the data of {lost} project(s). If you have access, restore theirs with "
                  "an access fix.\n"),
            to=_reset_notify_recipients(user))
    return user


@transaction.atomic
def user_access_fix(*, user: User, by: User, by_kek: bytes, project: Project | None = None,
                    ip: str | None = None) -> list[Project]:
    """Re-grant project keys to a user who reset their password, from the caller's keys."""
    fixed = project_access_fix(user=user, granter=by, granter_kek=by_kek, project=project)
    for p in fixed:
        audit_record(action="project.access_fix", actor=by, project=p, target=user.username,
                     ip=ip)
    if not fixed:
        audit_record(action="project.access_fix", actor=by, target=user.username, ip=ip,
                     details={"projects": 0})
    return fixed


# --------------------------------------------------------------------------- confirmations


_CONFIRM_SALT = "accounts.confirm"
CONFIRM_MAX_AGE = 60 * 60


def confirmation_token(*, user: User, action: str) -> str:
    # Bound to the session generation: a password change or logout voids pending links.
    return signing.dumps({"u": user.pk, "a": action, "g": user.session_generation},
                         salt=_CONFIRM_SALT)


def confirmation_check(*, user: User, action: str, token: str) -> None:
    try:
        data = signing.loads(token or "", salt=_CONFIRM_SALT, max_age=CONFIRM_MAX_AGE)
    except signing.BadSignature:
        raise LinkInvalid()
    if data != {"u": user.pk, "a": action, "g": user.session_generation}:
        raise LinkInvalid()


# --------------------------------------------------------------------------- authenticator


@transaction.atomic
def totp_setup_start(*, user: User, ip: str | None = None) -> TOTPDevice:
    """A new, unconfirmed authenticator device; it counts only after a correct code."""
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    device = TOTPDevice.new(user=user)
    audit_record(action="auth.totp_setup_start", actor=user, target=user.username, ip=ip)
    return device


def totp_setup_confirm(*, user: User, code: str, ip: str | None = None) -> TOTPDevice:
    login_lock_check(username=user.username, ip=ip)
    code = _code_clean(code)
    with transaction.atomic():
        device = (TOTPDevice.objects.select_for_update()
                  .filter(user=user, confirmed=False).first())
        if device is None:
            raise ValidationError({"code": "Start the authenticator set-up first."})
        ok = code.isdigit() and len(code) == 6 and device.verify_token(code)
    if not ok:
        locked = login_failure_record(username=user.username, ip=ip, stage="totp_setup",
                                      user=user)
        _raise_if_locked_now(locked)
        raise ValidationError({"code": "The code is wrong; check the app's clock and try "
                                       "again."})
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=True).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        audit_record(action="auth.totp_enable", actor=user, target=user.username, ip=ip)
        mail_queue(subject="Authenticator app enabled",
                        body="Your DDS logins now need a code from your authenticator app.\n",
                        to=[user.email])
    return device


@transaction.atomic
def totp_disable_request(*, user: User, ip: str | None = None) -> None:
    if not TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        raise ValidationError("No authenticator app is set up.")
    token = confirmation_token(user=user, action="totp_disable")
    audit_record(action="auth.totp_disable_request", actor=user, target=user.username, ip=ip)
    mail_queue(subject="Turn off your authenticator app",
                    body=("Open this link within an hour to turn off the authenticator app; "
                          "logins will then use email codes:\n"
                          f"{_link('/accounts/totp/disable/' + token + '/')}\n"),
                    to=[user.email])


@transaction.atomic
def totp_disable(*, user: User, token: str, ip: str | None = None) -> None:
    confirmation_check(user=user, action="totp_disable", token=token)
    TOTPDevice.objects.filter(user=user).delete()
    audit_record(action="auth.totp_disable", actor=user, target=user.username, ip=ip)


@transaction.atomic
def user_second_factor_reset(*, user: User, by: User, ip: str | None = None) -> bool:
    """Support tool for a Super Admin: a user who lost their authenticator app gets email
    codes again. Removes the app, voids any pending code and ends the user's sessions;
    audited and emailed to the user. No secret is read or shown. Returns whether an
    authenticator app was removed."""
    if by.role != Role.SUPER_ADMIN:
        raise PermissionDenied("Only a Super Admin may reset a user's second factor.")
    removed = TOTPDevice.objects.filter(user=user).delete()[0] > 0
    EmailDevice.objects.filter(user=user).update(code_hash="", valid_until=None)
    auth_sessions_end(user=user, by=by, reason="second_factor_reset", ip=ip)
    audit_record(action="auth.second_factor_reset", actor=by, target=user.username, ip=ip,
                 details={"authenticator_removed": removed})
    mail_queue(subject="Your DDS second factor was reset",
               body=(f"Hello {user.name},\n\nAn operator reset the second factor of your "
                     "Data Delivery System account: logins now use codes sent to this "
                     "address, and your open sessions were ended. You can set up an "
                     "authenticator app again on your account page.\n\nIf you did not "
                     "ask for this, tell your unit or the operators at once.\n"),
               to=[user.email])
    return removed


# --------------------------------------------------------------------------- self-delete


def _last_admins_check(user: User, *, by: User | None = None) -> None:
    """A unit keeps at least two active Unit Admins (projects need them; see
    projects.services.unit_admin_check): none of its last two may leave."""
    if user.role == Role.UNIT_ADMIN and user.is_active and User.objects.filter(
            unit_id=user.unit_id, role=Role.UNIT_ADMIN, is_active=True).count() <= 2:
        if by is None or by.pk == user.pk:
            raise ValidationError("A unit needs at least two admins: as one of its last two, "
                                  "you cannot delete your account. Ask for another admin "
                                  "first.")
        raise ValidationError(f"{user.username} is one of the unit's last two active Unit "
                              "Admins; a unit needs at least two. Invite another admin first.")


@transaction.atomic
def user_self_delete_request(*, user: User, ip: str | None = None) -> None:
    _last_admins_check(user)
    token = confirmation_token(user=user, action="delete")
    audit_record(action="user.self_delete_request", actor=user, target=user.username, ip=ip)
    mail_queue(subject="Confirm deleting your DDS account",
                    body=("Open this link within an hour to delete your account. This cannot "
                          f"be undone:\n{_link('/accounts/delete/' + token + '/')}\n"),
                    to=[user.email])


@transaction.atomic
def user_self_delete(*, user: User, token: str, ip: str | None = None) -> None:
    confirmation_check(user=user, action="delete", token=token)
    _last_admins_check(user)
    audit_record(action="user.self_delete", actor=user, target=user.username, ip=ip,
                 details={"role": user.role})
    user.delete()
