"""Units: the facilities that deliver data."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from accounts.models import Role, Unit, User
from accounts.selectors import is_operator
from audit.actions import AuditAction
from audit.services import audit_record
from core.input_guard import names_check

#: Fields only the operator sets: the unit's identity (its name, the prefix of its project
#: ids), its quota, how long its data stays Available and Expired (storage the operator
#: pays for), and what and to whom it is invoiced.
UNIT_OPERATOR_FIELDS = ("name", "internal_ref", "quota_bytes", "days_in_available",
                        "days_in_expired", "billing_email", "price_per_gb_month")
#: Fields the unit's own Unit Admins may set too: how it is shown and reached, and when
#: its staff are warned about the quota.
UNIT_STAFF_FIELDS = ("display_name", "contact_email", "warning_level")
UNIT_EDITABLE_FIELDS = UNIT_OPERATOR_FIELDS + UNIT_STAFF_FIELDS


@transaction.atomic
def unit_create(*, name: str, display_name: str, contact_email: str, internal_ref: str,
                by: User | None = None, ip: str | None = None, **options: Any) -> Unit:
    """Create a unit; ``options`` are further Unit fields (quota, days in each status)."""
    names_check(name=name, display_name=display_name)
    unit = Unit(name=name, display_name=display_name, contact_email=contact_email,
                internal_ref=internal_ref, **options)
    unit.full_clean()
    unit.save()
    audit_record(action=AuditAction.UNIT_CREATE, actor=by, target=unit.name, ip=ip)
    return unit


def unit_fields_editable(*, unit: Unit | None, by: User) -> tuple[str, ...]:
    """The Unit fields ``by`` may change: all for the operator, the staff fields for the
    unit's own Unit Admins, none for anyone else."""
    if is_operator(by):
        return UNIT_EDITABLE_FIELDS
    if (unit is not None and by.is_active and by.role == Role.UNIT_ADMIN
            and by.unit_id == unit.pk):
        return UNIT_STAFF_FIELDS
    return ()


def unit_update_check(*, unit: Unit, by: User, changes: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``changes`` that differ from ``unit``, if ``by`` may change them all.

    Raises ``PermissionDenied`` for a field that is not ``by``'s to set, and a field
    ``ValidationError`` for a value the unit cannot take.
    """
    unknown = set(changes) - set(UNIT_EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not editable Unit fields: {sorted(unknown)}")
    changed = {f: v for f, v in changes.items() if getattr(unit, f) != v}
    allowed = unit_fields_editable(unit=unit, by=by)
    if not allowed:
        raise PermissionDenied("Only the unit's admins (or the operator) may change it.")
    refused = sorted(set(changed) - set(allowed))
    if refused:
        raise PermissionDenied("Only the operator changes a unit's "
                               f"{', '.join(refused)}.")
    if "contact_email" in changed and not is_operator(by) and not unit.billing_email:
        # Without a billing email the usage reports (invoices) go to the contact address,
        # which would make it the unit's to redirect them.
        raise ValidationError({"contact_email": [
            "The unit's usage reports go to its contact email, as it has no billing email: "
            "ask the operator to set a billing email before changing it."]})
    names_check(**{f: changed[f] for f in ("name", "display_name") if f in changed})
    return changed


@transaction.atomic
def unit_update(*, unit: Unit, by: User, ip: str | None = None, **changes: Any) -> Unit:
    """Change a unit's fields (``UNIT_EDITABLE_FIELDS``), audited with each changed field's
    old and new value (none of them is a secret)."""
    current = Unit.objects.select_for_update(no_key=True).get(pk=unit.pk)
    changed = unit_update_check(unit=current, by=by, changes=changes)
    if not changed:
        return current
    old = {f: getattr(current, f) for f in changed}
    for field, value in changed.items():
        setattr(current, field, value)
    current.full_clean()
    current.save(update_fields=sorted(changed))
    audit_record(action=AuditAction.UNIT_UPDATE, actor=by, target=current.name, ip=ip,
                 details={"fields": {f: {"old": old[f], "new": changed[f]}
                                     for f in sorted(changed)}})
    return current
