"""Storage locations: where a unit's objects live (region, endpoint) and the credentials
to reach them, sealed on the way in (transfers.storage.credentials)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import Unit, User
from audit.actions import AuditAction
from audit.services import audit_record
from transfers.models import StorageLocation
from transfers.storage.credentials import storage_location_credentials_seal


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
                          secret_key: str | None = None,
                          ip: str | None = None) -> StorageLocation:
    """Validate and save a location; credentials given here are sealed, never stored plain.

    ``None`` for a credential keeps the stored one.
    """
    storage_location_validate_jurisdiction(region=location.region, endpoint=location.endpoint)
    storage_location_credentials_seal(location, access_key=access_key, secret_key=secret_key)
    if location.is_active:
        # One active location per unit: activating this one retires the others.
        StorageLocation.objects.filter(unit=location.unit, is_active=True).exclude(
            pk=location.pk).update(is_active=False)
    location.full_clean()
    location.save()
    audit_record(action=AuditAction.STORAGE_LOCATION_SAVE, actor=by, target=str(location),
                 ip=ip,
                 details={"unit": location.unit.name,
                          "credentials_changed": access_key is not None
                          or secret_key is not None})
    return location


def storage_location_create_local(*, unit: Unit, by: User | None) -> StorageLocation:
    location = StorageLocation(unit=unit, name="local", region="local", endpoint="")
    return storage_location_save(location=location, by=by)
