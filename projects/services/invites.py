"""Inviting people to a project, and what an accepted invite means for its projects.

The invite itself (its key pair, link and email) is accounts' (accounts.services.invites):
this module decides who may invite to *this* project, adds an address that already has
a researcher account as a member at once, and hands any other address to accounts with
the project key to carry (``ProjectGrant``). At registration accounts signals
``invite_accepted`` and :func:`invite_accepted_memberships` makes the memberships.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import Invite, Role, Unit, User
from accounts.services.invites import InviteResult, ProjectGrant, invite_issue, invite_scope
from audit.actions import AuditAction
from audit.services import audit_record
from keys.errors import KeyAccessError
from keys.services import project_access_grant
from mail.services import mail_send_template
from projects.models import Project, ProjectMembership
from projects.selectors import Need, project_get_for_user


def invite_to_project(*, project: Project, email: str, by: User, by_kek: bytes | None,
                      role: str = Role.RESEARCHER, unit: Unit | None = None,
                      is_owner: bool = False, ip: str | None = None,
                      notify: bool = True) -> InviteResult:
    """Invite someone to ``project`` (as owner with ``is_owner``), or add an existing
    researcher directly (``kind="added"``). ``role`` and ``unit`` are what was asked for,
    so that inviting staff to a project is refused with the reason. ``notify=False``
    sends no email: no "member added" for an existing researcher, and a held invite
    (accounts.services.invites) for a new address."""
    email = (email or "").strip()
    invite_scope(by=by, role=role, unit=unit, to_project=True, is_owner=is_owner)
    # Staff of the project's unit, or the project's owners (Need.OWNER covers both).
    project_get_for_user(user=by, public_id=project.public_id, need=Need.OWNER)
    if by_kek is None:
        raise KeyAccessError("granting project access needs your unlocked keys; log in again")
    existing = User.objects.filter(email__iexact=email).first()
    if existing is not None:
        return _member_add_existing(user=existing, project=project, by=by, by_kek=by_kek,
                                    is_owner=is_owner, ip=ip, notify=notify)
    return invite_issue(email=email, role=role, by=by, unit=None, ip=ip, notify=notify,
                        grant=ProjectGrant(project=project, by_kek=by_kek, is_owner=is_owner))


@transaction.atomic
def _member_add_existing(*, user: User, project: Project, by: User, by_kek: bytes,
                         is_owner: bool, ip: str | None, notify: bool = True) -> InviteResult:
    """An address with an account: a researcher becomes a member (with a key) at once."""
    if user.role != Role.RESEARCHER:
        raise ValidationError({"email": "This account is unit staff or an operator, not a "
                                        "researcher."})
    membership, created = ProjectMembership.objects.get_or_create(
        project=project, user=user, defaults={"is_owner": is_owner})
    if is_owner and not membership.is_owner:
        membership.is_owner = True
        membership.save(update_fields=["is_owner"])
    project_access_grant(project=project, grantee=user, granter=by, granter_kek=by_kek)
    audit_record(action=AuditAction.PROJECT_MEMBER_ADD, actor=by, project=project,
                 target=user.username, ip=ip,
                 details={"is_owner": membership.is_owner, "new": created, "notify": notify})
    if notify:
        mail_send_template(template="projects/member_added", to=[user.email],
                           context={"by": by, "project": project})
    return InviteResult(kind="added", email=user.email, user=user)


def invite_accepted_memberships(sender: type[Invite], *, user: User,
                                projects: list[tuple[Project, bool]], **kwargs: Any) -> None:
    """Receiver of accounts.signals.invite_accepted (in the registration's transaction):
    a researcher becomes a member, owner or not, of each project the invite carried.
    Unit staff have access through their unit and get no membership."""
    if user.role != Role.RESEARCHER:
        return
    for project, is_owner in projects:
        ProjectMembership.objects.get_or_create(project=project, user=user,
                                                defaults={"is_owner": is_owner})
