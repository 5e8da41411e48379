"""Accounts API: login with a second factor, tokens, invites, registration, passwords.

One small view per operation; the rules live in accounts.services (project invites and
access fixes in projects.services), who may see what in the selectors and the permission
classes below. Errors are answered by core.errors.api_exception_handler.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services
from accounts.authentication import PendingTokenAuthentication
from accounts.errors import TokenInvalid
from accounts.models import AuthSessionKind, AuthSessionState, Role, Unit, User
from accounts.selectors import (
    invites_pending,
    is_operator,
    unit_get_for_actor,
    units_visible_to,
    user_get_for_actor,
    user_projects_summary,
    users_find,
    users_visible_to,
    with_second_factor,
)
from accounts.services.agreement import (
    AGREEMENT_TEXT_PATH,
    agreement_token_check,
    agreement_version,
)
from accounts.sessions import (
    api_tokens_issue,
    live_session,
    pending_token_issue,
    request_kek,
    request_key_session,
)
from accounts.validators import MAX_LENGTH
from core.client_ip import client_ip
from core.throttling import throttle
from projects.models import Project
from projects.selectors import project_get_for_user
from projects.services import invite_to_project, user_access_fix
from transfers.annotations import with_unit_storage

DETAIL = inline_serializer("Detail", {"detail": serializers.CharField()})


class TokensOut(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()
    token_type = serializers.CharField(default="Bearer")
    access_expires_at = serializers.DateTimeField()
    refresh_expires_at = serializers.DateTimeField()


def _tokens_response(session, carried_key: str, ip: str | None) -> Response:
    # No tokens while the user agreement in force is not accepted (403 agreement_required).
    agreement_token_check(session=session, ip=ip)
    issued = api_tokens_issue(session=session, carried_key=carried_key)
    return Response(TokensOut({"access": issued.access, "refresh": issued.refresh,
                               "token_type": "Bearer",
                               "access_expires_at": issued.access_expires_at,
                               "refresh_expires_at": issued.refresh_expires_at}).data)


class PublicView(APIView):
    """Reachable without a token (login, refresh, registration, reset)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]


# --------------------------------------------------------------------------- login


class LoginApi(PublicView):
    throttle_classes = [throttle("login")]

    class LoginIn(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=MAX_LENGTH * 4, trim_whitespace=False)

    class LoginOut(serializers.Serializer):
        pending_token = serializers.CharField()
        second_factor = serializers.ChoiceField(choices=["email", "totp"])
        detail = serializers.CharField()

    @extend_schema(request=LoginIn, responses={200: LoginOut, 401: DETAIL, 429: DETAIL},
                   summary="Log in, step 1: username and password",
                   description="Sends an 8-digit email code (or expects an authenticator "
                               "code) and returns a short-lived pending token for /auth/2fa.")
    def post(self, request):
        data = self.LoginIn(data=request.data)
        data.is_valid(raise_exception=True)
        challenge = services.login_start(username=data.validated_data["username"],
                                         password=data.validated_data["password"],
                                         kind=AuthSessionKind.API, ip=client_ip(request))
        detail = ("Enter the code we emailed you." if challenge.method == "email"
                  else "Enter the code from your authenticator app.")
        return Response(self.LoginOut({
            "pending_token": pending_token_issue(session=challenge.session,
                                                 session_key=challenge.session_key),
            "second_factor": challenge.method, "detail": detail}).data)


def request_key_session_pending(request):
    """The pending session behind a pending token, and its carried session key."""
    session = live_session(public_id=request.auth.get("sid"), user_id=request.user.pk,
                           state=AuthSessionState.PENDING)
    if session is None:
        raise TokenInvalid()
    return session, str(request.auth.get("ks", ""))


class TwoFactorApi(APIView):
    throttle_classes = [throttle("2fa")]
    authentication_classes = [PendingTokenAuthentication]

    class TwoFactorIn(serializers.Serializer):
        code = serializers.CharField(max_length=16)

    @extend_schema(request=TwoFactorIn, responses={200: TokensOut, 401: DETAIL, 429: DETAIL},
                   summary="Log in, step 2: the code",
                   description="With the pending token as Bearer. Returns an access token "
                               "and a rotating refresh token.")
    def post(self, request):
        data = self.TwoFactorIn(data=request.data)
        data.is_valid(raise_exception=True)
        ks = request_key_session_pending(request)
        session = services.login_verify(session=ks[0], code=data.validated_data["code"],
                                         ip=client_ip(request))
        return _tokens_response(session, ks[1], client_ip(request))


