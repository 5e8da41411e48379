"""Units: the facilities that deliver data."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts.models import Unit, User
from audit.actions import AuditAction
from audit.services import audit_record
from core.input_guard import names_check


@transaction.atomic
def unit_create(*, name: str, display_name: str, contact_email: str, internal_ref: str,
                by: User | None = None, **options: Any) -> Unit:
    """Create a unit; ``options`` are further Unit fields (quota, days in each status)."""
    names_check(name=name, display_name=display_name)
    unit = Unit(name=name, display_name=display_name, contact_email=contact_email,
                internal_ref=internal_ref, **options)
    unit.full_clean()
    unit.save()
    audit_record(action=AuditAction.UNIT_CREATE, actor=by, target=unit.name)
    return unit
