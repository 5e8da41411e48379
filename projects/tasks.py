"""Thin Celery tasks: each calls the service the matching management command calls."""

from celery import shared_task

from projects import services
from projects.models import Project


@shared_task
def projects_expire_due() -> list[str]:
    return services.projects_expire_due()


@shared_task
def projects_archive_due() -> list[str]:
    return services.projects_archive_due()


@shared_task
def projects_storage_cleanup_due() -> list[str]:
    return services.projects_storage_cleanup_due()


@shared_task(autoretry_for=(OSError, ConnectionError), retry_backoff=True, max_retries=10,
             acks_late=True)
def project_storage_cleanup(project_id: int) -> int:
    project = Project.objects.filter(pk=project_id).first()
    if project is None or project.storage_purged_at is not None:
        return 0
    return services.project_storage_cleanup(project=project)
