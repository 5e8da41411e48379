from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.utils.http import content_disposition_header

from accounts.admin_base import ScopedAdmin
from accounts.models import Role
from core.client_ip import client_ip
from reports.services.usage import (
    usage_report_csv,
    usage_report_filename,
    usage_report_for_rows,
)
from transfers.models import File, FileVersion, StorageLocation, Upload, Usage
from transfers.services.locations import (
    storage_location_save,
    storage_location_validate_jurisdiction,
)


class StorageLocationForm(forms.ModelForm):
    endpoint = forms.URLField(required=False, assume_scheme="https",
                              help_text="Empty for the local backend.")
    # Write-only: the stored values are sealed and never rendered back.
    access_key = forms.CharField(required=False, strip=True,
                                 widget=forms.PasswordInput(render_value=False),
                                 help_text="Leave empty to keep the stored access key.")
    secret_key = forms.CharField(required=False, strip=True,
                                 widget=forms.PasswordInput(render_value=False),
                                 help_text="Leave empty to keep the stored secret key.")

    class Meta:
        model = StorageLocation
        fields = ("unit", "name", "endpoint", "region", "bucket_prefix", "is_active")

    def clean(self):
        data = super().clean() or {}
        try:
            storage_location_validate_jurisdiction(region=data.get("region", ""),
                                                   endpoint=data.get("endpoint", ""))
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                self.add_error(field, messages)
        return data


@admin.register(StorageLocation)
class StorageLocationAdmin(ScopedAdmin):
    unit_lookup = "unit"
    change_roles = ()
    add_roles = ()
    form = StorageLocationForm
    list_display = ("name", "unit", "endpoint", "region", "is_active", "credentials_set")

    @admin.display(boolean=True, description="Credentials set")
    def credentials_set(self, obj):
        return obj.has_credentials

    def save_model(self, request, obj, form, change):
        storage_location_save(location=obj, by=request.user,
                              access_key=form.cleaned_data.get("access_key") or None,
                              secret_key=form.cleaned_data.get("secret_key") or None,
                              ip=client_ip(request))

    def get_readonly_fields(self, request, obj=None):
        if request.user.role != Role.SUPER_ADMIN:
            return ("unit", "name", "endpoint", "region", "bucket_prefix", "is_active")
        return ()


@admin.register(File)
class FileAdmin(ScopedAdmin):
    unit_lookup = "project__unit"
    read_only = True
    list_display = ("path", "project", "size_original", "size_stored", "compressed",
                    "uploaded_at", "last_downloaded_at")
    search_fields = ("path",)
    list_select_related = ("project",)
    # The Crypt4GH header is key material; it is not displayed.
    fields = ("project", "path", "name", "folder", "object_key", "size_original",
              "size_stored", "compressed", "checksum", "uploaded_at", "uploaded_by",
              "last_downloaded_at")


@admin.register(FileVersion)
class FileVersionAdmin(ScopedAdmin):
    unit_lookup = "project__unit"
    read_only = True
    list_display = ("object_key", "project", "size_stored", "uploaded_at", "deleted_at",
                    "invoiced_until")
    list_select_related = ("project",)


@admin.register(Upload)
class UploadAdmin(ScopedAdmin):
    unit_lookup = "project__unit"
    read_only = True
    list_display = ("path", "project", "status", "size_original", "reserved_bytes",
                    "created_by", "created_at")
    list_filter = ("status",)
    list_select_related = ("project", "created_by")


@admin.register(Usage)
class UsageAdmin(ScopedAdmin):
    unit_lookup = "project__unit"
    read_only = True
    list_display = ("project", "period_start", "period_end", "byte_hours")
    list_select_related = ("project",)
    list_filter = ("period_start",)
    actions = ("export_csv",)

    @admin.action(description="Export usage as CSV (GB-months and cost)")
    def export_csv(self, request, queryset):
        # The queryset is the selection within the caller's scope (unit staff: their
        # unit), and the CSV the same as the monthly report's (reports.services.usage).
        report = usage_report_for_rows(rows=queryset)
        response = HttpResponse(usage_report_csv(report), content_type="text/csv")
        response["Content-Disposition"] = content_disposition_header(
            True, usage_report_filename(report))
        return response
