"""The authenticator app (TOTP): set-up, removal by the user, reset by an operator."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from accounts.errors import PasswordRequired
from accounts.models import TOTP_DIGITS, EmailDevice, TOTPDevice, User
from accounts.selectors import is_operator
from accounts.services.auth import auth_sessions_end, code_clean
from accounts.services.links import confirmation_check, confirmation_email
from accounts.services.lockout import login_failure_refuse, login_lock_check
from audit.actions import AuditAction
from audit.services import audit_record
from mail.services import mail_send_template

_DISABLE = "totp_disable"  # the confirmation link's action


@dataclass(frozen=True)
class TotpProvisioning:
    """What an authenticator app needs, shown once at set-up: the otpauth:// URI (the QR
    code's content) and the same secret in base32 for typing in by hand."""

    uri: str
    secret: str
    digits: int
    period: int

    def __repr__(self) -> str:  # never the secret in a log line or a traceback
        return f"TotpProvisioning(digits={self.digits}, period={self.period})"


def totp_provisioning(*, device: TOTPDevice) -> TotpProvisioning:
    """The provisioning data of an unconfirmed device (the portal's page and the API's
    set-up answer show the same)."""
    return TotpProvisioning(uri=device.config_url,
                            secret=base64.b32encode(device.bin_key).decode(),
                            digits=device.digits, period=device.step)


def totp_replace_check(*, user: User, password: str | None, ip: str | None = None) -> None:
    """Over the API, replacing a confirmed authenticator app needs the password again.

    An API token lives for days in a file on some machine; with it alone someone could
    swap in their own app and keep access after the user changed the password. (Removing
    the app is confirmed by email; a portal login is bound to its browser.) Wrong
    passwords count towards the login lockout.
    """
    if not TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        return
    login_lock_check(username=user.username, ip=ip)
    if password and user.check_password(password):
        return
    if password:
        login_failure_refuse(username=user.username, ip=ip, stage="totp_replace", user=user)
    raise PasswordRequired("An authenticator app is already set up: give your password to "
                           "replace it." if not password else "The password is wrong.")


@transaction.atomic
def totp_setup_start(*, user: User, ip: str | None = None) -> TOTPDevice:
    """A new, unconfirmed authenticator device; it counts only after a correct code."""
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    device = TOTPDevice.new(user=user)
    audit_record(action=AuditAction.AUTH_TOTP_SETUP_START, actor=user, target=user.username,
                 ip=ip)
    return device


def totp_setup_confirm(*, user: User, code: str, ip: str | None = None) -> TOTPDevice:
    """The first correct code confirms the new device; it replaces any earlier one."""
    login_lock_check(username=user.username, ip=ip)
    code = code_clean(code)
    with transaction.atomic():
        device: TOTPDevice | None = (TOTPDevice.objects.select_for_update()
                                     .filter(user=user, confirmed=False).first())
        if device is None:
            raise ValidationError({"code": "Start the authenticator set-up first."})
        ok = code.isdigit() and len(code) == TOTP_DIGITS and device.verify_token(code)
    if not ok:
        login_failure_refuse(username=user.username, ip=ip, stage="totp_setup", user=user)
        raise ValidationError({"code": "The code is wrong; check the app's clock and try "
                                       "again."})
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=True).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        audit_record(action=AuditAction.AUTH_TOTP_ENABLE, actor=user, target=user.username,
                     ip=ip)
        mail_send_template(template="accounts/totp_enabled", context={}, to=[user.email])
    return device


@transaction.atomic
def totp_disable_request(*, user: User, ip: str | None = None) -> None:
    """Email a one-hour link that turns the authenticator app off."""
    if not TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        raise ValidationError("No authenticator app is set up.")
    audit_record(action=AuditAction.AUTH_TOTP_DISABLE_REQUEST, actor=user,
                 target=user.username, ip=ip)
    confirmation_email(user=user, action=_DISABLE, template="accounts/totp_disable",
                       path="/accounts/totp/disable/")


@transaction.atomic
def totp_disable(*, user: User, token: str, ip: str | None = None) -> None:
    confirmation_check(user=user, action=_DISABLE, token=token)
    TOTPDevice.objects.filter(user=user).delete()
    audit_record(action=AuditAction.AUTH_TOTP_DISABLE, actor=user, target=user.username, ip=ip)


@transaction.atomic
def user_second_factor_reset(*, user: User, by: User, ip: str | None = None) -> bool:
    """Support tool for a Super Admin: a user who lost their authenticator app gets email
    codes again. Removes the app, voids any pending code and ends the user's sessions;
    audited and emailed to the user. No secret is read or shown. Returns whether an
    authenticator app was removed."""
    if not is_operator(by):
        raise PermissionDenied("Only a Super Admin may reset a user's second factor.")
    removed: bool = TOTPDevice.objects.filter(user=user).delete()[0] > 0
    EmailDevice.objects.filter(user=user).update(code_hash="", valid_until=None)
    auth_sessions_end(user=user, by=by, reason="second_factor_reset", ip=ip)
    audit_record(action=AuditAction.AUTH_SECOND_FACTOR_RESET, actor=by, target=user.username,
                 ip=ip, details={"authenticator_removed": removed})
    mail_send_template(template="accounts/second_factor_reset", context={"user": user},
                       to=[user.email])
    return removed
