"""The audit log in the admin: read-only, scoped to the staff member's unit."""

from django.contrib import admin
from django.db.models import Q

from accounts.admin_base import ScopedAdmin
from accounts.models import Role
from audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(ScopedAdmin):
    read_only = True
    list_display = ("at", "actor_username", "action", "project_public_id", "target", "ip")
    list_filter = ("action",)
    search_fields = ("actor_username", "action", "project_public_id", "target")

    def scope_filter(self, user):
        if user.role == Role.SUPER_ADMIN:
            return None
        return Q(project__unit_id=user.unit_id) | Q(actor__unit_id=user.unit_id)
