from typing import Any, ClassVar

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.template.defaultfilters import filesizeformat

from accounts import services
from accounts.admin_base import NOTHING, ScopedAdmin, SuperAdminOnly
from accounts.models import MOTD, Invite, Maintenance, Role, Unit, User
from accounts.selectors import (
    invite_inviter_shown,
    invite_project_shown,
    invites_visible_q,
    is_operator,
    users_visible_to,
)
from accounts.services import announcements
from accounts.services.units import UNIT_EDITABLE_FIELDS
from audit.actions import AuditAction
from audit.services import audit_record
from core.client_ip import client_ip
from core.errors import DDSError
from core.input_guard import names_check
from transfers.annotations import with_unit_storage


class UnitForm(forms.ModelForm):
    """Checks a change with the service's rule (accounts.services.units), so a refusal
    shows on the form instead of failing the save."""

    #: The user editing (set on a per-request subclass: UnitAdmin.get_form).
    actor: ClassVar[User | None] = None

    class Meta:
        model = Unit
        fields = UNIT_EDITABLE_FIELDS

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        changes = {f: data[f] for f in UNIT_EDITABLE_FIELDS if f in data}
        try:
            if self.actor is None:
                raise PermissionDenied("No user is editing this unit.")
            if self.instance.pk is None:
                names_check(name=changes.get("name"), display_name=changes.get("display_name"))
            else:
                # The instance still holds the stored values here (the form's values are
                # copied onto it after clean()).
                services.unit_update_check(unit=self.instance, by=self.actor, changes=changes)
        except PermissionDenied as exc:
            raise forms.ValidationError(str(exc)) from exc
        except ValidationError as exc:
            if not hasattr(exc, "error_dict"):
                raise
            for field, messages in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, messages)
        return data


@admin.register(Unit)
class UnitAdmin(ScopedAdmin):
    """Adding and changing go through accounts.services.units (unit_create, unit_update:
    who may set which field, audited with the old and new values)."""

    unit_lookup = "pk"
    change_roles = (Role.UNIT_ADMIN,)
    form = UnitForm
    list_display = ("name", "display_name", "internal_ref", "contact_email", "storage_used",
                    "days_in_available", "days_in_expired")

    def get_queryset(self, request):
        return with_unit_storage(super().get_queryset(request))

    @admin.display(description="Stored / quota", ordering="stored_bytes")
    def storage_used(self, obj):
        share = obj.stored_bytes / obj.quota_bytes if obj.quota_bytes else 0
        warn = " ⚠" if share >= obj.warning_level else ""
        return (f"{filesizeformat(obj.stored_bytes)} / {filesizeformat(obj.quota_bytes)} "
                f"({share:.0%}){warn}")
    search_fields = ("name", "display_name", "internal_ref")
    readonly_fields = ("public_id", "project_counter", "created_at")

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        # Identity, quota, the days data stays, the price and where invoices go are the
        # operator's decision, not the unit's (the rule: services.unit_fields_editable).
        editable = services.unit_fields_editable(unit=obj, by=request.user)
        return fields + [f for f in UNIT_EDITABLE_FIELDS if f not in editable]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"actor": request.user})

    def save_model(self, request, obj, form, change):
        values = {f: form.cleaned_data[f] for f in UNIT_EDITABLE_FIELDS
                  if f in form.cleaned_data}
        if change:
            saved = services.unit_update(unit=obj, by=request.user, ip=client_ip(request),
                                         **values)
        else:
            saved = services.unit_create(by=request.user, ip=client_ip(request), **values)
        obj.__dict__.update({k: v for k, v in saved.__dict__.items() if k != "_state"})
        obj._state.adding = False


ROLE_CHANGE_HELP = (
    "A role or unit is not changed in place: it decides the project keys held and the "
    "unit's admins, and live sessions carry it. To give someone another role or unit, "
    "delete this account (dds user delete; a unit's last two admins are refused) and "
    "invite the address anew with the new role and unit; project access is then granted "
    "to the new account. Deactivate instead to keep the account without access.")


