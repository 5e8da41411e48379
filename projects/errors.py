"""Errors of projects: what the project's rules refuse (the one model: core.errors)."""

from __future__ import annotations

from rest_framework import status

from core.errors import DDSError


class ProjectRuleError(DDSError):
    """A request the project's rules refuse; the message says why (shown to the user)."""

    code = "project_rule"


class TransitionRefused(ProjectRuleError):
    """The project's status does not allow this change."""

    status_code = status.HTTP_409_CONFLICT
    code = "transition_refused"


class NeedsForce(ProjectRuleError):
    """Allowed, but only when the caller confirms (``force``)."""

    code = "needs_force"


class NotUnitStaff(ProjectRuleError):
    """Only the unit's staff may do this to its projects."""

    status_code = status.HTTP_403_FORBIDDEN
    code = "permission_denied"
