"""Access fix: re-granting project keys to a user who reset their password."""

from __future__ import annotations

from django.db import transaction

from accounts.models import User
from accounts.selectors import user_get_for_actor
from audit.actions import AuditAction
from audit.services import audit_record
from keys.errors import KeyAccessError
from keys.services import project_access_grant
from projects.models import Project


def access_fix_grants(*, user: User, granter: User, granter_kek: bytes,
                      project: Project | None = None) -> list[Project]:
    """Re-grant keys to ``user`` for every project where the user should have access
    (member, or staff of the project's unit) and ``granter`` holds a key and manages the
    project's people (its unit's staff or an owner). Returns the projects fixed."""
    if not user.public_key:
        raise KeyAccessError(f"{user.username} has no key pair yet")
    candidates = Project.objects.filter(user_keys__user=granter, public_key__isnull=False)
    # Only those who manage the project's people may fix access: its unit's staff, or
    # its owners — holding a key (any member does) is not enough.
    if granter.is_unit_staff:
        candidates = candidates.filter(unit__staff=granter)  # granter's own unit
    else:
        candidates = candidates.filter(memberships__user=granter, memberships__is_owner=True)
    if project is not None:
        candidates = candidates.filter(pk=project.pk)
    entitled = candidates.filter(memberships__user=user)
    if user.is_unit_staff:
        entitled = entitled | candidates.filter(unit__staff=user)
    fixed: list[Project] = []
    for p in entitled.exclude(user_keys__user=user).distinct():
        project_access_grant(project=p, grantee=user, granter=granter, granter_kek=granter_kek)
        fixed.append(p)
    return fixed


@transaction.atomic
def user_access_fix(*, user: User, by: User, by_kek: bytes, project: Project | None = None,
                    ip: str | None = None) -> list[Project]:
    """Re-grant project keys to a user who reset their password, from the caller's keys
    (all projects the caller may fix, or only ``project``); audited per project."""
    fixed = access_fix_grants(user=user, granter=by, granter_kek=by_kek, project=project)
    for p in fixed:
        audit_record(action=AuditAction.PROJECT_ACCESS_FIX, actor=by, project=p,
                     target=user.username, ip=ip)
    if not fixed:
        audit_record(action=AuditAction.PROJECT_ACCESS_FIX, actor=by, target=user.username,
                     ip=ip, details={"projects": 0})
    return fixed


def project_access_fix(*, project: Project | None, by: User, kek: bytes,
                       username: str, ip: str | None = None) -> list[Project]:
    """:func:`user_access_fix` for a member named by username."""
    # Scoped lookup: an unknown name and another unit's user look the same (404).
    user = user_get_for_actor(actor=by, username=username)
    return user_access_fix(user=user, by=by, by_kek=kek, project=project, ip=ip)
