"""Reads of the portal pages (authorisation stays in projects.selectors)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from accounts.models import Invite, User
from projects.models import Project, ProjectMembership
from projects.selectors import project_members, projects_list_for
from transfers.annotations import with_file_totals
from transfers.errors import BadInput
from transfers.models import File
from transfers.paths import path_normalise
from transfers.selectors import FILE_LIST_FIELDS, files_under

SEARCH_MAX_LENGTH = 255


def project_list_rows(user: User) -> list[Project]:
    """The projects the user sees, with role, size and file count (one query)."""
    return list(with_file_totals(projects_list_for(user)))


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


def project_people(project: Project) -> tuple[QuerySet[ProjectMembership], list[Invite]]:
    """Members (annotated ``has_key`` by projects.selectors) and the pending invites of a
    project."""
    return project_members(project), list(project.invites.order_by("email"))