@admin.register(User)
class UserAdmin(ScopedAdmin):
    change_roles = (Role.UNIT_ADMIN,)
    list_display = ("username", "name", "email", "role", "unit", "is_active", "last_login")
    list_filter = ("role", "is_active")
    search_fields = ("username", "name", "email")
    fieldsets = (
        (None, {"fields": ("username", "name", "email", "is_active", "date_joined",
                           "last_login", "has_keys")}),
        ("Role", {"fields": ("role", "unit"), "description": ROLE_CHANGE_HELP}),
    )
    # Role and unit never change in place, not even by the operator: a role decides the
    # project keys held (a Super Admin holds none), a unit keeps two admins, and live
    # sessions carry the old role. No service re-checks all that, so the one way is a
    # new account from an invite, whose services do (see ROLE_CHANGE_HELP).
    readonly_fields = ("username", "role", "unit", "date_joined", "last_login", "has_keys")

    def scope_filter(self, user):
        return None  # the rule is accounts.selectors.users_visible_to (same as the API)

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs.filter(pk__in=users_visible_to(request.user).values("pk"))

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        # Activation goes through the deactivate/reactivate actions (services that end
        # sessions and check the two-admin minimum), never a bare field edit. The email
        # address is where login codes and reset links go: only the operator changes it.
        fields.append("is_active")
        if not is_operator(request.user):
            fields.append("email")
        return fields

    def has_change_permission(self, request, obj=None) -> bool:
        if not super().has_change_permission(request, obj):
            return False
        if obj is None:
            return True
        try:
            services.user_manage_check(user=obj, by=request.user)
        except PermissionDenied:
            return False  # e.g. researchers of the unit's projects: view only
        return True

    def has_add_permission(self, request) -> bool:
        # Accounts come from invites (`dds user add`, the portal, POST /invites): they
        # register with their own password and keys. The admin's add form would make an
        # account with neither (username, role and unit are read-only here).
        return False

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        audit_record(action=AuditAction.USER_ADMIN_EDIT, actor=request.user, target=obj.username,
                     ip=client_ip(request),
                     details={"fields": sorted(form.changed_data)})

    actions = ["deactivate", "reactivate", "second_factor_reset"]

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not is_operator(request.user):
            actions.pop("second_factor_reset", None)
        return actions

    def _each(self, request, queryset, service, verb: str) -> None:
        done = 0
        for user in queryset:
            try:
                service(user=user, by=request.user, ip=client_ip(request))
                done += 1
            except (DDSError, PermissionDenied, ValidationError) as exc:
                reason = " ".join(exc.messages if isinstance(exc, ValidationError)
                                  else [str(exc)])
                self.message_user(request, f"{user}: {reason}", level="error")
        self.message_user(request, f"{verb} {done} user(s).")

    @admin.action(description="Deactivate (ends all their sessions)")
    def deactivate(self, request, queryset):
        self._each(request, queryset, services.user_deactivate, "Deactivated")

    @admin.action(description="Reactivate")
    def reactivate(self, request, queryset):
        self._each(request, queryset, services.user_reactivate, "Reactivated")

    @admin.action(description="Reset second factor (back to email codes; ends sessions)")
    def second_factor_reset(self, request, queryset):
        self._each(request, queryset, services.user_second_factor_reset,
                   "Reset the second factor of")

    @admin.display(boolean=True, description="Key pair")
    def has_keys(self, obj):
        return bool(obj.public_key)


