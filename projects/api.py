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

from accounts.api import StaffOnly
from accounts.models import MAX_DAYS_AVAILABLE
from accounts.services.invites import invite_is_held
from accounts.sessions import request_kek
from core.client_ip import client_ip
from core.throttling import throttle_check
from projects import services
from projects.models import Project, ProjectMembership, ProjectStatus
from projects.selectors import (
    Need,
    project_get_for_user,
    project_members,
    project_role_of,
    projects_list_for,
)
from transfers.annotations import with_file_totals
from transfers.selectors import projects_busy_for

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
    held = serializers.SerializerMethodField(
        help_text="True while no registration link has been emailed (--no-mail, or "
                  "another unit holds the invitation).")

    def get_held(self, invite) -> bool:
        return invite_is_held(invite=invite)


def _out(request, project):
    project = with_file_totals(Project.objects.filter(pk=project.pk)).select_related(
        "unit").get()
    return ProjectOut(project, context={"request": request}).data


# --------------------------------------------------------------------------- list / create


class ProjectCreateOut(ProjectOut):
    added = MemberOut(many=True, help_text="Researchers with an account, now members.")
    invited = InviteOut(many=True, help_text="Addresses without an account, invited.")


class ProjectListCreate(APIView):
    class ProjectCreateIn(serializers.Serializer):
        title = serializers.CharField(max_length=255)
        description = serializers.CharField(required=False, allow_blank=True, max_length=10000)
        pi = serializers.CharField(required=False, allow_blank=True, max_length=255)
        non_sensitive = serializers.BooleanField(required=False, default=False)
        force = serializers.BooleanField(required=False, default=False)
        # Emails are checked by the service, which names a bad address in its answer.
        researchers = serializers.ListField(child=serializers.CharField(max_length=254),
                                            required=False, default=list, max_length=200)
        owners = serializers.ListField(child=serializers.CharField(max_length=254),
                                       required=False, default=list, max_length=200)
        notify = serializers.BooleanField(
            required=False, default=True,
            help_text="Email the invitations (false: held until re-sent).")

    class ProjectListQuery(serializers.Serializer):
        status = serializers.ChoiceField(choices=ProjectStatus.choices, required=False,
                                         help_text="Only projects in this status (its code).")

    @extend_schema(parameters=[ProjectListQuery], responses=ProjectOut(many=True),
                   summary="Projects you can see")
    def get(self, request):
        query = self.ProjectListQuery(data=request.query_params)
        query.is_valid(raise_exception=True)  # an unknown status is a 400, not an empty list
        rows = with_file_totals(projects_list_for(request.user,
                                                  status=query.validated_data.get("status")))
        return Response(ProjectOut(rows, many=True, context={"request": request}).data)

    @extend_schema(request=ProjectCreateIn, responses={201: ProjectCreateOut},
                   summary="Create a project (unit staff); invites emails without an account")
    def post(self, request):
        data = self.ProjectCreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        if v["researchers"] or v["owners"]:
            throttle_check(request, "invite", by="user")
        created = services.project_create_with_members(
            unit=request.user.unit, by=request.user,
            by_kek=request_kek(request) if v["researchers"] or v["owners"] else None,
            title=v["title"], description=v.get("description", ""), pi=v.get("pi", ""),
            non_sensitive=v["non_sensitive"], force=v["force"],
            researchers=v["researchers"], owners=v["owners"], notify=v["notify"],
            ip=client_ip(request))
        body = {**_out(request, created.project),
                "added": MemberOut(created.added, many=True).data,
                "invited": InviteOut(created.invited, many=True).data}
        return Response(body, status=status.HTTP_201_CREATED)


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
                                          ip=client_ip(request), **data.validated_data)
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
                                        notify=data["notify"], ip=client_ip(request))


@extend_schema(request=None, responses=ProjectOut, summary="Retract (Available → In Progress)")
class ProjectRetract(_Transition):
    def act(self, request, project, data):
        return services.project_retract(project=project, by=request.user,
                                        ip=client_ip(request))


@extend_schema(request=ProjectExtendIn, responses=ProjectOut, summary="Extend the deadline")
class ProjectExtend(_Transition):
    In = ProjectExtendIn

    def act(self, request, project, data):
        return services.project_extend(project=project, by=request.user, days=data["days"],
                                       ip=client_ip(request))


@extend_schema(request=ProjectArchiveIn, responses=ProjectOut, summary="Archive (optionally abort)")
class ProjectArchive(_Transition):
    In = ProjectArchiveIn

    def act(self, request, project, data):
        return services.project_archive(project=project, by=request.user, abort=data["abort"],
                                        ip=client_ip(request))


@extend_schema(request=None, responses=ProjectOut,
               summary="Delete (In Progress, never released)")
class ProjectDelete(_Transition):
    def act(self, request, project, data):
        return services.project_delete(project=project, by=request.user,
                                       ip=client_ip(request))


# --------------------------------------------------------------------------- members


class MembersOut(serializers.Serializer):
    members = MemberOut(many=True)
    invites = InviteOut(many=True)


class ProjectMembers(APIView):
    class MemberAddIn(serializers.Serializer):
        email = serializers.EmailField()
        owner = serializers.BooleanField(required=False, default=False)
        notify = serializers.BooleanField(
            required=False, default=True,
            help_text="Email them (false: no email; a new address's invite is held).")

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
            notify=data.validated_data["notify"], ip=client_ip(request))
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
            owner=data.validated_data["owner"], ip=client_ip(request))  # with has_key
        return Response(MemberOut(membership).data)

    @extend_schema(request=None, responses={204: None}, summary="Revoke a member's access")
    def delete(self, request, project_id, username):
        project = project_get_for_user(user=request.user, public_id=project_id, need=Need.OWNER)
        services.project_member_revoke(project=project, by=request.user, username=username,
                                       ip=client_ip(request))
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



# --------------------------------------------------------------------------- in flight


class StaffOrOperator(StaffOnly):
    """Unit staff (their unit's projects) and the Super Admin (all); researchers 403."""

    message = "Only unit staff and operators can see which projects are busy."


class BusyProjectOut(serializers.Serializer):
    id = serializers.CharField()
    unit = serializers.CharField()
    status = serializers.CharField()
    uploads = serializers.IntegerField(help_text="Uploads in progress (recently started).")
    uploads_since = serializers.DateTimeField(allow_null=True)
    rotation_since = serializers.DateTimeField(
        allow_null=True, help_text="A project key rotation runs since then.")
    rotation_files_done = serializers.IntegerField(allow_null=True)
    purge_pending = serializers.BooleanField(
        help_text="Deleted or archived; its objects are still being removed from storage.")
    purge_since = serializers.DateTimeField(allow_null=True)
    locked = serializers.BooleanField(help_text="A long operation holds the project.")
    since = serializers.DateTimeField(help_text="When the oldest of these began.",
                                      allow_null=True)


class ProjectsBusy(APIView):
    permission_classes = [StaffOrOperator]

    @extend_schema(responses={200: BusyProjectOut(many=True), 403: inline_serializer(
        "BusyDetail", {"detail": serializers.CharField()})},
        summary="Projects with work in flight (uploads, key rotation, storage purge)")
    def get(self, request):
        return Response(BusyProjectOut(projects_busy_for(request.user), many=True).data)
