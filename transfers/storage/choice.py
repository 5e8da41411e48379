"""Which backend holds a unit's (and so a project's) objects."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings

from transfers.models import StorageLocation
from transfers.storage.base import StorageBackend
from transfers.storage.credentials import s3_target
from transfers.storage.local import LocalBackend
from transfers.storage.s3 import S3Backend

if TYPE_CHECKING:  # types only: storage sits below the apps that own these models
    from accounts.models import Unit
    from projects.models import Project


def storage_for_unit(unit: Unit) -> StorageBackend:
    """The unit's active StorageLocation (if it names an endpoint) overrides the defaults."""
    location = (StorageLocation.objects.filter(unit_id=unit.pk, is_active=True)
                .exclude(endpoint="").first())
    if location is not None:
        return S3Backend(s3_target(location))
    if settings.DDS_STORAGE_BACKEND == "s3":
        return S3Backend(s3_target(None))
    return LocalBackend()


def storage_identity_for_unit(unit: Unit) -> tuple[str, str]:
    """(key, label) of the store a unit's backend talks to: units with the same key share
    one store (its buckets are listed once); the label names it for people."""
    location = (StorageLocation.objects.filter(unit_id=unit.pk, is_active=True)
                .exclude(endpoint="").first())
    if location is not None:
        return f"location:{location.pk}", f"{location.endpoint} ({location.region})"
    if settings.DDS_STORAGE_BACKEND == "s3":
        endpoint = getattr(settings, "AWS_S3_ENDPOINT_URL", "") or "AWS S3"
        return "default:s3", f"{endpoint} (default)"
    return "default:local", f"local disk {settings.DDS_LOCAL_STORAGE_ROOT}"


def storage_for_project(project: Project) -> StorageBackend:
    return storage_for_unit(project.unit)
