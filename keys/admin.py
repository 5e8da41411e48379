from django.contrib import admin

from accounts.admin_base import ScopedAdmin
from keys.models import InviteProjectKey, ProjectUserKey


@admin.register(ProjectUserKey)
class ProjectUserKeyAdmin(ScopedAdmin):
    """Who holds a copy of which project key. The wrapped key itself is never shown."""

    unit_lookup = "project__unit"
    read_only = True
    list_display = ("project", "user", "created_at")
    fields = ("project", "user", "created_at")


@admin.register(InviteProjectKey)
class InviteProjectKeyAdmin(ScopedAdmin):
    unit_lookup = "project__unit"
    read_only = True
    list_display = ("project", "invite", "is_owner", "created_at")
    fields = ("project", "invite", "is_owner", "created_at")
