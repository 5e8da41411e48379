"""Writes for storage locations (and, later, uploads and files)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import Unit, User
from keys.sealing import seal
from projects.audit import audit_record
from transfers.models import StorageLocation

_PURPOSE_ACCESS = "storage-location-access-key"
_PURPOSE_SECRET = "storage-location-secret-key"  # noqa: S105 - a label, not a secret


def storage_location_validate_jurisdiction(*, region: str, endpoint: str) -> None:
    """Data stays in one jurisdiction: refuse regions/endpoints not on the allowed lists."""
    allowed_regions = settings.DDS_ALLOWED_STORAGE_REGIONS
    if region not in allowed_regions:
        raise ValidationError(
            {"region": f"Region {region!r} is not allowed; allowed regions: "
                       f"{', '.join(allowed_regions)} (DDS_ALLOWED_STORAGE_REGIONS)."})
    allowed_endpoints = settings.DDS_ALLOWED_STORAGE_ENDPOINTS
    if endpoint and allowed_endpoints:
        host = urlsplit(endpoint).hostname or ""
        if not any(host == a or host.endswith("." + a) for a in allowed_endpoints):
            raise ValidationError(
                {"endpoint": f"Endpoint host {host!r} is not on the allowed list "
                             f"(DDS_ALLOWED_STORAGE_ENDPOINTS)."})


@transaction.atomic
def storage_location_save(*, location: StorageLocation, by: User | None,
                          access_key: str | None = None,
                          secret_key: str | None = None) -> StorageLocation:
    """Validate and save a location; credentials given here are sealed, never stored plain.

    ``None`` for a credential keeps the stored one.
    """
    storage_location_validate_jurisdiction(region=location.region, endpoint=location.endpoint)
    if access_key is not None:
        location.access_key_sealed = seal(access_key.encode(), purpose=_PURPOSE_ACCESS)
    if secret_key is not None:
        location.secret_key_sealed = seal(secret_key.encode(), purpose=_PURPOSE_SECRET)
    if location.is_active:
        # One active location per unit: activating this one retires the others.
        StorageLocation.objects.filter(unit=location.unit, is_active=True).exclude(
            pk=location.pk).update(is_active=False)
    location.full_clean()
    location.save()
    audit_record(action="storage_location.save", actor=by, target=str(location),
                 details={"unit": location.unit.name,
                          "credentials_changed": access_key is not None
                          or secret_key is not None})
    return location


def storage_location_credentials(location: StorageLocation) -> tuple[str, str] | None:
    """The unsealed credentials, for the storage backend only (never for a response)."""
    from keys.sealing import unseal

    if not location.has_credentials:
        return None
    return (unseal(location.access_key_sealed, purpose=_PURPOSE_ACCESS).decode(),
            unseal(location.secret_key_sealed, purpose=_PURPOSE_SECRET).decode())


def storage_location_create_local(*, unit: Unit, by: User | None) -> StorageLocation:
    location = StorageLocation(unit=unit, name="local", region="local", endpoint="")
    return storage_location_save(location=location, by=by)
