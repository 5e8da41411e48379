"""Scheduled work over many projects: expiry and archival at their deadlines.

The storage purge of deleted and archived projects is the transfers app's
(transfers.services.purge), which runs it through :func:`run_each_project` too.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from django.db.models import QuerySet

from core.errors import ProjectBusy
from projects.errors import ProjectRuleError
from projects.models import Project
from projects.selectors import projects_due_for_archival, projects_due_for_expiry
from projects.services.lifecycle import project_archive, project_expire

logger = logging.getLogger(__name__)


def run_each_project(projects: QuerySet[Project], action: Callable[[Project], object], *,
                     dry_run: bool) -> list[str]:
    """Apply ``action`` to each project; one failure does not stop the others.

    A project changed since the query (e.g. re-released) is skipped; any other failure
    (storage down) is logged and the next run retries it. Returns the ids handled.
    """
    done: list[str] = []
    for project in projects.order_by("pk"):
        if dry_run:
            done.append(project.public_id)
            continue
        try:
            action(project)
            done.append(project.public_id)
        except (ProjectRuleError, ProjectBusy) as exc:  # refused or busy now: next run
            logger.info("scheduler skipped %s: %s", project.public_id, exc)
        except Exception:
            logger.exception("scheduler failed on %s; the next run retries it",
                             project.public_id)
    return done


def projects_expire_due(*, now: dt.datetime | None = None, dry_run: bool = False) -> list[str]:
    """Expire every Available project past its deadline. Returns their ids."""
    return run_each_project(projects_due_for_expiry(now), lambda p: project_expire(project=p),
                            dry_run=dry_run)


def projects_archive_due(*, now: dt.datetime | None = None, dry_run: bool = False) -> list[str]:
    """Archive every Expired project past its deadline. Returns their ids."""
    return run_each_project(projects_due_for_archival(now),
                            lambda p: project_archive(project=p, by=None), dry_run=dry_run)
