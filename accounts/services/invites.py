"""Invites: who may invite whom, and the invite itself (its key pair, link and email).

An invite to a *project* is the projects app's (projects.services.invites): it checks
that the inviter manages the project, adds an existing researcher directly, and hands
the rest here with a :class:`ProjectGrant` — the project key wrapped to the invite. This
module never looks into projects; it stores the grant and names the project in the email.

Without email (``notify=False``, where a facility informs people itself) an invite is
made *held*: it keeps its grants, but no link is sent and none is known to anyone. Its
token is derived from the invite row under the server key (:func:`_held_token`), so a
database dump alone still cannot accept it, and the server can send that same link
later: inviting the address again with email on (``dds user add`` / ``dds project access
grant`` without ``--no-mail``) re-sends the invitation with its link and keeps every
grant it carries. An API never returns the link.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.errors import InviteConflict
from accounts.models import UNIT_ROLES, Invite, Role, Unit, User
from accounts.services.links import site_link
from audit.actions import AuditAction
from audit.services import audit_record
from core.sealing import keyed_hash
from keys.services import (
    invite_access_grant,
    invite_keys_create,
    invite_token_matches,
    user_keypair_new,
)
from mail.services import mail_send_template

if TYPE_CHECKING:  # projects sits above accounts: the type only
    from projects.models import Project


def invite_days() -> int:
    """How long an invite link is valid (DDS_INVITE_DAYS)."""
    return int(settings.DDS_INVITE_DAYS)


@dataclass
class InviteResult:
    #: "invited" (email with a registration link), "added" (existing user), or "held":
    #: the address has an invitation another unit holds back; the grant waits with it.
    kind: str
    email: str
    invite: Invite | None = None
    user: User | None = None


@dataclass(frozen=True)
class ProjectGrant:
    """The project an invite carries, and the inviter's unlocked key that grants it."""

    project: Project
    by_kek: bytes = field(repr=False)
    is_owner: bool = False


def invite_scope(*, by: User, role: str, unit: Unit | None, to_project: bool,
                 is_owner: bool) -> Unit | None:
    """Who may invite whom (docs/accounts.md), by role; returns the invite's unit.

    For an invite to a project this is the role half of the rule: the caller
    (projects.services.invites) then checks that ``by`` manages that project.
    """
    if role not in Role.values:
        raise ValidationError({"role": "Unknown role."})
    if is_owner and (role != Role.RESEARCHER or not to_project):
        raise ValidationError({"is_owner": "Only a researcher invited to a project can be "
                                           "its owner."})
    if by.role == Role.SUPER_ADMIN:
        if to_project:
            raise PermissionDenied("A Super Admin holds no project keys, so cannot invite to "
                                   "a project; ask the unit's staff.")
        if role in UNIT_ROLES and unit is None:
            raise ValidationError({"unit": "A unit role needs a unit."})
        return unit if role in UNIT_ROLES else None
    if role in UNIT_ROLES:
        return _staff_invite_scope(by=by, role=role, unit=unit, to_project=to_project)
    if role != Role.RESEARCHER:
        raise PermissionDenied(f"You may not invite a {Role(role).label}.")
    if not to_project:
        if by.role == Role.RESEARCHER:
            raise PermissionDenied("Researchers may not invite users.")
        raise ValidationError({"project": "Invite a researcher to one of your unit's "
                                          "projects."})
    return None


def _staff_invite_scope(*, by: User, role: str, unit: Unit | None,
                        to_project: bool) -> Unit | None:
    """Unit Admins invite both unit roles, Unit Personnel their own role; to their unit."""
    allowed = {Role.UNIT_ADMIN: UNIT_ROLES, Role.UNIT_PERSONNEL: (Role.UNIT_PERSONNEL,)}
    if role not in allowed.get(Role(by.role), ()):
        raise PermissionDenied(f"You may not invite a {Role(role).label}.")
    if unit is not None and unit.pk != by.unit_id:
        raise PermissionDenied("You may only invite staff to your own unit.")
    if to_project:
        raise ValidationError({"project": "Staff have access through their unit."})
    return by.unit


