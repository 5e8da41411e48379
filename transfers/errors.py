"""Domain errors of transfers (the one error model: core.errors).

Services raise these; the API's one handler answers them with their status, code and
details (quota numbers), so the rule lives once, in the service, and never becomes a 500.
The generic kinds are re-exported for the app's modules.
"""

from __future__ import annotations

from core.errors import (
    BadInput,
    Conflict,
    NotAllowed,
    NotFound,
    ProjectBusy,
    TooLarge,
    Unavailable,
)

__all__ = ["BadInput", "Conflict", "FileLost", "NotAllowed", "NotFound", "ProjectBusy",
           "QuotaExceeded", "StorageRejected", "StorageUnavailable"]


class QuotaExceeded(TooLarge):
    """The unit's storage quota does not have room for this."""

    code = "quota_exceeded"


class FileLost(Conflict):
    """A file asked for is flagged lost: storage no longer holds its object
    (``storage_reconcile``); ``lost`` names the paths."""

    code = "file_lost"


class StorageRejected(BadInput):
    """Storage refused the request because of what the client sent (bad ETag, part...)."""

    code = "storage_rejected"


class StorageUnavailable(Unavailable):
    """Storage cannot be reached; nothing was changed, so the caller can retry later."""

    code = "storage_unavailable"
