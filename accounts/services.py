"""Writes for units and users. Views, admin, commands and tasks call these."""

from __future__ import annotations

from django.db import transaction

from accounts.models import UNIT_ROLES, Role, Unit, User
from keys.services import user_keys_create
from projects.audit import audit_record


@transaction.atomic
def unit_create(*, name: str, display_name: str, contact_email: str, internal_ref: str,
                by: User | None = None, **options) -> Unit:
    unit = Unit(name=name, display_name=display_name, contact_email=contact_email,
                internal_ref=internal_ref, **options)
    unit.full_clean()
    unit.save()
    audit_record(action="unit.create", actor=by, target=unit.name)
    return unit


@transaction.atomic
def user_create(*, username: str, email: str, name: str, password: str, role: str,
                unit: Unit | None = None, by: User | None = None) -> User:
    """Create an account with its key pair. Unit roles need a unit, others must not have one."""
    if role in UNIT_ROLES and unit is None:
        raise ValueError(f"a {Role(role).label} must belong to a unit")
    if role not in UNIT_ROLES:
        unit = None
    user = User.objects.create_user(username=username, email=email, password=password,
                                    name=name, role=role, unit=unit)
    user_keys_create(user=user, password=password)
    audit_record(action="user.create", actor=by or user, target=user.username,
                 details={"role": role, "unit": unit.name if unit else None})
    return user
