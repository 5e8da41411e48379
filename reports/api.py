"""Reports API: storage usage for invoicing (unit staff: their unit; Super Admin: all) and
the monthly statistics (Super Admin). The rules are in reports.services, who may see what
in reports.selectors."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import BadInput
from reports.models import StatsSnapshot
from reports.selectors import stats_allowed, usage_units_for
from reports.services.months import month_last, month_parse
from reports.services.stats import stats_snapshot_data
from reports.services.usage import (
    usage_report,
    usage_report_csv,
    usage_report_data,
    usage_report_filename,
)

DETAIL = inline_serializer("ReportsDetail", {"detail": serializers.CharField(),
                                             "code": serializers.CharField()})


class CsvRenderer(BaseRenderer):
    """``?format=csv`` or ``Accept: text/csv``: the report as the CSV file billing uses."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None,
               renderer_context: Mapping[str, Any] | None = None) -> bytes:
        if isinstance(data, str):
            return data.encode()
        return json.dumps(data).encode()


def _decimal(help_text: str) -> serializers.CharField:
    return serializers.CharField(allow_null=True, help_text=help_text)


class UsageProjectOut(serializers.Serializer):
    project_id = serializers.CharField()
    title = serializers.CharField()
    gb_months = serializers.CharField(help_text="Decimal, 6 places.")
    cost = _decimal("Decimal, 2 places; null when the unit has no price.")


class UsageUnitOut(serializers.Serializer):
    unit = serializers.CharField()
    internal_ref = serializers.CharField()
    price_per_gb_month = _decimal("Decimal; null: no price set, so no cost.")
    gb_months = serializers.CharField()
    cost = _decimal("Sum of the projects' costs; null without a price.")
    projects = UsageProjectOut(many=True)


class UsageMonthOut(serializers.Serializer):
    month = serializers.CharField()
    recorded = serializers.BooleanField(
        help_text="False: not recorded yet, computed live (the current month: so far).")


class UsageTotalOut(serializers.Serializer):
    gb_months = serializers.CharField()
    cost = _decimal("Null when any unit in the report has no price.")


USAGE_OUT = inline_serializer("UsageReport", {
    "from": serializers.CharField(help_text="First month, YYYY-MM."),
    "to": serializers.CharField(help_text="Last month, YYYY-MM (included)."),
    "currency": serializers.CharField(),
    "months": UsageMonthOut(many=True),
    "units": UsageUnitOut(many=True),
    "total": UsageTotalOut(),
})


def _month_param(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.STR, required=False, description=description)


class UsageApi(APIView):
    renderer_classes = [JSONRenderer, CsvRenderer]

    @extend_schema(
        parameters=[
            _month_param("month", "One month, YYYY-MM (default: last month)."),
            _month_param("from", "First month of a range, YYYY-MM (with `to`)."),
            _month_param("to", "Last month of a range, YYYY-MM (default: `from`)."),
            OpenApiParameter("unit", OpenApiTypes.STR, required=False,
                             description="Only this unit (its name, internal ref or public id)."),
        ],
        responses={(200, "application/json"): USAGE_OUT,
                   (200, "text/csv"): OpenApiTypes.STR,
                   400: DETAIL, 401: DETAIL, 403: DETAIL, 404: DETAIL},
        summary="Storage usage in GB-months and cost, per unit and project",
        description="Unit staff see their own unit, a Super Admin every unit. A GB-month "
                    "is 10^9 bytes stored for one calendar month; a month not recorded "
                    "yet (the current one) is computed live and marked `recorded: false`. "
                    "`?format=csv` (or `Accept: text/csv`) gives the CSV file.")
    def get(self, request):
        params = request.query_params
        month, first, last = params.get("month"), params.get("from"), params.get("to")
        units = usage_units_for(actor=request.user, unit=params.get("unit") or None)
        if month and (first or last):
            raise BadInput("Give either month or from/to, not both.")
        if first or last:
            start = month_parse(first or "", name="from")
            end = month_parse(last, name="to") if last else start
        else:
            start = end = month_parse(month, name="month") if month else month_last()
        report = usage_report(first=start, last=end, units=units)
        if request.accepted_renderer.format == "csv":
            return Response(usage_report_csv(report), headers={
                "Content-Disposition":
                    f'attachment; filename="{usage_report_filename(report)}"'})
        return Response(usage_report_data(report))

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        # Errors are JSON whatever format was asked (docs/api-errors.md).
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response


class StatsUsersOut(serializers.Serializer):
    super_admin = serializers.IntegerField()
    unit_admin = serializers.IntegerField()
    unit_personnel = serializers.IntegerField()
    researcher = serializers.IntegerField()
    total = serializers.IntegerField()


class StatsProjectsOut(serializers.Serializer):
    in_progress = serializers.IntegerField()
    available = serializers.IntegerField()
    expired = serializers.IntegerField()
    active = serializers.IntegerField()


class StatsSnapshotOut(serializers.Serializer):
    month = serializers.CharField()
    taken_at = serializers.DateTimeField()
    as_of = serializers.DateTimeField(help_text="The instant the figures describe.")
    units = serializers.IntegerField()
    users = StatsUsersOut()
    projects = StatsProjectsOut()
    bytes_stored = serializers.IntegerField()
    bytes_uploaded = serializers.IntegerField()
    bytes_downloaded = serializers.IntegerField()
    deliveries_released = serializers.IntegerField()


class StatsApi(APIView):
    @extend_schema(responses={200: StatsSnapshotOut(many=True), 401: DETAIL, 403: DETAIL},
                   summary="Monthly statistics snapshots, oldest first (Super Admin)")
    def get(self, request):
        stats_allowed(actor=request.user)
        return Response([stats_snapshot_data(s) for s in
                         StatsSnapshot.objects.order_by("month")])
