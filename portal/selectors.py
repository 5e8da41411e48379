"""Reads of the portal pages (authorisation stays in projects.selectors)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Exists, OuterRef

from accounts.models import UNIT_ROLES, Role
from projects.api import _with_sizes
from projects.models import Project, ProjectMembership
from projects.selectors import project_members, projects_visible_to
from transfers.errors import BadInput
from transfers.models import File
from transfers.paths import path_normalise
from transfers.selectors import FILE_LIST_FIELDS, files_under

SEARCH_MAX_LENGTH = 255


def project_list_rows(user) -> list[Project]:
    """The projects the user sees, with size, file count and the user's role.

    One query for any number of projects: sizes are subqueries (projects.api) and the
    owner flag an EXISTS, so the role needs no query per row. The role follows
    projects.selectors.project_role_of: staff and the Super Admin see their own role.
    """
    qs = _with_sizes(projects_visible_to(user)).order_by("-created_at")
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


@dataclass
class SearchPage:
    files: list[File]
    offset: int
    limit: int
    has_next: bool

    @property
    def next_offset(self) -> int | None:
        return self.offset + self.limit if self.has_next else None


def files_search(*, project: Project, folder: str, query: str, offset: int = 0,
                 limit: int = 50) -> SearchPage:
    """Files under ``folder`` (recursively) whose name contains ``query``, by path."""
    query = query.strip()
    if not query or len(query) > SEARCH_MAX_LENGTH:
        raise BadInput(f"Search for 1 to {SEARCH_MAX_LENGTH} characters.")
    folder = path_normalise(folder, allow_root=True)
    rows = list(files_under(project=project, folder=folder)
                .filter(name__icontains=query).order_by("path")
                .only(*FILE_LIST_FIELDS)[offset:offset + limit + 1])
    return SearchPage(rows[:limit], offset, limit, len(rows) > limit)


def project_people(project: Project) -> tuple[list[ProjectMembership], list]:
    """Members (with ``has_key``: whether they hold a copy of the project key) and the
    pending invites of a project."""
    members = list(project_members(project))
    holders = set(project.user_keys.values_list("user_id", flat=True))
    for m in members:
        m.has_key = m.user_id in holders
    return members, list(project.invites.order_by("email"))
