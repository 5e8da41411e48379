"""Admin of projects: lists with storage totals, lifecycle actions for the unit's staff."""

from __future__ import annotations

from typing import Any, ClassVar

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse

from accounts.admin_base import ScopedAdmin
from accounts.models import Role, User
from core.client_ip import client_ip
from core.errors import DDSError
from projects.errors import ProjectRuleError
from projects.models import Project, ProjectMembership, ProjectStatusEvent
from projects.selectors import user_is_project_staff
from projects.services import (
    project_archive,
    project_create,
    project_release,
    project_retract,
    project_update,
    unit_admin_check,
)
from transfers.annotations import with_project_storage


class ProjectAddForm(forms.ModelForm):
    force = forms.BooleanField(
        required=False, label="Create even though the unit has fewer than three Unit Admins")
    #: The staff member adding the project (set on a per-request subclass: add_form_for).
    creator: ClassVar[User | None] = None

    class Meta:
        model = Project
        fields = ("title", "description", "pi", "non_sensitive")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.creator is None or self.creator.unit is None:
            raise forms.ValidationError("Only a unit's staff add its projects.")
        try:
            unit_admin_check(unit=self.creator.unit, force=data.get("force", False))
        except ProjectRuleError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return data


def add_form_for(user: User) -> type[ProjectAddForm]:
    """The add form of ``user`` (the unit whose admins count is the creator's)."""
    return type("ProjectAddForm", (ProjectAddForm,), {"creator": user})


class MembershipInline(admin.TabularInline):
    model = ProjectMembership
    extra = 0
    fields = ("user", "is_owner", "created_at")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class StatusEventInline(admin.TabularInline):
    model = ProjectStatusEvent
    extra = 0
    fields = ("status", "deadline", "is_aborted", "by", "at")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Project)
class ProjectAdmin(ScopedAdmin):
    unit_lookup = "unit"
    add_roles = (Role.UNIT_ADMIN, Role.UNIT_PERSONNEL)
    list_display = ("public_id", "title", "unit", "status", "deadline", "pi", "stored",
                    "usage", "created_at")
    list_select_related = ("unit",)

    def get_queryset(self, request):
        return with_project_storage(super().get_queryset(request))

    @admin.display(description="Stored", ordering="stored_bytes")
    def stored(self, obj):
        return filesizeformat(obj.stored_bytes)

    @admin.display(description="Usage (GB·h)", ordering="usage_byte_hours")
    def usage(self, obj):
        return f"{obj.usage_byte_hours / 10**9:,.1f}"
    list_filter = ("status", "non_sensitive")
    search_fields = ("public_id", "title", "pi")
    readonly_fields = ("public_id", "unit", "status", "deadline", "released", "bucket",
                       "busy", "created_by", "created_at", "updated_at")
    inlines = [MembershipInline, StatusEventInline]
    LIFECYCLE_ACTIONS = ("release_projects", "retract_projects", "archive_projects")
    actions = LIFECYCLE_ACTIONS

    def get_actions(self, request):
        actions = super().get_actions(request)
        if request.user.role not in (Role.UNIT_ADMIN, Role.UNIT_PERSONNEL):
            # Lifecycle changes are the unit's decision, not the operator's.
            for name in self.LIFECYCLE_ACTIONS:
                actions.pop(name, None)
        return actions

    def _apply(self, request, queryset, verb, action) -> None:
        done, refused = [], []
        for project in queryset:
            if not user_is_project_staff(request.user, project):
                refused.append(f"{project.public_id}: not your unit's project")
                continue
            try:
                action(project)
                done.append(project.public_id)
            except DDSError as exc:  # refused (or busy): shown, the others go on
                refused.append(f"{project.public_id}: {exc}")
        if done:
            self.message_user(request, f"{verb}: {', '.join(done)}", messages.SUCCESS)
        for line in refused:
            self.message_user(request, line, messages.ERROR)

    @admin.action(description="Release selected projects (unit's default deadline)")
    def release_projects(self, request, queryset):
        self._apply(request, queryset, "Released",
                    lambda p: project_release(project=p, by=request.user,
                                              ip=client_ip(request)))

    @admin.action(description="Retract selected projects to In Progress")
    def retract_projects(self, request, queryset):
        self._apply(request, queryset, "Retracted",
                    lambda p: project_retract(project=p, by=request.user,
                                              ip=client_ip(request)))

    @admin.action(description="Archive selected projects…")
    def archive_projects(self, request, queryset):
        if request.POST.get("confirm") != "yes":
            return TemplateResponse(request, "admin/projects/archive_confirm.html", {
                **self.admin_site.each_context(request),
                "title": "Archive projects?",
                "projects": queryset,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "opts": self.model._meta,
            })
        abort = request.POST.get("abort") == "on"
        self._apply(request, queryset, "Archived (aborted)" if abort else "Archived",
                    lambda p: project_archive(project=p, by=request.user, abort=abort,
                                              ip=client_ip(request)))
        return None

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = add_form_for(request.user)
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("title", "description", "pi", "non_sensitive", "force")
        return ("public_id", "title", "description", "pi", "non_sensitive", "unit", "status",
                "deadline", "released", "bucket", "busy", "created_by", "created_at",
                "updated_at")

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return self.readonly_fields + ("non_sensitive",)

    def has_add_permission(self, request):
        # A Super Admin holds no project keys, so projects are created by unit staff.
        user = request.user
        return user.is_active and user.role in self.add_roles

    def has_change_permission(self, request, obj=None) -> bool:
        # The operator sees projects but does not edit them (no project role, no keys).
        return (super().has_change_permission(request, obj)
                and request.user.role != Role.SUPER_ADMIN)

    def save_model(self, request, obj, form, change):
        if change:
            # Through the service: final projects refuse edits, and the edit is audited.
            project_update(project=obj, by=request.user, ip=client_ip(request),
                           **{f: form.cleaned_data[f] for f in ("title", "description", "pi")
                              if f in form.changed_data})
            return
        created = project_create(unit=request.user.unit, by=request.user, title=obj.title,
                                 description=obj.description, pi=obj.pi,
                                 non_sensitive=obj.non_sensitive,
                                 force=form.cleaned_data.get("force", False),
                                 ip=client_ip(request))
        obj.__dict__.update({k: v for k, v in created.__dict__.items() if k != "_state"})
        obj._state.adding = False


@admin.register(ProjectStatusEvent)
class ProjectStatusEventAdmin(ScopedAdmin):
    unit_lookup = "project__unit"
    read_only = True
    list_display = ("project", "status", "deadline", "is_aborted", "by", "at")
    list_filter = ("status",)