def invite_create(*, email: str, role: str, by: User, unit: Unit | None = None,
                  is_owner: bool = False, ip: str | None = None,
                  notify: bool = True) -> InviteResult:
    """Invite someone to register without a project: unit staff, or a Super Admin's invite.

    ``is_owner`` is only refused here (owners are of a project). The email is queued in
    the same transaction (mail.services): sent only if the invite commits. With
    ``notify=False`` the invite is held: no email (see the module's docstring).
    """
    email = (email or "").strip()
    unit = invite_scope(by=by, role=role, unit=unit, to_project=False, is_owner=is_owner)
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationError({"email": "An account with this email address already exists."})
    return invite_issue(email=email, role=role, by=by, unit=unit, ip=ip, notify=notify)


def invite_issue(*, email: str, role: str, by: User, unit: Unit | None,
                 grant: ProjectGrant | None = None, ip: str | None = None,
                 notify: bool = True) -> InviteResult:
    """Send an invite to an address that has no account yet (the caller checked who may).

    A live invite that already carries keys of other projects is extended with
    ``grant`` rather than replaced: replacing it would destroy those grants (only the
    invitee's token opens its key). Without email (``notify=False``) any live invite is
    extended, never replaced, so a link already sent keeps working; a new one is held.
    """
    project = grant.project if grant else None
    pending = _invite_pending_elsewhere(email=email, project=project, any_live=not notify)
    if pending is not None:
        return _invite_extend(invite=pending, role=role, by=by, grant=grant, ip=ip,
                              notify=notify)
    keypair = user_keypair_new()  # RSA before the transaction: no lock held across it
    with transaction.atomic():
        invite, token = _invite_new(email=email, role=role, by=by, unit=unit, grant=grant,
                                    keypair=keypair, held=not notify)
        is_owner = bool(grant and grant.is_owner)
        audit_record(action=AuditAction.INVITE_CREATE, actor=by, project=project, target=email,
                     ip=ip, details={"role": role, "unit": unit.name if unit else None,
                                     "is_owner": is_owner, "notify": notify})
        if notify:
            _invite_mail(invite=invite, token=token, by=by, project=project)
    return InviteResult(kind="invited", email=email, invite=invite)


def _invite_mail(*, invite: Invite, token: str, by: User, project: Project | None) -> None:
    mail_send_template(template="accounts/invite", to=[invite.email], context={
        "by": by, "project": project, "days": invite_days(),
        "role_label": "Project Owner" if invite.is_owner else Role(invite.role).label,
        "link": site_link("/accounts/register/?t=" + token)})


def _held_token(invite: Invite) -> str:
    """The link token of an invite made without email: derived from the row under the
    server key, so the server can send it later and a database dump cannot derive it."""
    value = f"{invite.pk}:{invite.email.lower()}:{invite.created_at.isoformat()}"
    return keyed_hash(value.encode(), purpose="invite-held-link")


def invite_is_held(*, invite: Invite) -> bool:
    """Whether ``invite`` was made without email and its link was never re-sent by
    re-inviting (a re-sent held invite keeps its link, so it still counts as held)."""
    return invite_token_matches(invite=invite, token=_held_token(invite))


def _invite_new(*, email: str, role: str, by: User, unit: Unit | None,
                grant: ProjectGrant | None, keypair: tuple[bytes, bytes],
                held: bool = False) -> tuple[Invite, str]:
    """The invite row with its key pair (and the grant); returns it and its link token
    (random and known only to the email, or for a held invite :func:`_held_token`)."""
    # Re-inviting replaces an expired invite, or one that only carries this project.
    Invite.objects.filter(email__iexact=email).delete()
    invite = Invite(email=email, role=role, unit=unit,
                    project=grant.project if grant else None,
                    is_owner=bool(grant and grant.is_owner), created_by=by,
                    expires_at=timezone.now() + timedelta(days=invite_days()))
    invite.full_clean(exclude=["token_hash"])
    invite.save()
    token = _held_token(invite) if held else secrets.token_urlsafe(32)
    invite_keys_create(invite=invite, token=token, keypair=keypair)
    if grant is not None:
        invite_access_grant(invite=invite, project=grant.project, granter=by,
                            granter_kek=grant.by_kek, is_owner=grant.is_owner)
    return invite, token


