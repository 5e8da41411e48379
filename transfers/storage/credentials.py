"""Where a storage backend connects, with which credentials: the one place that seals
and unseals a storage location's keys.

A :class:`~transfers.models.StorageLocation` keeps its access and secret key sealed under
the server key (core.sealing); the services seal what an operator enters through
:func:`storage_location_credentials_seal`, and the backend gets an :class:`S3Target`
from :func:`s3_target` — never a credential from a service, never one in a response.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from django.conf import settings

from core.sealing import seal, unseal
from transfers.models import StorageLocation

_PURPOSE_ACCESS = "storage-location-access-key"
_PURPOSE_SECRET = "storage-location-secret-key"  # noqa: S105 - a label, not a secret


class StorageCredentials(NamedTuple):
    access_key: str | None
    secret_key: str | None


@dataclass(frozen=True)
class S3Target:
    """An S3-compatible endpoint (None: AWS) in a region, and the keys to use there."""

    endpoint: str | None
    region: str | None
    credentials: StorageCredentials


def storage_location_credentials_seal(location: StorageLocation, *, access_key: str | None,
                                      secret_key: str | None) -> None:
    """Seal the credentials given into ``location`` (unsaved); ``None`` keeps the stored one."""
    if access_key is not None:
        location.access_key_sealed = seal(access_key.encode(), purpose=_PURPOSE_ACCESS)
    if secret_key is not None:
        location.secret_key_sealed = seal(secret_key.encode(), purpose=_PURPOSE_SECRET)


def storage_location_credentials(location: StorageLocation) -> StorageCredentials | None:
    """The location's unsealed credentials, or None if it has none of its own."""
    access, secret = location.access_key_sealed, location.secret_key_sealed
    if not (access and secret):  # as StorageLocation.has_credentials
        return None
    return StorageCredentials(unseal(bytes(access), purpose=_PURPOSE_ACCESS).decode(),
                              unseal(bytes(secret), purpose=_PURPOSE_SECRET).decode())


def _server_credentials() -> StorageCredentials:
    return StorageCredentials(settings.AWS_ACCESS_KEY_ID, settings.AWS_SECRET_ACCESS_KEY)


def s3_target(location: StorageLocation | None) -> S3Target:
    """A location's endpoint (with its own keys, else the server's), or with no location
    the server's default S3 settings."""
    if location is None:
        return S3Target(settings.AWS_S3_ENDPOINT_URL, settings.AWS_S3_REGION_NAME,
                        _server_credentials())
    return S3Target(location.endpoint or None, location.region or None,
                    storage_location_credentials(location) or _server_credentials())