class CodeResendApi(APIView):
    throttle_classes = [throttle("code_resend"), throttle("code_resend_user", by="user")]
    authentication_classes = [PendingTokenAuthentication]

    @extend_schema(request=None, responses={202: DETAIL, 401: DETAIL, 429: DETAIL},
                   summary="Send a new email code for a pending login")
    def post(self, request):
        session, _ = request_key_session_pending(request)
        services.login_code_resend(session=session, ip=client_ip(request))
        return Response({"detail": "If your second factor is email, a new code was sent."},
                        status=status.HTTP_202_ACCEPTED)


class RefreshApi(PublicView):
    class RefreshIn(serializers.Serializer):
        refresh = serializers.CharField(max_length=4096)

    @extend_schema(request=RefreshIn, responses={200: TokensOut, 401: DETAIL},
                   summary="Rotate the refresh token",
                   description="Each refresh token works once; reusing one ends the session.")
    def post(self, request):
        data = self.RefreshIn(data=request.data)
        data.is_valid(raise_exception=True)
        refreshed = services.auth_session_refresh(raw_refresh=data.validated_data["refresh"],
                                                  ip=client_ip(request))
        return _tokens_response(refreshed.session, refreshed.carried_key, client_ip(request))


class LogoutApi(APIView):
    @extend_schema(request=None, responses={204: None},
                   summary="Log out: end every session of the user (API and portal)")
    def post(self, request):
        services.auth_logout(user=request.user, ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --------------------------------------------------------------------------- registration


class RegisterApi(PublicView):
    throttle_classes = [throttle("register")]

    class RegisterIn(serializers.Serializer):
        token = serializers.CharField(max_length=200)
        username = serializers.CharField(max_length=30)
        name = serializers.CharField(max_length=255)
        password = serializers.CharField(max_length=MAX_LENGTH * 4, trim_whitespace=False)
        accept_agreement = serializers.BooleanField(
            required=True, help_text=f"Must be true: you accept the user agreement "
                                     f"({AGREEMENT_TEXT_PATH} on the portal).")
        agreement_version = serializers.CharField(
            max_length=32, required=False,
            help_text="The version of the agreement you read (refused if it is no longer "
                      "the one in force). Default: the one in force.")

        def validate_accept_agreement(self, value: bool) -> bool:
            if not value:
                raise serializers.ValidationError(
                    f"Accept the user agreement (read it at {AGREEMENT_TEXT_PATH}) to "
                    "register.")
            return value

    class RegisterOut(serializers.Serializer):
        username = serializers.CharField()
        role = serializers.CharField()
        projects = serializers.ListField(child=serializers.CharField())

    @extend_schema(request=RegisterIn, responses={201: RegisterOut, 400: DETAIL, 429: DETAIL},
                   summary="Register from an invite",
                   description="Requires accepting the user agreement (accept_agreement).")
    def post(self, request):
        data = self.RegisterIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = dict(data.validated_data)
        del v["accept_agreement"]  # validated true above
        v["agreement_version"] = v.get("agreement_version") or agreement_version()
        user = services.user_register(ip=client_ip(request), **v)
        return Response(self.RegisterOut({"username": user.username, "role": user.role,
                                  "projects": [m["project"] for m in
                                               user_projects_summary(user)]}).data,
                        status=status.HTTP_201_CREATED)


class PasswordResetApi(PublicView):
    throttle_classes = [throttle("password_reset")]

    class PasswordResetIn(serializers.Serializer):
        email = serializers.EmailField(max_length=254)

    @extend_schema(request=PasswordResetIn, responses={202: DETAIL, 429: DETAIL},
                   summary="Ask for a password reset link")
    def post(self, request):
        data = self.PasswordResetIn(data=request.data)
        data.is_valid(raise_exception=True)
        services.user_password_reset_request(email=data.validated_data["email"],
                                             ip=client_ip(request))
        # The same answer either way: the endpoint does not reveal which emails exist.
        return Response({"detail": "If the address has an account, a reset link was sent. "
                                   "It is valid for one hour."},
                        status=status.HTTP_202_ACCEPTED)


class PasswordResetConfirmApi(PublicView):
    throttle_classes = [throttle("reset_link")]

    class PasswordResetConfirmIn(serializers.Serializer):
        uid = serializers.CharField(max_length=64)
        token = serializers.CharField(max_length=128)
        new_password = serializers.CharField(max_length=MAX_LENGTH * 4, trim_whitespace=False)

    @extend_schema(request=PasswordResetConfirmIn,
                   responses={200: DETAIL, 400: DETAIL, 429: DETAIL},
                   summary="Set a new password from a reset link",
                   description="Makes a new key pair: project access is lost until someone "
                               "with access runs an access fix.")
    def post(self, request):
        data = self.PasswordResetConfirmIn(data=request.data)
        data.is_valid(raise_exception=True)
        services.user_password_reset(ip=client_ip(request), **data.validated_data)
        return Response({"detail": "Your password was reset. Log in with the new one; ask a "
                                   "project owner or your unit for an access fix."})


# --------------------------------------------------------------------------- me


class MeApi(APIView):
    class MeOut(serializers.Serializer):
        username = serializers.CharField()
        name = serializers.CharField()
        email = serializers.EmailField()
        role = serializers.CharField()
        role_label = serializers.CharField()
        unit = serializers.CharField(allow_null=True)
        second_factor = serializers.CharField()
        has_keys = serializers.BooleanField()
        date_joined = serializers.DateTimeField()
        last_login = serializers.DateTimeField(allow_null=True)
        projects = inline_serializer("MeProject", {
            "project": serializers.CharField(), "title": serializers.CharField(),
            "is_owner": serializers.BooleanField()}, many=True)

    @extend_schema(responses={200: MeOut}, summary="Describe the logged-in user")
    def get(self, request):
        user = request.user
        return Response(self.MeOut({
            "username": user.username, "name": user.name, "email": user.email,
            "role": user.role, "role_label": Role(user.role).label,
            "unit": user.unit.name if user.unit_id else None,
            "second_factor": services.second_factor_method(user),
            "has_keys": bool(user.public_key), "date_joined": user.date_joined,
            "last_login": user.last_login, "projects": user_projects_summary(user)}).data)


class PasswordChangeApi(APIView):
    class PasswordChangeIn(serializers.Serializer):
        current_password = serializers.CharField(max_length=MAX_LENGTH * 4,
                                                 trim_whitespace=False)
        new_password = serializers.CharField(max_length=MAX_LENGTH * 4, trim_whitespace=False)

    @extend_schema(request=PasswordChangeIn, responses={200: DETAIL, 400: DETAIL},
                   summary="Change the password",
                   description="Keeps project access; ends every other session.")
    def post(self, request):
        data = self.PasswordChangeIn(data=request.data)
        data.is_valid(raise_exception=True)
        ks = request_key_session(request)
        services.user_password_change(user=request.user, keep=ks.session,
                                      keep_key=ks.session_key, ip=client_ip(request),
                                      **data.validated_data)
        return Response({"detail": "Password changed; your other sessions were ended."})


class SelfDeleteRequestApi(APIView):
    @extend_schema(request=None, responses={202: DETAIL, 400: DETAIL},
                   summary="Ask to delete your account (emails a confirmation link)")
    def post(self, request):
        services.user_self_delete_request(user=request.user, ip=client_ip(request))
        return Response({"detail": "Check your email to confirm the deletion."},
                        status=status.HTTP_202_ACCEPTED)


class SelfDeleteApi(APIView):
    class SelfDeleteIn(serializers.Serializer):
        token = serializers.CharField(max_length=512)

    @extend_schema(request=SelfDeleteIn, responses={204: None, 400: DETAIL},
                   summary="Delete your account with the emailed confirmation token")
    def post(self, request):
        data = self.SelfDeleteIn(data=request.data)
        data.is_valid(raise_exception=True)
        services.user_self_delete(user=request.user, token=data.validated_data["token"],
                                  ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --------------------------------------------------------------------------- invites, users


class PendingInviteOut(serializers.Serializer):
    email = serializers.EmailField()
    role = serializers.CharField()
    unit = serializers.CharField(allow_null=True, help_text="The unit of a staff invite.")
    projects = serializers.ListField(child=serializers.CharField(),
                                     help_text="Projects the invite gives access to (for "
                                               "unit staff, those of their unit).")
    invited_by = serializers.CharField(
        allow_null=True, help_text="Username of who invited (null for another unit's staff).")
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    is_expired = serializers.BooleanField(help_text="Expired invites are removed by the "
                                                    "nightly clean-up.")


class InviteCreateApi(APIView):
    # POST sends an invite, GET lists the pending ones: one route for the path "invites".
    throttle_classes = [throttle("invite", by="user")]

    def get_throttles(self):
        # The rate limits sending invites (emails), not reading the list.
        return [] if self.request.method == "GET" else super().get_throttles()

    @extend_schema(responses={200: PendingInviteOut(many=True), 403: DETAIL},
                   summary="Pending invites: your unit's (all for a Super Admin)",
                   description="Invites to your unit and invites to your unit's projects, "
                               "newest first, expired ones included until the clean-up "
                               "removes them. Researchers get 403 (a project's pending "
                               "invites are listed with its members).")
    def get(self, request):
        return Response(PendingInviteOut(invites_pending(request.user), many=True).data)

    class InviteCreateIn(serializers.Serializer):
        email = serializers.EmailField(max_length=254)
        role = serializers.ChoiceField(choices=Role.choices, default=Role.RESEARCHER)
        project = serializers.CharField(max_length=32, required=False)
        unit = serializers.CharField(max_length=255, required=False, help_text=(
            "The unit of the staff invited: its name, internal ref or public id "
            "(Super Admin)."))
        is_owner = serializers.BooleanField(default=False)
        notify = serializers.BooleanField(default=True, help_text=(
            "False: send no email (the facility tells the person itself). A new invite is "
            "then held: inviting the address again with notify on emails its link."))

    class InviteCreateOut(serializers.Serializer):
        kind = serializers.ChoiceField(
            choices=["invited", "added", "held"],
            help_text="held: the address has an invitation another unit holds back (no "
                      "email); this grant waits with it.")
        email = serializers.EmailField()
        expires_at = serializers.DateTimeField(allow_null=True)

    @extend_schema(request=InviteCreateIn,
                   responses={201: InviteCreateOut, 200: InviteCreateOut, 400: DETAIL,
                              403: DETAIL, 404: DETAIL, 429: DETAIL},
                   summary="Invite a user (or add an existing researcher to the project)",
                   description="404: no project or unit of that name that you can see.")
    def post(self, request):
        data = self.InviteCreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        project: Project | None = None
        unit: Unit | None = None
        kek: bytes | None = None
        if v.get("project"):
            project = project_get_for_user(user=request.user, public_id=v["project"])
            kek = request_kek(request)
        if v.get("unit"):
            unit = unit_get_for_actor(actor=request.user, name=v["unit"])
        if project is not None:  # the projects app decides who may invite to it
            result = invite_to_project(project=project, email=v["email"], role=v["role"],
                                       unit=unit, by=request.user, by_kek=kek,
                                       is_owner=v["is_owner"], ip=client_ip(request),
                                       notify=v["notify"])
        else:
            result = services.invite_create(email=v["email"], role=v["role"], by=request.user,
                                            unit=unit, is_owner=v["is_owner"],
                                            ip=client_ip(request), notify=v["notify"])
        return Response(self.InviteCreateOut({
            "kind": result.kind, "email": result.email,
            "expires_at": result.invite.expires_at if result.invite else None}).data,
            status=status.HTTP_201_CREATED if result.kind == "invited" else status.HTTP_200_OK)


class AccessFixApi(APIView):
    class UserAccessFixIn(serializers.Serializer):
        project = serializers.CharField(max_length=32, required=False)

    class UserAccessFixOut(serializers.Serializer):
        projects = serializers.ListField(child=serializers.CharField())

    @extend_schema(request=UserAccessFixIn, responses={200: UserAccessFixOut, 404: DETAIL},
                   summary="Restore a user's project access after a password reset")
    def post(self, request, username: str):
        data = self.UserAccessFixIn(data=request.data)
        data.is_valid(raise_exception=True)
        user = user_get_for_actor(actor=request.user, username=username)
        project: Project | None = None
        if data.validated_data.get("project"):
            project = project_get_for_user(user=request.user,
                                           public_id=data.validated_data["project"])
        fixed = user_access_fix(user=user, by=request.user, by_kek=request_kek(request),
                                project=project, ip=client_ip(request))
        return Response(self.UserAccessFixOut({"projects": [p.public_id for p in fixed]}).data)


class UserOut(serializers.Serializer):
    username = serializers.CharField()
    is_active = serializers.BooleanField()


class UserDeactivateApi(APIView):
    @extend_schema(request=None, responses={200: UserOut, 403: DETAIL, 404: DETAIL},
                   summary="Deactivate a user (ends all their sessions)")
    def post(self, request, username: str):
        user = user_get_for_actor(actor=request.user, username=username)
        services.user_deactivate(user=user, by=request.user, ip=client_ip(request))
        return Response(UserOut(user).data)


class UserReactivateApi(APIView):
    @extend_schema(request=None, responses={200: UserOut, 403: DETAIL, 404: DETAIL},
                   summary="Reactivate a user")
    def post(self, request, username: str):
        user = user_get_for_actor(actor=request.user, username=username)
        services.user_reactivate(user=user, by=request.user, ip=client_ip(request))
        return Response(UserOut(user).data)


class UserDeleteApi(APIView):
    @extend_schema(responses={204: None, 403: DETAIL, 404: DETAIL}, summary="Delete a user")
    def delete(self, request, username: str):
        user = user_get_for_actor(actor=request.user, username=username)
        services.user_delete(user=user, by=request.user, ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --------------------------------------------------------------------------- lists


class OperatorOnly(BasePermission):
    """The Super Admin only (:func:`accounts.selectors.is_operator`); others get 403.
    Subclasses change only ``message``."""

    message = "Only a Super Admin can do this."

    def has_permission(self, request, view) -> bool:
        return is_operator(request.user)


class StaffOnly(BasePermission):
    """Unit staff and the Super Admin (``User.is_staff``); researchers get 403."""

    message = "Only unit staff and operators can do this."

    def has_permission(self, request, view) -> bool:
        return bool(getattr(request.user, "is_staff", False))


class UserListers(StaffOnly):
    message = "Researchers cannot list users; see a project's members instead."


class UnitListers(StaffOnly):
    message = "Only unit staff and operators can list units."


class UserListOut(serializers.Serializer):
    username = serializers.CharField()
    name = serializers.CharField()
    email = serializers.EmailField()
    role = serializers.CharField()
    unit = serializers.CharField(source="unit.name", default=None, allow_null=True)
    is_active = serializers.BooleanField()
    second_factor = serializers.SerializerMethodField(
        help_text='"totp" (an authenticator app) or "email" (emailed codes).')
    date_joined = serializers.DateTimeField()
    last_login = serializers.DateTimeField(allow_null=True)

    def get_second_factor(self, user: User) -> str:
        return "totp" if getattr(user, "has_totp", False) else "email"


class UserListApi(APIView):
    permission_classes = [IsAuthenticated, UserListers]

    class UserListQuery(serializers.Serializer):
        q = serializers.CharField(max_length=254, required=False, help_text=(
            "Find: users whose username or email is this (case-insensitive), then those "
            "whose username starts with it; at most 50."))
        unit = serializers.CharField(max_length=255, required=False, help_text=(
            "Only this unit's staff (unit name). Unit staff may name their own unit; 404 "
            "for any other."))

    @extend_schema(parameters=[UserListQuery],
                   responses={200: UserListOut(many=True), 400: DETAIL, 403: DETAIL,
                              404: DETAIL},
                   summary="Users you manage: your unit's staff and its projects' members "
                           "(everyone for a Super Admin)",
                   description="With q, a search among them (an address you may not see "
                               "gives the same empty list as one nobody has); with unit, "
                               "that unit's staff.")
    def get(self, request):
        query = self.UserListQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        v = query.validated_data
        unit = unit_get_for_actor(actor=request.user, name=v["unit"]) if "unit" in v else None
        if "q" in v:
            found = users_find(actor=request.user, query=v["q"], unit=unit)
            return Response(UserListOut(found, many=True).data)
        users = with_second_factor(users_visible_to(request.user))
        if unit is not None:
            users = users.filter(unit=unit)
        return Response(UserListOut(users.order_by("username"), many=True).data)


class UnitOut(serializers.Serializer):
    public_id = serializers.CharField()
    name = serializers.CharField()
    display_name = serializers.CharField()
    contact_email = serializers.EmailField()
    days_in_available = serializers.IntegerField()
    days_in_expired = serializers.IntegerField()
    quota_bytes = serializers.IntegerField()
    warning_level = serializers.FloatField(help_text="Share of the quota at which the "
                                           "unit's admins are warned.")
    stored_bytes = serializers.IntegerField(help_text="Stored bytes of live file versions.")
    reserved_bytes = serializers.IntegerField(help_text="Bytes reserved by uploads in "
                                              "progress (the quota counts them too).")


class UnitListApi(APIView):
    permission_classes = [IsAuthenticated, UnitListers]

    @extend_schema(responses={200: UnitOut(many=True), 403: DETAIL},
                   summary="Units: all for a Super Admin, your own for unit staff")
    def get(self, request):
        units = with_unit_storage(units_visible_to(request.user))
        return Response(UnitOut(units, many=True).data)
