"""Who may see which report: unit staff their own unit's usage, the Super Admin all;
statistics only the Super Admin."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import UNIT_ROLES, Role, Unit, User
from accounts.selectors import is_operator, unit_find
from core.errors import NotAllowed


def usage_units_for(*, actor: User, unit: str | None = None) -> QuerySet[Unit]:
    """The units whose usage ``actor`` asked for: ``unit`` (``unit_find``) or
    every unit they may see. Researchers are refused (403); a unit the actor may not see
    is "no such unit" (404), so another unit's existence is not confirmed."""
    if actor.role == Role.SUPER_ADMIN:
        units = Unit.objects.all()
    elif actor.role in UNIT_ROLES and actor.unit_id is not None:
        units = Unit.objects.filter(pk=actor.unit_id)
    else:
        raise NotAllowed("Only unit staff and operators can see storage usage.")
    if unit:
        units = Unit.objects.filter(pk=unit_find(unit, among=units).pk)
    return units.order_by("name")


def stats_allowed(*, actor: User) -> None:
    if not is_operator(actor):
        raise NotAllowed("Only operators (Super Admin) can see the system statistics.")