def _invite_pending_elsewhere(*, email: str, project: Project | None,
                              any_live: bool = False) -> Invite | None:
    """A live invite for ``email`` that holds keys of projects other than ``project``
    (with ``any_live``, any live invite)."""
    invite = Invite.objects.filter(email__iexact=email, expires_at__gt=timezone.now()).first()
    if invite is None or any_live:
        return invite
    others = invite.project_keys.exclude(project=project) if project else invite.project_keys
    return invite if others.exists() else None


def _day(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d}"


def _may_release_held(*, invite: Invite, by: User) -> bool:
    """Whether ``by`` may email a held invite's link. The link opens every grant the
    invite carries, and the unit that held it back decided when its people hear of it:
    so a Super Admin or staff of that unit (the invite's unit, its first project's, or its
    creator's) may; another unit whose grant was added meanwhile may not."""
    if by.role == Role.SUPER_ADMIN:
        return True
    holder = (invite.unit_id or (invite.project.unit_id if invite.project else None)
              or (invite.created_by.unit_id if invite.created_by else None))
    return by.unit_id is not None and by.unit_id == holder


@transaction.atomic
def _invite_extend(*, invite: Invite, role: str, by: User, grant: ProjectGrant | None,
                   ip: str | None, notify: bool = True) -> InviteResult:
    """Add ``grant`` to a live invite; with ``notify``, a held invite's link is sent now
    (the invitee never had it), any other invite gets the short "one more project" email."""
    held = invite_is_held(invite=invite)
    if role != invite.role or (grant is None and not (notify and held)):
        raise InviteConflict(
            f"{invite.email} already has a pending invitation (as "
            f"{Role(invite.role).label}, valid until {_day(invite.expires_at)}); it must "
            "be used or expire before a different one can be sent.")
    project = grant.project if grant else None
    if grant is not None:
        invite_access_grant(invite=invite, project=grant.project, granter=by,
                            granter_kek=grant.by_kek, is_owner=grant.is_owner)
        if invite.project_id == grant.project.pk and invite.is_owner != grant.is_owner:
            invite.is_owner = grant.is_owner  # what lists show; the grant row decides
            invite.save(update_fields=["is_owner"])
        audit_record(action=AuditAction.INVITE_ADD_PROJECT, actor=by, project=project,
                     target=invite.email, ip=ip,
                     details={"is_owner": grant.is_owner, "notify": notify})
    if notify and held and _may_release_held(invite=invite, by=by):
        _invite_mail(invite=invite, token=_held_token(invite), by=by,
                     project=project or invite.project)
    elif notify and held:
        # Held by another unit: its link would also open that unit's grants, which it
        # chose not to announce. The grant waits with the invite; the holder sends it.
        return InviteResult(kind="held", email=invite.email, invite=invite)
    elif notify and grant is not None:
        mail_send_template(template="accounts/invite_extended", to=[invite.email], context={
            "by": by, "project": grant.project, "valid_until": _day(invite.expires_at)})
    return InviteResult(kind="invited", email=invite.email, invite=invite)


@transaction.atomic
def invites_delete_expired(*, now: datetime | None = None) -> int:
    """Remove expired invites (and with them their wrapped project keys)."""
    expired = Invite.objects.filter(expires_at__lte=now or timezone.now())
    emails = list(expired.values_list("email", flat=True)[:1000])
    deleted = expired.delete()[1].get("accounts.Invite", 0)
    if deleted:
        audit_record(action=AuditAction.INVITE_EXPIRE,
                     details={"count": deleted, "emails": emails[:50]})
    return deleted
