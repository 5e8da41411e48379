"""Object storage behind one small interface: S3 (any S3-compatible endpoint) and local.

Clients never get credentials: they get URLs scoped to one object and one operation that
expire (S3 presigned URLs, or Django-served URLs signed with ``TimestampSigner``). Every
backend call that cannot reach storage raises ``StorageUnavailable`` (503, retry later);
a call refused because of what the client sent raises ``StorageRejected`` (400).

The backends take where to connect and with which keys from their caller
(:mod:`transfers.storage.credentials`); nothing here calls up into the services
(import-linter contract ``storage``).
"""

from transfers.storage.base import (
    StorageBackend,
    StoredMultipart,
    StoredObject,
    StoredPart,
    etag_bare,
)
from transfers.storage.choice import (
    storage_for_project,
    storage_for_unit,
    storage_identity_for_unit,
)
from transfers.storage.local import LocalBackend
from transfers.storage.s3 import S3Backend

__all__ = ["LocalBackend", "S3Backend", "StorageBackend", "StoredMultipart", "StoredObject",
           "StoredPart", "etag_bare", "storage_for_project", "storage_for_unit",
           "storage_identity_for_unit"]
