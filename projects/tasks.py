"""Thin Celery tasks: each calls the service the matching management command calls.

The storage purge of deleted and archived projects is transfers.tasks'.
"""

from celery import shared_task

from projects.services.scheduling import projects_archive_due as _projects_archive_due
from projects.services.scheduling import projects_expire_due as _projects_expire_due


@shared_task(name="projects.tasks.projects_expire_due")
def projects_expire_due() -> list[str]:
    return _projects_expire_due()


@shared_task(name="projects.tasks.projects_archive_due")
def projects_archive_due() -> list[str]:
    return _projects_archive_due()
