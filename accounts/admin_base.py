"""Role- and unit-scoped ModelAdmin base used by every app's admin.

A Super Admin sees everything; Unit Admins and Unit Personnel see only rows of their own
unit (``unit_lookup`` says how a row reaches its unit); researchers never reach the admin.
Objects outside the caller's scope answer 404 (not a redirect), so the admin does not
confirm that another unit's object exists.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest

from accounts.models import Role
from accounts.selectors import is_operator

#: Scope for rows a role may not see at all.
NOTHING = Q(pk__in=[])


class ScopedAdmin(admin.ModelAdmin):
    #: The DDS admin site serves only model admins that carry this mark (deny by default).
    dds_scoped = True
    #: ORM path from the model to its Unit ("unit", "project__unit"); None = global rows.
    unit_lookup: str | None = None
    #: Roles that may change rows in scope (Super Admin is always allowed unless read_only).
    change_roles: tuple[str, ...] = (Role.UNIT_ADMIN, Role.UNIT_PERSONNEL)
    add_roles: tuple[str, ...] = ()
    delete_roles: tuple[str, ...] = ()
    #: Whether this admin's delete_model / delete_queryset go through a service. Deleting
    #: a project, a user, a unit, an invite or a storage location has its own service
    #: (audited; storage, keys and sessions cleaned up) that the API, `dds` and the
    #: commands call; Django's plain cascade would skip all of it, so the admin offers no
    #: delete unless the model admin routes it through its service.
    delete_via_service = False
    #: Rows whose edits would break invariants (keys, files, audit) are read-only for all.
    read_only = False
    #: Global rows (no unit): visible to unit staff?
    global_visible_to_staff = False

    def scope_filter(self, user) -> Q | None:
        """Q restricting rows to the user's unit; None means no restriction."""
        if user.role == Role.SUPER_ADMIN:
            return None
        if self.unit_lookup is None:
            return None if self.global_visible_to_staff else NOTHING
        return Q(**{self.unit_lookup: user.unit_id})

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        user = request.user
        if not (user.is_active and user.is_staff):
            return qs.none()
        condition = self.scope_filter(user)
        return qs if condition is None else qs.filter(condition).distinct()

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404("No such object in your scope.")
        return obj

    def _role_allowed(self, request, roles) -> bool:
        user = request.user
        if not (user.is_active and user.is_staff):
            return False
        return user.role == Role.SUPER_ADMIN or user.role in roles

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)

    def has_view_permission(self, request, obj=None) -> bool:
        user = request.user
        if not (user.is_active and user.is_staff):
            return False
        return self.scope_filter(user) is not NOTHING

    def has_change_permission(self, request, obj=None) -> bool:
        return not self.read_only and self._role_allowed(request, self.change_roles)

    def has_add_permission(self, request) -> bool:
        return not self.read_only and self._role_allowed(request, self.add_roles)

    def has_delete_permission(self, request, obj=None) -> bool:
        return (self.delete_via_service and not self.read_only
                and self._role_allowed(request, self.delete_roles))


class SuperAdminOnly(ScopedAdmin):
    """Site-wide settings (MOTD, maintenance): only the operator manages them."""

    change_roles = ()
    add_roles = ()
    delete_roles = ()

    def has_view_permission(self, request, obj=None) -> bool:
        return is_operator(request.user)
