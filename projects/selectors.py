"""Reads for projects, and the one helper that fetches *and* authorises a project.

Visibility: a Super Admin sees every project's metadata (but holds no keys); unit staff
see their unit's projects; researchers see the projects they are members of. A project
the caller cannot see is a 404, so ids of other units' projects are not confirmed.

Storage totals (size, file count) are the transfers app's: the interface modules apply
``transfers.annotations`` to these querysets (projects does not import transfers).
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import PermissionDenied
from django.db.models import Case, CharField, Exists, OuterRef, QuerySet, Value, When
from django.db.models.enums import TextChoices
from django.http import Http404
from django.utils import timezone

from accounts.models import UNIT_ROLES, Role, User
from keys.models import ProjectUserKey
from projects.models import FINAL_STATUSES, Project, ProjectMembership, ProjectStatus

OWNER_LABEL = "Project Owner"
RESEARCHER_LABEL = "Researcher"


class Need(TextChoices):
    VIEW = "view", "see the project"
    STAFF = "staff", "act as the project's unit staff"
    OWNER = "owner", "manage the project's members"
    UNIT_ADMIN = "unit_admin", "act as the project's unit admin"


def projects_visible_to(user: User) -> QuerySet[Project]:
    qs = Project.objects.select_related("unit")
    if user.role == Role.SUPER_ADMIN:
        return qs
    if user.role in UNIT_ROLES and user.unit_id is not None:
        return qs.filter(unit_id=user.unit_id)
    return qs.filter(memberships__user=user)


def user_is_project_staff(user: User, project: Project) -> bool:
    return user.role in UNIT_ROLES and user.unit_id == project.unit_id


def user_membership(user: User, project: Project) -> ProjectMembership | None:
    return ProjectMembership.objects.filter(project=project, user=user).first()


def _sees_by_role(user: User) -> bool:
    """Unit staff and the Super Admin see projects through their role, not a membership."""
    return user.role in UNIT_ROLES or user.role == Role.SUPER_ADMIN


def project_role_of(user: User, project: Project) -> str:
    """The caller's role on this project, as shown in lists: unit role, owner or researcher."""
    if user_is_project_staff(user, project) or user.role == Role.SUPER_ADMIN:
        return Role(user.role).label
    membership = user_membership(user, project)
    if membership is None:
        return ""
    return OWNER_LABEL if membership.is_owner else RESEARCHER_LABEL


def projects_list_for(user: User, *, status: str | None = None) -> QuerySet[Project]:
    """The projects the user sees, newest first, each annotated with ``role`` (as
    :func:`project_role_of` gives it) — one query for any number of rows: the owner flag
    is an EXISTS. Storage totals: ``transfers.annotations.with_file_totals``."""
    qs = projects_visible_to(user).order_by("-created_at")
    if status:
        qs = qs.filter(status=status)
    if _sees_by_role(user):
        return qs.annotate(role=Value(str(Role(user.role).label), output_field=CharField()))
    owner = ProjectMembership.objects.filter(project=OuterRef("pk"), user=user, is_owner=True)
    return qs.annotate(role=Case(When(Exists(owner), then=Value(OWNER_LABEL)),
                                 default=Value(RESEARCHER_LABEL), output_field=CharField()))


def project_get_for_user(*, user: User, public_id: str, need: Need = Need.VIEW) -> Project:
    """Fetch a project the caller may act on, or raise Http404 / PermissionDenied."""
    # One query: the lookup goes through the visibility filter itself.
    project = projects_visible_to(user).filter(public_id=public_id).first()
    if project is None:
        raise Http404(f"No project {public_id!r}.")
    if need == Need.VIEW:
        return project
    staff = user_is_project_staff(user, project)
    if need == Need.STAFF and staff:
        return project
    if need == Need.UNIT_ADMIN and staff and user.role == Role.UNIT_ADMIN:
        return project
    if need == Need.OWNER and (staff or ProjectMembership.objects.filter(
            project=project, user=user, is_owner=True).exists()):
        return project
    raise PermissionDenied(f"You may not {Need(need).label} for {project.public_id}.")


def project_members(project: Project) -> QuerySet[ProjectMembership]:
    """The project's memberships by username, each annotated with ``has_key``: whether
    the member holds a copy of the project key (False after a password reset, until an
    access fix)."""
    holds = ProjectUserKey.objects.filter(project_id=OuterRef("project_id"),
                                          user_id=OuterRef("user_id"))
    return (project.memberships.select_related("user").annotate(has_key=Exists(holds))
            .order_by("user__username"))


def project_member(project: Project, username: str) -> ProjectMembership | None:
    """One membership of the project by username (annotated like :func:`project_members`)."""
    return project_members(project).filter(user__username=username).first()


# --------------------------------------------------------------------------- scheduled work


def projects_due_for_expiry(now: dt.datetime | None = None) -> QuerySet[Project]:
    """Available projects past their deadline and not held by a long operation."""
    return Project.objects.filter(status=ProjectStatus.AVAILABLE,
                                  deadline__lte=now or timezone.now(), busy=False)


def projects_due_for_archival(now: dt.datetime | None = None) -> QuerySet[Project]:
    """Expired projects past their deadline and not held by a long operation."""
    return Project.objects.filter(status=ProjectStatus.EXPIRED,
                                  deadline__lte=now or timezone.now(), busy=False)


def projects_due_for_cleanup() -> QuerySet[Project]:
    """Deleted and archived projects whose stored objects are not confirmed gone yet."""
    return Project.objects.filter(status__in=FINAL_STATUSES, storage_purged_at__isnull=True)
