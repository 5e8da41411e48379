"""Passwords: change (same key pair), reset by email link (a new key pair)."""

from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

from accounts.errors import LinkInvalid
from accounts.models import AuthSession, User
from accounts.selectors import password_reset_notice_recipients
from accounts.services.auth import auth_sessions_end
from accounts.services.links import site_link
from accounts.services.lockout import login_failure_refuse, login_lock_check
from accounts.sessions import kek_seal
from audit.actions import AuditAction
from audit.services import audit_record
from core.throttling import throttle_allow
from keys.services import user_kek_derive, user_keypair_new, user_keys_reset, user_keys_rewrap
from mail.services import mail_send_template

_RESET_INVALID = "The reset link is not valid, already used or older than an hour."


def _password_validate(password: str, user: User, field_name: str = "new_password") -> None:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ValidationError({field_name: exc.messages}) from exc


# --------------------------------------------------------------------------- change


def user_password_change(*, user: User, current_password: str, new_password: str,
                         keep: AuthSession | None = None, keep_key: bytes | None = None,
                         ip: str | None = None) -> None:
    """Change the password: same key pair re-wrapped (project access kept); every other
    session ends; the caller's session keeps working with the new KEK."""
    login_lock_check(username=user.username, ip=ip)
    if not user.check_password(current_password):
        login_failure_refuse(username=user.username, ip=ip, stage="password_change",
                             user=user)
        raise ValidationError({"current_password": "The current password is wrong."})
    _password_validate(new_password, user)
    with transaction.atomic():
        new_kek = _keys_rewrap(user=user, current_password=current_password,
                               new_password=new_password)
        user.set_password(new_password)
        user.save(update_fields=["password"])
        auth_sessions_end(user=user, reason="password_change", keep=keep, ip=ip)
        if keep is not None and keep_key is not None and new_kek is not None:
            keep.kek_sealed = kek_seal(session=keep, session_key=keep_key, kek=new_kek)
            keep.save(update_fields=["kek_sealed"])
        audit_record(action=AuditAction.USER_PASSWORD_CHANGE, actor=user,
                     target=user.username, ip=ip)
        mail_send_template(template="accounts/password_changed", context={}, to=[user.email])


def _keys_rewrap(*, user: User, current_password: str, new_password: str) -> bytes | None:
    """The key pair re-wrapped under the new password; its new KEK (None: no key pair)."""
    if not user.private_key_encrypted:
        return None
    kek = user_kek_derive(user=user, password=current_password)
    return user_keys_rewrap(user=user, kek=kek, new_password=new_password)


# --------------------------------------------------------------------------- reset


def password_reset_link(user: User) -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return site_link(f"/accounts/reset/{uid}/{default_token_generator.make_token(user)}/")


@transaction.atomic
def user_password_reset_request(*, email: str, ip: str | None = None) -> None:
    """Email a 1-hour reset link if the address has an active account (no answer either way)."""
    email = (email or "").strip()
    user = User.objects.filter(email__iexact=email, is_active=True).first()
    # Per target address, whoever asks: a mailbox is not flooded from many addresses.
    # Over the rate the answer is the same and nothing is sent (no hint either way).
    allowed = throttle_allow("password_reset_address", email.lower())
    audit_record(action=AuditAction.USER_PASSWORD_RESET_REQUEST, actor=user,
                 target=user.username if user else "", ip=ip,
                 details={} if allowed else {"throttled": True})
    if user is not None and allowed:
        mail_send_template(template="accounts/password_reset", to=[user.email],
                           context={"link": password_reset_link(user)})


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


def user_password_reset(*, uid: str, token: str, new_password: str,
                        ip: str | None = None) -> User:
    """Reset from the emailed link: new password, new key pair, project keys lost."""
    user = password_reset_user(uid, token)
    if user is None:
        raise LinkInvalid(_RESET_INVALID)
    _password_validate(new_password, user)
    # The RSA pair before the transaction: no row lock is held across it (docs/locking.md).
    return _user_password_reset(uid=uid, token=token, new_password=new_password, ip=ip,
                                keypair=user_keypair_new())


@transaction.atomic
def _user_password_reset(*, uid: str, token: str, new_password: str, ip: str | None,
                         keypair: tuple[bytes, bytes]) -> User:
    user = password_reset_user(uid, token)  # again: the link is single use
    if user is None:
        raise LinkInvalid(_RESET_INVALID)
    lost = user_keys_reset(user=user, new_password=new_password, keypair=keypair)
    user.set_password(new_password)
    user.save(update_fields=["password"])
    auth_sessions_end(user=user, reason="password_reset", ip=ip)
    audit_record(action=AuditAction.USER_PASSWORD_RESET, actor=user, target=user.username,
                 ip=ip, details={"project_keys_lost": lost})
    if lost:
        mail_send_template(template="accounts/password_reset_notice",
                           context={"user": user, "lost": lost},
                           to=password_reset_notice_recipients(user))
    return user
