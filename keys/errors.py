"""Errors of the key layer (the one error model: core.errors)."""

from __future__ import annotations

from core.errors import Conflict, DDSError, NotFound


class KeyAccessError(DDSError):
    """The caller's keys do not open what was asked (wrong password, no grant, reset)."""

    status_code = 403
    code = "key_access"


class RotationRefused(Conflict):
    """The project's key cannot be rotated now (busy, no key, final status)."""


class ProjectKeyMissing(NotFound):
    """This project has no key (deleted or archived)."""
