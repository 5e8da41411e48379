"""Reads for projects, and the one helper that fetches *and* authorises a project.

Visibility: a Super Admin sees every project's metadata (but holds no keys); unit staff
see their unit's projects; researchers see the projects they are members of. A project
the caller cannot see is a 404, so ids of other units' projects are not confirmed.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, QuerySet
from django.db.models.enums import TextChoices
from django.http import Http404

from accounts.models import UNIT_ROLES, Role
from projects.models import Project, ProjectMembership


class Need(TextChoices):
    VIEW = "view", "see the project"
    STAFF = "staff", "act as the project's unit staff"
    OWNER = "owner", "manage the project's members"
    UNIT_ADMIN = "unit_admin", "act as the project's unit admin"


def projects_visible_to(user) -> QuerySet[Project]:
    qs = Project.objects.select_related("unit")
    if user.role == Role.SUPER_ADMIN:
        return qs
    if user.role in UNIT_ROLES:
        return qs.filter(unit_id=user.unit_id)
    return qs.filter(memberships__user=user)


def user_is_project_staff(user, project: Project) -> bool:
    return user.role in UNIT_ROLES and user.unit_id == project.unit_id


def user_membership(user, project: Project) -> ProjectMembership | None:
    return ProjectMembership.objects.filter(project=project, user=user).first()


def project_role_of(user, project: Project) -> str:
    """The caller's role on this project, as shown in lists: unit role, owner or researcher."""
    if user_is_project_staff(user, project) or user.role == Role.SUPER_ADMIN:
        return Role(user.role).label
    membership = user_membership(user, project)
    if membership is None:
        return ""
    return "Project Owner" if membership.is_owner else "Researcher"


def projects_list_for(user, *, status: str | None = None) -> list[Project]:
    """The projects the user sees, newest first, each with ``size``, ``file_count`` and
    ``role`` (as :func:`project_role_of` gives it) — in one query for any number of rows:
    sizes are subqueries and the owner flag an EXISTS."""
    from transfers.annotations import with_file_totals

    qs = with_file_totals(projects_visible_to(user)).order_by("-created_at")
    if status:
        qs = qs.filter(status=status)
    by_role = user.role in UNIT_ROLES or user.role == Role.SUPER_ADMIN
    if not by_role:
        qs = qs.annotate(is_owner=Exists(ProjectMembership.objects.filter(
            project=OuterRef("pk"), user=user, is_owner=True)))
    rows = list(qs)
    for p in rows:
        if by_role:
            p.role = Role(user.role).label
        else:
            p.role = "Project Owner" if p.is_owner else "Researcher"
    return rows


def project_get_for_user(*, user, public_id: str, need: Need = Need.VIEW) -> Project:
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
    return project.memberships.select_related("user").order_by("user__username")
