"""Support tools for unit staff and operators: cancelling a pending invite.

(Finding users and listing invites are reads: accounts.selectors ``users_find`` and
``invites_pending``. Resetting a second factor is accounts.services.totp
``user_second_factor_reset``.)
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db import transaction

from accounts.models import Invite, Role, User
from accounts.selectors import invites_visible_q
from audit.actions import AuditAction
from audit.services import audit_record
from core.errors import BadInput, NotFound


@dataclass(frozen=True)
class InviteCancelled:
    email: str
    #: The projects whose access the cancelled invite (or the cancelled part) carried.
    projects: list[str]
    #: False when only the caller's unit's projects were taken off an invite that also
    #: carries another unit's projects: the invite stays valid for those.
    deleted: bool


@transaction.atomic
def invite_cancel(*, email: str, by: User, ip: str | None = None) -> InviteCancelled:
    """Cancel the pending invite of ``email``: its link stops working and the project keys
    it carries are destroyed.

    A Super Admin cancels any invite. Unit staff cancel the invites of their unit (a
    Unit Admin invite only by a Unit Admin, as only they may send one); from an invite
    that also carries another unit's projects they remove their own unit's projects
    only, so as not to take away what the other unit granted. An address with no
    invite, or one the caller may not see, is the same 404.
    """
    email = (email or "").strip()
    if not email:
        raise BadInput("Give the email address of the invite to cancel.")
    visible = Invite.objects.filter(invites_visible_q(by)).values("pk")
    invite = (Invite.objects.select_for_update(of=("self",))
              .select_related("unit", "project")
              .filter(email__iexact=email, pk__in=visible).first())
    if invite is None:
        raise NotFound(f"No pending invite for {email} that you can see.")
    if (by.role != Role.SUPER_ADMIN and invite.role == Role.UNIT_ADMIN
            and by.role != Role.UNIT_ADMIN):
        raise PermissionDenied("Only a Unit Admin (or a Super Admin) may cancel the invite "
                               "of a Unit Admin.")
    keys = invite.project_keys.select_related("project").order_by("project__public_id")
    mine = keys if by.role == Role.SUPER_ADMIN else keys.filter(project__unit=by.unit)
    cancelled = [key.project for key in mine]
    if invite.project is not None and invite.project not in cancelled and (
            by.role == Role.SUPER_ADMIN or invite.project.unit_id == by.unit_id):
        cancelled.insert(0, invite.project)
    projects = [project.public_id for project in cancelled]
    others = keys.exclude(pk__in=[key.pk for key in mine])
    partial = by.role != Role.SUPER_ADMIN and others.exists()
    details = {"role": invite.role, "unit": invite.unit.name if invite.unit else None,
               "projects": projects, "partial": partial}
    if partial:
        mine.delete()
        if invite.project is not None and invite.project.unit_id == by.unit_id:
            remaining = others.first()
            invite.project = remaining.project if remaining else None
            invite.is_owner = bool(remaining and remaining.is_owner)
            invite.save(update_fields=["project", "is_owner"])
    else:
        invite.delete()  # its InviteProjectKey rows go with it (on_delete=CASCADE)
    # An invite to one project is that project's event too (its audit trail shows it).
    audit_record(action=AuditAction.INVITE_CANCEL, actor=by, target=invite.email, ip=ip,
                 project=cancelled[0] if len(cancelled) == 1 else None, details=details)
    return InviteCancelled(email=invite.email, projects=projects, deleted=not partial)
