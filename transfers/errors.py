"""Domain errors of transfers, each carrying the HTTP status the API answers with.

Services raise these; ``transfers.api`` turns them into responses, so the rule (what is
refused and why) lives once, in the service, and never becomes a 500.
"""

from __future__ import annotations

from ddsite.errors import DDSError


class TransferError(DDSError):
    status_code = 400
    code = "invalid"

    def __init__(self, message: str, **details) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class BadInput(TransferError):
    status_code = 400
    code = "invalid"


class NotAllowed(TransferError):
    """The project's status (or the caller's role) does not allow this operation now."""

    status_code = 403
    code = "not_allowed"


class NotFound(TransferError):
    status_code = 404
    code = "not_found"


class Conflict(TransferError):
    status_code = 409
    code = "conflict"


class ProjectBusy(TransferError):
    """A long operation (rotation, purge, status change) holds the project."""

    status_code = 423
    code = "project_busy"


class QuotaExceeded(TransferError):
    status_code = 413
    code = "quota_exceeded"


class StorageRejected(TransferError):
    """Storage refused the request because of what the client sent (bad ETag, part...)."""

    status_code = 400
    code = "storage_rejected"


class StorageUnavailable(TransferError):
    """Storage cannot be reached; nothing was changed, so the caller can retry later."""

    status_code = 503
    code = "storage_unavailable"
