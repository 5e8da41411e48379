"""API views: announcements (mounted by accounts/urls.py under /api/v1/).

Messages of the day: anyone may read the active ones (the portal shows them on its login
page too); only the Super Admin adds, deactivates, emails them, lists the inactive ones
and switches maintenance mode. Anyone signed in may read the maintenance state, also
while maintenance is on (ddsite.middleware lets that one read through).
"""

from __future__ import annotations

from django.urls import URLPattern, path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import OperatorOnly
from accounts.selectors import is_operator
from accounts.services.announcements import (
    MAINTENANCE_MESSAGE_MAX_LENGTH,
    MOTD_MAX_LENGTH,
    maintenance_set,
    maintenance_status,
    motd_add,
    motd_deactivate,
    motd_list,
    motd_send,
)
from core.client_ip import client_ip
from core.errors import NotAllowed

DETAIL = inline_serializer("AnnouncementDetail", {"detail": serializers.CharField(),
                                                  "code": serializers.CharField()})
# Room for a message with some slack, so that the service gives the one clear message
# about the length rather than the serializer.
_SLACK = 100


class Operator(OperatorOnly):
    message = "Only a Super Admin can manage announcements and maintenance mode."


class MotdOut(serializers.Serializer):
    id = serializers.IntegerField()
    message = serializers.CharField()
    is_active = serializers.BooleanField()
    created_at = serializers.DateTimeField()


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


class MotdListApi(APIView):
    def get_permissions(self):
        if self.request.method in ("GET", "HEAD"):
            return [AllowAny()]
        return [IsAuthenticated(), Operator()]

    class MotdIn(serializers.Serializer):
        message = serializers.CharField(max_length=MOTD_MAX_LENGTH + _SLACK,
                                        allow_blank=True, trim_whitespace=False)

    @extend_schema(
        parameters=[OpenApiParameter("all", OpenApiTypes.BOOL, required=False,
                                     description="Also the inactive ones (Super Admin).")],
        responses={200: MotdOut(many=True), 401: DETAIL, 403: DETAIL},
        summary="Messages of the day: the active ones, newest first",
        description="Anyone may read the active messages; `all=true` (Super Admin) also "
                    "lists the deactivated ones.")
    def get(self, request):
        every = _flag(request.query_params.get("all"))
        if every and not getattr(request.user, "is_authenticated", False):
            raise NotAuthenticated()
        if every and not is_operator(request.user):
            raise NotAllowed("Only a Super Admin can list deactivated messages.")
        rows = motd_list(active_only=not every)
        if not every:
            rows = rows[:50]
        return Response(MotdOut(rows, many=True).data)

    @extend_schema(request=MotdIn, responses={201: MotdOut, 400: DETAIL, 401: DETAIL,
                                              403: DETAIL},
                   summary="Add a message of the day (Super Admin)")
    def post(self, request):
        data = self.MotdIn(data=request.data)
        data.is_valid(raise_exception=True)
        motd = motd_add(by=request.user, message=data.validated_data["message"],
                        ip=client_ip(request))
        return Response(MotdOut(motd).data, status=status.HTTP_201_CREATED)


class MotdDeactivateApi(APIView):
    permission_classes = [IsAuthenticated, Operator]

    @extend_schema(request=None, responses={200: MotdOut, 401: DETAIL, 403: DETAIL,
                                            404: DETAIL},
                   summary="Deactivate a message of the day (Super Admin)")
    def post(self, request, motd_id: int):
        motd = motd_deactivate(by=request.user, motd_id=motd_id, ip=client_ip(request))
        return Response(MotdOut(motd).data)


class MotdSendApi(APIView):
    permission_classes = [IsAuthenticated, Operator]

    class MotdSendIn(serializers.Serializer):
        unit = serializers.CharField(max_length=255, required=False, allow_blank=True,
                                     help_text="Only this unit's staff and the members "
                                               "of its projects (its name or ID).")

    class MotdSendOut(serializers.Serializer):
        id = serializers.IntegerField()
        unit = serializers.CharField(allow_null=True)
        recipients = serializers.IntegerField(help_text="Emails queued, one per person.")

    @extend_schema(request=MotdSendIn,
                   responses={202: MotdSendOut, 400: DETAIL, 401: DETAIL, 403: DETAIL,
                              404: DETAIL},
                   summary="Email a message of the day to every user, or one unit's "
                           "(Super Admin)",
                   description="One email per person (nobody sees the other addresses), "
                               "queued at once and sent by the worker.")
    def post(self, request, motd_id: int):
        data = self.MotdSendIn(data=request.data)
        data.is_valid(raise_exception=True)
        unit = (data.validated_data.get("unit") or "").strip() or None
        count = motd_send(by=request.user, motd_id=motd_id, unit=unit, ip=client_ip(request))
        return Response(self.MotdSendOut({"id": motd_id, "unit": unit,
                                          "recipients": count}).data,
                        status=status.HTTP_202_ACCEPTED)


class MaintenanceOut(serializers.Serializer):
    active = serializers.BooleanField()
    message = serializers.CharField(allow_blank=True)
    changed_at = serializers.DateTimeField(
        allow_null=True, help_text="When it was last switched; null if never.")


class MaintenanceApi(APIView):
    class MaintenanceIn(serializers.Serializer):
        active = serializers.BooleanField()
        message = serializers.CharField(max_length=MAINTENANCE_MESSAGE_MAX_LENGTH + _SLACK,
                                        required=False, allow_blank=True,
                                        allow_null=True, trim_whitespace=False)

    def get_permissions(self):
        if self.request.method in ("GET", "HEAD"):
            return [IsAuthenticated()]
        return [IsAuthenticated(), Operator()]

    @extend_schema(responses={200: MaintenanceOut, 401: DETAIL},
                   summary="Maintenance mode: on or off, and its message")
    def get(self, request):
        return Response(MaintenanceOut(maintenance_status()).data)

    @extend_schema(request=MaintenanceIn, responses={200: MaintenanceOut, 400: DETAIL,
                                                     401: DETAIL, 403: DETAIL},
                   summary="Switch maintenance mode on or off (Super Admin)",
                   description="While it is on, everyone but the Super Admin gets 503 "
                               "with code `maintenance` and the message.")
    def put(self, request):
        data = self.MaintenanceIn(data=request.data)
        data.is_valid(raise_exception=True)
        state = maintenance_set(by=request.user, on=data.validated_data["active"],
                                message=data.validated_data.get("message"),
                                ip=client_ip(request))
        return Response(MaintenanceOut(state).data)


urlpatterns: list[URLPattern] = [
    path("motd", MotdListApi.as_view(), name="motd-list"),
    path("motd/<int:motd_id>/deactivate", MotdDeactivateApi.as_view(), name="motd-deactivate"),
    path("motd/<int:motd_id>/send", MotdSendApi.as_view(), name="motd-send"),
    path("maintenance", MaintenanceApi.as_view(), name="maintenance"),
]