@admin.register(Invite)
class InviteAdmin(ScopedAdmin):
    """Read-only. Unit staff also see another unit's invite that carries one of their
    projects, but not that unit's project or inviter (as GET /invites)."""

    change_roles = ()
    list_filter = ("role",)
    search_fields = ("email",)
    fields = ("email", "role", "unit", "project", "is_owner", "created_by", "created_at",
              "expires_at")
    readonly_fields = fields

    def get_list_display(self, request):
        # Callables bound to this request's user (the admin instance is shared by threads).
        user = request.user

        @admin.display(description="project")
        def project(obj):
            return obj.project if invite_project_shown(user, obj) else "-"

        return ("email", "role", "unit", project, "is_owner", "created_at", "expires_at")

    def get_fields(self, request, obj=None):
        hidden = set()
        if obj is not None and not invite_project_shown(request.user, obj):
            hidden.add("project")
        if obj is not None and invite_inviter_shown(request.user, obj) is None:
            hidden.add("created_by")
        return [f for f in self.fields if f not in hidden]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("project", "created_by")

    def has_add_permission(self, request) -> bool:
        # Invites are made by the invite service (`dds user add`, POST /invites, the
        # portal): token, expiry, project keys, email. Every field here is read-only.
        return False

    def scope_filter(self, user):
        # The API's rule (GET /invites): the unit's invites and those carrying one of its
        # projects, e.g. another unit's invite that a grant added this unit's project to.
        if user.role == Role.SUPER_ADMIN:
            return None
        try:
            return invites_visible_q(user)
        except PermissionDenied:
            return NOTHING


class MOTDForm(forms.ModelForm):
    class Meta:
        model = MOTD
        fields = ("message", "is_active")

    def clean_message(self):
        try:
            return announcements.motd_message_clean(self.cleaned_data.get("message"))
        except DDSError as exc:
            raise ValidationError(str(exc)) from exc


@admin.register(MOTD)
class MOTDAdmin(SuperAdminOnly):
    """Adding, editing and deactivating go through accounts.services.announcements (the
    same validation and audit as ``dds motd``)."""

    form = MOTDForm
    delete_via_service = True  # delete_model: motd_deactivate first
    list_display = ("message", "is_active", "created_at")
    list_filter = ("is_active",)
    readonly_fields = ("created_at",)
    actions = ("deactivate", "send_to_everyone")

    def save_model(self, request, obj, form, change):
        saved = announcements.motd_save(by=request.user, motd=obj, ip=client_ip(request))
        obj.pk, obj.message, obj.is_active = saved.pk, saved.message, saved.is_active
        obj.created_at = saved.created_at

    def delete_model(self, request, obj):
        # Deleting stops showing it: audited as a deactivation first.
        announcements.motd_deactivate(by=request.user, motd_id=obj.pk, ip=client_ip(request))
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for motd in queryset:
            self.delete_model(request, motd)

    @admin.action(description="Deactivate (stop showing them)")
    def deactivate(self, request, queryset):
        for motd in queryset:
            announcements.motd_deactivate(by=request.user, motd_id=motd.pk,
                                          ip=client_ip(request))
        self.message_user(request, f"Deactivated {len(queryset)} message(s).")

    @admin.action(description="Email to every active user (one email each)")
    def send_to_everyone(self, request, queryset):
        for motd in queryset:
            count = announcements.motd_send(by=request.user, motd_id=motd.pk,
                                            ip=client_ip(request))
            self.message_user(request, f"Message {motd.pk}: {count} email(s) queued.")


class MaintenanceForm(forms.ModelForm):
    class Meta:
        model = Maintenance
        fields = ("is_active", "message")

    def clean_message(self):
        try:
            return announcements.maintenance_message_clean(self.cleaned_data.get("message"))
        except DDSError as exc:
            raise ValidationError(str(exc)) from exc


@admin.register(Maintenance)
class MaintenanceAdmin(SuperAdminOnly):
    """Saving the row switches maintenance mode through the service: audited, and the
    middleware's cached flag is refreshed at once."""

    form = MaintenanceForm
    list_display = ("__str__", "is_active", "changed_at")
    readonly_fields = ("changed_at",)

    def save_model(self, request, obj, form, change):
        state = announcements.maintenance_set(by=request.user, on=obj.is_active,
                                              message=obj.message or None,
                                              ip=client_ip(request))
        # One row (id 1), whether this form added or changed it.
        obj.pk, obj.is_active, obj.changed_at = 1, state.active, state.changed_at
        obj.message = Maintenance.objects.values_list("message", flat=True).get(pk=1)

    # No delete (delete_via_service is off): the one row keeps when maintenance was last
    # switched; switching off is unticking "is active" and saving.
