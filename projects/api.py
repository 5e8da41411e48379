"""Project API: list/create, info, status history and transitions, members and access.

One small view per operation; every rule is in projects.services / keys.services, every
authorisation in projects.selectors.project_get_for_user. Storage totals (size, files)
come from transfers.annotations, applied here.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import MAX_DAYS_AVAILABLE, User
from accounts.sessions import request_kek
from core.client_ip import client_ip
from core.errors import BadInput
from core.throttling import throttle_check
from projects import services
from projects.models import Project, ProjectMembership
from projects.selectors import (
    Need,
    project_get_for_user,
    project_members,
    project_role_of,
    projects_list_for,
)
from transfers.annotations import with_file_totals

# --------------------------------------------------------------------------- serializers


class ProjectOut(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    title = serializers.CharField()
    description = serializers.CharField()
    pi = serializers.CharField()
    unit = serializers.CharField(source="unit.display_name")
    status = serializers.CharField()
    status_display = serializers.CharField(source="get_status_display")
    deadline = serializers.DateTimeField(allow_null=True)
    non_sensitive = serializers.BooleanField()
    released = serializers.BooleanField()
    busy = serializers.BooleanField()
    size_bytes = serializers.IntegerField(source="size", default=0)
    files = serializers.IntegerField(source="file_count", default=0)
    role = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def get_role(self, obj) -> str:
        # Lists come annotated (projects_list_for); a single project asks.
        role = getattr(obj, "role", None)
        return role if role is not None else project_role_of(self.context["request"].user, obj)


class StatusEventOut(serializers.Serializer):
    status = serializers.CharField()
    deadline = serializers.DateTimeField(allow_null=True)
    aborted = serializers.BooleanField(source="is_aborted")
    by = serializers.CharField(source="by.username", default=None, allow_null=True)
    at = serializers.DateTimeField()


class MemberOut(serializers.Serializer):
    username = serializers.CharField(source="user.username")
    name = serializers.CharField(source="user.name")
    email = serializers.EmailField(source="user.email")
    owner = serializers.BooleanField(source="is_owner")
    has_key = serializers.BooleanField()


class InviteOut(serializers.Serializer):
    email = serializers.EmailField()
    owner = serializers.BooleanField(source="is_owner")
    expires_at = serializers.DateTimeField()


def _out(request, project):
    project = with_file_totals(Project.objects.filter(pk=project.pk)).select_related(
        "unit").get()
    return ProjectOut(project, context={"request": request}).data


# --------------------------------------------------------------------------- list / create


class ProjectListCreate(APIView):
    class ProjectCreateIn(serializers.Serializer):
        title = serializers.CharField(max_length=255)
        description = serializers.CharField(required=False, allow_blank=True, max_length=10000)
        pi = serializers.CharField(required=False, allow_blank=True, max_length=255)
        non_sensitive = serializers.BooleanField(required=False, default=False)
        force = serializers.BooleanField(required=False, default=False)
        researchers = serializers.ListField(child=serializers.EmailField(), required=False,
                                            default=list, max_length=200)
        owners = serializers.ListField(child=serializers.EmailField(), required=False,
                                       default=list, max_length=200)

    @extend_schema(responses=ProjectOut(many=True), summary="Projects you can see")
    def get(self, request):
        rows = with_file_totals(projects_list_for(request.user,
                                                  status=request.query_params.get("status")))
        return Response(ProjectOut(rows, many=True, context={"request": request}).data)

    @extend_schema(request=ProjectCreateIn, responses={201: ProjectOut},
                   summary="Create a project (unit staff)")
    def post(self, request):
        data = self.ProjectCreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        researchers, unknown = _users_by_email(v["researchers"])
        owners, unknown_owners = _users_by_email(v["owners"])
        if unknown or unknown_owners:
            raise BadInput("These emails have no account yet; create the project first, "
                           "then add them to invite them: " + ", ".join(unknown + unknown_owners))
        project = services.project_create(
            unit=request.user.unit, by=request.user, title=v["title"],
            description=v.get("description", ""), pi=v.get("pi", ""),
            non_sensitive=v["non_sensitive"], force=v["force"], researchers=researchers,
            owners=owners)
        return Response(_out(request, project), status=status.HTTP_201_CREATED)


def _users_by_email(emails: list[str]) -> tuple[list[User], list[str]]:
    found: list[User] = []
    unknown: list[str] = []
    for email in emails:
        user = User.objects.filter(email__iexact=email, is_active=True).first()
        if user is None:
            unknown.append(email)
        else:
            found.append(user)
    return found, unknown


# --------------------------------------------------------------------------- info


class ProjectDetail(APIView):
    class ProjectUpdateIn(serializers.Serializer):
        title = serializers.CharField(max_length=255, required=False)
        description = serializers.CharField(allow_blank=True, max_length=10000, required=False)
        pi = serializers.CharField(allow_blank=True, max_length=255, required=False)

    @extend_schema(responses=ProjectOut, summary="Project info")
    def get(self, request, project_id):
        project = project_get_for_user(user=request.user, public_id=project_id)
        return Response(_out(request, project))

    @extend_schema(request=ProjectUpdateIn, responses=ProjectOut,
                   summary="Edit title/description/PI (staff; owners: description)")
    def patch(self, request, project_id):
        project = project_get_for_user(user=request.user, public_id=project_id, need=Need.OWNER)
        data = self.ProjectUpdateIn(data=request.data)
        data.is_valid(raise_exception=True)
        project = services.project_update(project=project, by=request.user,
                                          **data.validated_data)
        return Response(_out(request, project))


class ProjectStatusHistory(APIView):
    @extend_schema(responses=inline_serializer("ProjectStatusOut", {
        "status": serializers.CharField(), "deadline": serializers.DateTimeField(allow_null=True),
        "history": StatusEventOut(many=True)}), summary="Current status and full history")
    def get(self, request, project_id):
        project = project_get_for_user(user=request.user, public_id=project_id)
        events = project.status_events.select_related("by").order_by("at", "id")
        return Response({"status": project.status, "deadline": project.deadline,
                         "history": StatusEventOut(events, many=True).data})


# --------------------------------------------------------------------------- transitions


class _Transition(APIView):
    need = Need.STAFF
    In: type[serializers.Serializer] = serializers.Serializer

    def act(self, request, project, data):  # pragma: no cover - overridden
        raise NotImplementedError

    def post(self, request, project_id):
        project = project_get_for_user(user=request.user, public_id=project_id, need=self.need)
        data = self.In(data=request.data)
        data.is_valid(raise_exception=True)
        project = self.act(request, project, data.validated_data)
        return Response(_out(request, project))


class ProjectReleaseIn(serializers.Serializer):
    deadline_days = serializers.IntegerField(required=False, min_value=1,
                                             max_value=MAX_DAYS_AVAILABLE,
                                             help_text="Days available (default: unit's).")
    notify = serializers.BooleanField(required=False, default=True)


class ProjectExtendIn(serializers.Serializer):
    days = serializers.IntegerField(min_value=1, max_value=MAX_DAYS_AVAILABLE)


class ProjectArchiveIn(serializers.Serializer):
    abort = serializers.BooleanField(required=False, default=False)


@extend_schema(request=ProjectReleaseIn, responses=ProjectOut,
               summary="Release (In Progress/Expired → Available)")
class ProjectRelease(_Transition):
    In = ProjectReleaseIn

    def act(self, request, project, data):
        return services.project_release(project=project, by=request.user,
                                        deadline_days=data.get("deadline_days"),
                                        notify=data["notify"])


@extend_schema(request=None, responses=ProjectOut, summary="Retract (Available → In Progress)")
class ProjectRetract(_Transition):
    def act(self, request, project, data):
        return services.project_retract(project=project, by=request.user)


@extend_schema(request=ProjectExtendIn, responses=ProjectOut, summary="Extend the deadline")
class ProjectExtend(_Transition):
    In = ProjectExtendIn

    def act(self, request, project, data):
        return services.project_extend(project=project, by=request.user, days=data["days"])


@extend_schema(request=ProjectArchiveIn, responses=ProjectOut, summary="Archive (optionally abort)")
class ProjectArchive(_Transition):
    In = ProjectArchiveIn

    def act(self, request, project, data):
        return services.project_archive(project=project, by=request.user, abort=data["abort"])


@extend_schema(request=None, responses=ProjectOut,
               summary="Delete (In Progress, never released)")
class ProjectDelete(_Transition):
    def act(self, request, project, data):
        return services.project_delete(project=project, by=request.user)


# --------------------------------------------------------------------------- members


class MembersOut(serializers.Serializer):
    members = MemberOut(many=True)
    invites = InviteOut(many=True)


class ProjectMembers(APIView):
    class MemberAddIn(serializers.Serializer):
        email = serializers.EmailField()
        owner = serializers.BooleanField(required=False, default=False)

    @extend_schema(responses=MembersOut, summary="Members and pending invites")
    def get(self, request, project_id):
        project = project_get_for_user(user=request.user, public_id=project_id)
        members = project_members(project)  # with has_key
        invites = project.invites.order_by("email")
        return Response(MembersOut({"members": members, "invites": invites}).data)

    @extend_schema(request=MemberAddIn, responses={200: MemberOut, 201: InviteOut,
                                                   429: inline_serializer("ThrottledDetail", {
                                                       "detail": serializers.CharField()})},
                   summary="Add a researcher (existing user) or invite (new email)")
    def post(self, request, project_id):
        throttle_check(request, "invite", by="user")
        project = project_get_for_user(user=request.user, public_id=project_id, need=Need.OWNER)
        data = self.MemberAddIn(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.project_member_add(
            project=project, by=request.user, kek=request_kek(request),
            email=data.validated_data["email"], owner=data.validated_data["owner"],
            ip=client_ip(request))
        if isinstance(result, ProjectMembership):  # an existing researcher, with has_key
            return Response(MemberOut(result).data, status=status.HTTP_200_OK)
        return Response(InviteOut(result).data, status=status.HTTP_201_CREATED)


class ProjectMember(APIView):
    class MemberOwnerIn(serializers.Serializer):
        owner = serializers.BooleanField()

    @extend_schema(request=MemberOwnerIn, responses=MemberOut, summary="Set or unset owner")
    def patch(self, request, project_id, username):
        project = project_get_for_user(user=request.user, public_id=project_id, need=Need.OWNER)
        data = self.MemberOwnerIn(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.project_member_set_owner(
            project=project, by=request.user, username=username,
            owner=data.validated_data["owner"])  # with has_key
        return Response(MemberOut(membership).data)

    @extend_schema(request=None, responses={204: None}, summary="Revoke a member's access")
    def delete(self, request, project_id, username):
        project = project_get_for_user(user=request.user, public_id=project_id, need=Need.OWNER)
        services.project_member_revoke(project=project, by=request.user, username=username)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProjectAccessFix(APIView):
    class AccessFixIn(serializers.Serializer):
        username = serializers.CharField(max_length=30)

    @extend_schema(request=AccessFixIn, responses=inline_serializer("AccessFixOut", {
        "fixed": serializers.ListField(child=serializers.CharField())}),
        summary="Re-grant keys to a member who reset their password")
    def post(self, request, project_id):
        project = project_get_for_user(user=request.user, public_id=project_id, need=Need.OWNER)
        data = self.AccessFixIn(data=request.data)
        data.is_valid(raise_exception=True)
        fixed = services.project_access_fix(project=project, by=request.user,
                                            kek=request_kek(request),
                                            username=data.validated_data["username"],
                                            ip=client_ip(request))
        return Response({"fixed": [p.public_id for p in fixed]})

