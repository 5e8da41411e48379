from django.contrib import admin

from accounts.admin_base import SuperAdminOnly
from reports.charts import stats_chart
from reports.models import StatsSnapshot


@admin.register(StatsSnapshot)
class StatsSnapshotAdmin(SuperAdminOnly):
    """The monthly statistics, with a chart of every figure over time above the list."""

    read_only = True
    list_display = ("month", "units", "users_total", "projects_active", "bytes_stored",
                    "bytes_uploaded", "bytes_downloaded", "deliveries_released", "taken_at")
    ordering = ("-month",)

    @admin.display(description="Users")
    def users_total(self, obj):
        return obj.users_total

    @admin.display(description="Active projects")
    def projects_active(self, obj):
        return obj.projects_active

    def changelist_view(self, request, extra_context=None):
        snapshots = list(self.get_queryset(request).order_by("month")[:120])
        extra = {"stats_chart": stats_chart(snapshots), "stats_months": len(snapshots),
                 **(extra_context or {})}
        return super().changelist_view(request, extra_context=extra)
