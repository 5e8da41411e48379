"""API views: the authenticator app (TOTP) of the logged-in user (mounted by accounts/urls.py
under /api/v1/), for ``dds auth twofactor configure``.

The same rules as the portal's account page (accounts.services.totp): any logged-in user
with a full session may start a set-up (no password again, as in the portal); the first
correct code confirms it (wrong codes count towards the login lockout, and the rate is
throttled like the login's second step); turning the app off is confirmed by a link
emailed to the user, as in the portal.
"""

from __future__ import annotations

from django.urls import URLPattern, path
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import TOTP_DIGITS
from accounts.services.totp import (
    totp_disable_request,
    totp_provisioning,
    totp_replace_check,
    totp_setup_confirm,
    totp_setup_start,
)
from core.client_ip import client_ip
from core.throttling import throttle

DETAIL = inline_serializer("TotpDetail", {"detail": serializers.CharField()})


class TotpSetupOut(serializers.Serializer):
    uri = serializers.CharField(help_text="otpauth:// URI for the authenticator app (the "
                                          "QR code's content).")
    secret = serializers.CharField(help_text="The same secret in base32, to type in by hand.")
    digits = serializers.IntegerField()
    period = serializers.IntegerField()
    detail = serializers.CharField()


class TotpSetupApi(APIView):
    throttle_classes = [throttle("2fa", by="user")]

    class TotpSetupIn(serializers.Serializer):
        password = serializers.CharField(
            required=False, allow_blank=True, max_length=128, trim_whitespace=False,
            help_text="Needed when an authenticator app is already set up (replacing it).")

    @extend_schema(request=TotpSetupIn,
                   responses={201: TotpSetupOut, 401: DETAIL, 403: DETAIL, 429: DETAIL},
                   summary="Start setting up an authenticator app",
                   description="Makes a new, unconfirmed authenticator device (replacing an "
                               "unconfirmed one) and returns its secret, shown this once. "
                               "It counts only after POST /me/totp/confirm with a code. "
                               "Replacing a confirmed app needs `password` (403 "
                               "`password_required` without it).")
    def post(self, request) -> Response:
        data = self.TotpSetupIn(data=request.data or {})
        data.is_valid(raise_exception=True)
        totp_replace_check(user=request.user, password=data.validated_data.get("password"),
                           ip=client_ip(request))
        device = totp_setup_start(user=request.user, ip=client_ip(request))
        p = totp_provisioning(device=device)
        response = Response(TotpSetupOut({
            "uri": p.uri, "secret": p.secret, "digits": p.digits, "period": p.period,
            "detail": f"Scan the code with your authenticator app, then confirm with the "
                      f"{p.digits}-digit code it shows."}).data,
            status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"
        return response


class TotpConfirmApi(APIView):
    throttle_classes = [throttle("2fa", by="user")]

    class TotpConfirmIn(serializers.Serializer):
        code = serializers.CharField(max_length=16)

    class TotpConfirmOut(serializers.Serializer):
        second_factor = serializers.CharField()
        detail = serializers.CharField()

    @extend_schema(request=TotpConfirmIn,
                   responses={200: TotpConfirmOut, 400: DETAIL, 401: DETAIL, 429: DETAIL},
                   summary="Confirm the authenticator app with its first code",
                   description=f"The {TOTP_DIGITS}-digit code from the app. From then on, "
                               "logins ask for the app's code instead of an emailed one; "
                               "the user is emailed. A wrong code is a 400 and counts "
                               "towards the login lockout.")
    def post(self, request) -> Response:
        data = self.TotpConfirmIn(data=request.data)
        data.is_valid(raise_exception=True)
        totp_setup_confirm(user=request.user, code=data.validated_data["code"],
                           ip=client_ip(request))
        return Response(self.TotpConfirmOut({
            "second_factor": "totp",
            "detail": "Authenticator app enabled: logins now ask for its code."}).data)


class TotpApi(APIView):
    @extend_schema(request=None, responses={202: DETAIL, 400: DETAIL, 401: DETAIL},
                   summary="Turn the authenticator app off (emails a confirmation link)",
                   description="Back to emailed codes: the user confirms with the link in "
                               "the email (valid one hour), as on the portal's account "
                               "page. 400 when no authenticator app is set up.")
    def delete(self, request) -> Response:
        totp_disable_request(user=request.user, ip=client_ip(request))
        return Response({"detail": "Check your email: the link in it turns the "
                                   "authenticator app off, and logins use emailed codes "
                                   "again."}, status=status.HTTP_202_ACCEPTED)


urlpatterns: list[URLPattern] = [
    path("me/totp", TotpApi.as_view(), name="me-totp"),
    path("me/totp/setup", TotpSetupApi.as_view(), name="me-totp-setup"),
    path("me/totp/confirm", TotpConfirmApi.as_view(), name="me-totp-confirm"),
]
