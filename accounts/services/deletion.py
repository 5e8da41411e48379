"""A user deleting their own account (confirmed by an emailed link)."""

from __future__ import annotations

from django.db import transaction

from accounts.models import User
from accounts.services.links import confirmation_check, confirmation_email
from accounts.services.users import unit_admins_keep_check
from audit.actions import AuditAction
from audit.services import audit_record

_DELETE = "delete"  # the confirmation link's action


@transaction.atomic
def user_self_delete_request(*, user: User, ip: str | None = None) -> None:
    """Email a one-hour link that deletes the account (a unit's last admins may not)."""
    unit_admins_keep_check(user)
    audit_record(action=AuditAction.USER_SELF_DELETE_REQUEST, actor=user,
                 target=user.username, ip=ip)
    confirmation_email(user=user, action=_DELETE, template="accounts/delete_confirm",
                       path="/accounts/delete/")


@transaction.atomic
def user_self_delete(*, user: User, token: str, ip: str | None = None) -> None:
    confirmation_check(user=user, action=_DELETE, token=token)
    unit_admins_keep_check(user)
    audit_record(action=AuditAction.USER_SELF_DELETE, actor=user, target=user.username, ip=ip,
                 details={"role": user.role})
    user.delete()
