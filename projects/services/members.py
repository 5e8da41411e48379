"""A project's members: adding (or inviting), owners, and revoking access."""

from __future__ import annotations

from django.db import transaction

from accounts.models import Invite, User
from audit.actions import AuditAction
from audit.services import audit_record
from keys.services import project_access_revoke
from projects.errors import ProjectRuleError, TransitionRefused
from projects.models import FINAL_STATUSES, Project, ProjectMembership
from projects.selectors import project_member
from projects.services.invites import invite_to_project


def _open_for_members(project: Project) -> None:
    if project.status in FINAL_STATUSES:
        raise TransitionRefused(f"cannot change members: project is "
                                f"{project.get_status_display()}")


def _membership(project: Project, username: str) -> ProjectMembership:
    """The member named ``username`` (with ``has_key``), or ``ProjectRuleError``."""
    membership = project_member(project, username)
    if membership is None:
        raise ProjectRuleError(f"{username} is not a member of {project.public_id}")
    return membership


def project_member_add(*, project: Project, by: User, kek: bytes, email: str,
                       owner: bool = False, ip: str | None = None,
                       notify: bool = True) -> ProjectMembership | Invite:
    """Add a researcher: an existing account gets membership and a key (the membership is
    returned, with ``has_key``); a new email an invite carrying the key (returned).
    ``notify=False``: no email to either (the invite is held until re-sent)."""
    _open_for_members(project)
    result = invite_to_project(project=project, email=email, by=by, by_kek=kek,
                               is_owner=owner, ip=ip, notify=notify)
    if result.user is not None:
        return _membership(project, result.user.username)
    if result.invite is None:  # invite_to_project returns one or the other
        raise RuntimeError("an invite result without a user or an invite")
    return result.invite


@transaction.atomic
def project_member_set_owner(*, project: Project, by: User, username: str,
                             owner: bool, ip: str | None = None) -> ProjectMembership:
    """Make a member an owner (or not); returns the membership, with ``has_key``."""
    _open_for_members(project)
    membership = _membership(project, username)
    if membership.is_owner != owner:
        membership.is_owner = owner
        membership.save(update_fields=["is_owner"])
        audit_record(action=AuditAction.PROJECT_MEMBER_OWNER, actor=by, project=project,
                     target=username, ip=ip, details={"is_owner": owner})
    return membership


@transaction.atomic
def project_member_revoke(*, project: Project, by: User, username: str,
                          ip: str | None = None) -> None:
    """Remove a member and destroy their copy of the project key."""
    membership = _membership(project, username)
    project_access_revoke(project=project, user=membership.user)
    membership.delete()
    audit_record(action=AuditAction.PROJECT_MEMBER_REVOKE, actor=by, project=project,
                 target=username, ip=ip)
