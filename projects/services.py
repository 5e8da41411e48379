"""Writes for projects. Every rule lives here; views, admin, tasks and commands call it."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F

from accounts.models import Unit, User
from projects.audit import audit_record
from projects.models import Project, ProjectStatus, ProjectStatusEvent


def _allocate_public_id(unit: Unit) -> str:
    # UPDATE ... SET counter = counter + 1 takes the row lock, so concurrent creations in
    # one unit get distinct counters without a read-modify-write race.
    Unit.objects.filter(pk=unit.pk).update(project_counter=F("project_counter") + 1)
    counter = Unit.objects.values_list("project_counter", flat=True).get(pk=unit.pk)
    return f"{unit.internal_ref}-{counter:05d}"


def bucket_name_for(public_id: str, prefix: str = "") -> str:
    """S3 bucket names: 3–63 chars of lower-case letters, digits and hyphens."""
    base = f"{prefix}-{public_id}" if prefix else f"dds-{public_id}"
    return base.lower().replace("_", "-")[:63]


@transaction.atomic
def project_create(*, unit: Unit, by: User, title: str, description: str = "",
                   pi: str = "", non_sensitive: bool = False) -> Project:
    public_id = _allocate_public_id(unit)
    location = unit.storage_locations.filter(is_active=True).first()
    project = Project(
        unit=unit, public_id=public_id, title=title, description=description, pi=pi,
        non_sensitive=non_sensitive, created_by=by,
        bucket=bucket_name_for(public_id, location.bucket_prefix if location else ""),
    )
    project.full_clean()
    project.save()
    ProjectStatusEvent.objects.create(project=project, status=ProjectStatus.IN_PROGRESS, by=by)
    audit_record(action="project.create", actor=by, project=project, target=public_id)
    return project
