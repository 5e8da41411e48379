"""Registration from an invite: the account, its key pair, the invite's project keys, and
the acceptance of the user agreement (accounts.services.agreement)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.errors import LinkInvalid
from accounts.models import USERNAME_VALIDATOR, EmailDevice, Invite, User
from accounts.selectors import invite_get_by_token
from accounts.services.agreement import agreement_accept, agreement_version_check
from accounts.services.users import user_create
from accounts.signals import invite_accepted
from audit.actions import AuditAction
from audit.services import audit_record
from core.input_guard import names_check
from keys.services import invite_keys_transfer, user_keypair_new

if TYPE_CHECKING:  # projects sits above accounts: the type only
    from projects.models import Project

_INVITE_INVALID = "The invite link is not valid or has expired."


def username_check(username: str) -> None:
    """Raise ``ValidationError`` unless ``username`` is well formed and free (any case)."""
    USERNAME_VALIDATOR(username)
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError({"username": "This username is taken."})


def user_register(*, token: str, username: str, name: str, password: str,
                  agreement_version: str | None, ip: str | None = None) -> User:
    """Create the invited account, its key pair, and move the invite's project keys to it.

    ``agreement_version`` is the version of the user agreement the person accepted (None:
    not accepted); it must be the one in force, and is recorded with the account.
    """
    if invite_get_by_token(token) is None:  # cheap refusal before the slow key pair
        raise LinkInvalid(_INVITE_INVALID)
    agreement_version_check(agreement_version)
    # RSA before the transaction, so the invite's row lock is not held across it.
    return _user_register(token=token, username=username, name=name, password=password,
                          agreement_version=agreement_version, ip=ip,
                          keypair=user_keypair_new())


def _registration_check(*, invite: Invite, username: str, name: str, password: str) -> None:
    """The chosen username, name and password (field errors), and a free email address."""
    try:
        username_check(username)
    except ValidationError as exc:
        raise ValidationError({"username": exc.messages}) from exc
    if not name or len(name) > 255:
        raise ValidationError({"name": "Give your name (at most 255 characters)."})
    names_check(name=name)
    if User.objects.filter(email__iexact=invite.email).exists():
        raise LinkInvalid("An account already exists for this invite's email address.")
    try:
        validate_password(password, User(username=username, email=invite.email, name=name))
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc


@transaction.atomic
def _user_register(*, token: str, username: str, name: str, password: str,
                   agreement_version: str | None, ip: str | None,
                   keypair: tuple[bytes, bytes]) -> User:
    invite = invite_get_by_token(token, for_update=True)
    if invite is None:
        raise LinkInvalid(_INVITE_INVALID)
    username, name = (username or "").strip(), (name or "").strip()
    _registration_check(invite=invite, username=username, name=name, password=password)
    owners = {row.project_id: row.is_owner for row in invite.project_keys.all()}
    user = user_create(username=username, email=invite.email, name=name, password=password,
                       role=invite.role, unit=invite.unit, by=invite.created_by,
                       keypair=keypair, ip=ip)
    projects: list[Project] = invite_keys_transfer(invite=invite, token=token, user=user)
    invite_accepted.send(sender=Invite, invite=invite, user=user,
                         projects=[(p, owners.get(p.pk, False)) for p in projects])
    EmailDevice.objects.create(user=user, name="email", confirmed=True)
    audit_record(action=AuditAction.USER_REGISTER, actor=user, target=user.username, ip=ip,
                 details={"role": user.role, "projects": [p.public_id for p in projects],
                          "invited_by": invite.created_by.username if invite.created_by
                          else None})
    agreement_accept(user=user, version=agreement_version, ip=ip, at_registration=True)
    invite.delete()
    return user
