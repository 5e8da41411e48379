"""Accounts: creation, who manages whom, deactivation and deletion by an admin."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from accounts.models import UNIT_ROLES, Role, Unit, User
from accounts.services.auth import auth_sessions_end
from audit.actions import AuditAction
from audit.services import audit_record
from keys.services import user_keys_create

#: A unit keeps at least this many active Unit Admins: losing the only one's password
#: would lock the unit out of its projects' keys (projects.services.creation refuses new
#: projects below it).
MIN_UNIT_ADMINS = 2


@transaction.atomic
def user_create(*, username: str, email: str, name: str, password: str, role: str,
                unit: Unit | None = None, by: User | None = None,
                keypair: tuple[bytes, bytes] | None = None, ip: str | None = None) -> User:
    """Create an account with its key pair. Unit roles need a unit, others must not have one."""
    if role in UNIT_ROLES and unit is None:
        raise ValueError(f"a {Role(role).label} must belong to a unit")
    if role not in UNIT_ROLES:
        unit = None
    user = User.objects.create_user(username=username, email=email, password=password,
                                    name=name, role=role, unit=unit)
    user_keys_create(user=user, password=password, keypair=keypair)
    audit_record(action=AuditAction.USER_CREATE, actor=by or user, target=user.username,
                 ip=ip, details={"role": role, "unit": unit.name if unit else None})
    return user


def user_manage_check(*, user: User, by: User) -> None:
    """Super Admins manage anyone; Unit Admins the staff of their own unit."""
    if by.role == Role.SUPER_ADMIN:
        return
    if by.role == Role.UNIT_ADMIN and user.unit_id and user.unit_id == by.unit_id:
        return
    raise PermissionDenied("Only your unit's admins (or a Super Admin) may manage this user.")


def unit_admins_keep_check(user: User, *, by: User | None = None) -> None:
    """None of a unit's last :data:`MIN_UNIT_ADMINS` active Unit Admins may leave
    (deactivated, deleted, or deleting their own account)."""
    if user.role != Role.UNIT_ADMIN or not user.is_active or user.unit_id is None:
        return
    admins = User.objects.filter(unit_id=user.unit_id, role=Role.UNIT_ADMIN,
                                 is_active=True).count()
    if admins > MIN_UNIT_ADMINS:
        return
    if by is None or by.pk == user.pk:
        raise ValidationError("A unit needs at least two admins: as one of its last two, "
                              "you cannot delete your account. Ask for another admin first.")
    raise ValidationError(f"{user.username} is one of the unit's last two active Unit "
                          "Admins; a unit needs at least two. Invite another admin first.")


@transaction.atomic
def user_deactivate(*, user: User, by: User, ip: str | None = None) -> User:
    user_manage_check(user=user, by=by)
    if user.pk == by.pk:
        raise ValidationError("You cannot deactivate your own account.")
    unit_admins_keep_check(user, by=by)
    user.is_active = False
    user.save(update_fields=["is_active"])
    auth_sessions_end(user=user, by=by, reason="deactivated", ip=ip)
    audit_record(action=AuditAction.USER_DEACTIVATE, actor=by, target=user.username, ip=ip)
    return user


@transaction.atomic
def user_reactivate(*, user: User, by: User, ip: str | None = None) -> User:
    user_manage_check(user=user, by=by)
    user.is_active = True
    user.save(update_fields=["is_active"])
    audit_record(action=AuditAction.USER_REACTIVATE, actor=by, target=user.username, ip=ip)
    return user


@transaction.atomic
def user_delete(*, user: User, by: User, ip: str | None = None) -> None:
    """Delete an account (its keys and memberships go with it; audit rows keep the name)."""
    if user.pk == by.pk:
        raise ValidationError("Delete your own account from the account page (it needs an "
                              "email confirmation).")
    user_manage_check(user=user, by=by)
    unit_admins_keep_check(user, by=by)
    audit_record(action=AuditAction.USER_DELETE, actor=by, target=user.username, ip=ip,
                 details={"role": user.role})
    user.delete()
