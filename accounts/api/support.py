"""API views: support tools for unit staff and operators (mounted by accounts/urls.py
under /api/v1/).

Cancelling a pending invite (``dds user delete --invite``) and resetting a user's second
factor (``dds user reset-second-factor``). Finding users (``GET /users?q=``), a unit's
users (``GET /users?unit=``) and the pending invites (``GET /invites``) are the list
views of accounts.api.
"""

from __future__ import annotations

from django.urls import URLPattern, path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import DETAIL, OperatorOnly, StaffOnly
from accounts.selectors import user_get_for_actor
from accounts.services.support import invite_cancel
from accounts.services.totp import user_second_factor_reset
from core.client_ip import client_ip


class InviteCancelers(StaffOnly):
    message = "Only unit staff and operators can cancel invites."


class InviteCancelOut(serializers.Serializer):
    email = serializers.EmailField()
    projects = serializers.ListField(child=serializers.CharField(),
                                     help_text="Projects whose access the invite carried "
                                               "(those of your unit, for unit staff).")
    deleted = serializers.BooleanField(help_text="False when only your unit's projects were "
                                                 "taken off an invite that also carries "
                                                 "another unit's projects.")


class InviteCancelApi(APIView):
    permission_classes = [IsAuthenticated, InviteCancelers]

    @extend_schema(request=None, responses={200: InviteCancelOut, 403: DETAIL, 404: DETAIL},
                   summary="Cancel a pending invite",
                   description="The invite's link stops working and the project keys it "
                               "carries are destroyed. Unit staff cancel their unit's "
                               "invites; from an invite that also carries another unit's "
                               "projects only their own unit's are removed.")
    def delete(self, request, email: str) -> Response:
        cancelled = invite_cancel(email=email, by=request.user, ip=client_ip(request))
        return Response(InviteCancelOut(cancelled).data)


class SecondFactorResetOut(serializers.Serializer):
    username = serializers.CharField()
    second_factor = serializers.CharField(help_text='Always "email" after a reset.')
    authenticator_removed = serializers.BooleanField()
    detail = serializers.CharField()


class SecondFactorResetApi(APIView):
    permission_classes = [IsAuthenticated, OperatorOnly]

    @extend_schema(request=None, responses={200: SecondFactorResetOut, 403: DETAIL,
                                            404: DETAIL},
                   summary="Reset a user's second factor (Super Admin)",
                   description="For a user who lost their authenticator app: the app is "
                               "removed, logins use emailed codes again, the user's "
                               "sessions are ended and the user is emailed. Audited.")
    def post(self, request, username: str) -> Response:
        user = user_get_for_actor(actor=request.user, username=username)
        removed = user_second_factor_reset(user=user, by=request.user, ip=client_ip(request))
        detail = (f"{user.username}'s authenticator app was removed" if removed
                  else f"{user.username} had no authenticator app")
        return Response(SecondFactorResetOut({
            "username": user.username, "second_factor": "email",
            "authenticator_removed": removed,
            "detail": f"{detail}; logins now use codes emailed to them, their sessions "
                      "were ended and they were told by email."}).data)


urlpatterns: list[URLPattern] = [
    path("invites/<str:email>", InviteCancelApi.as_view(), name="invite-cancel"),
    path("users/<str:username>/second-factor-reset", SecondFactorResetApi.as_view(),
         name="user-second-factor-reset"),
]
