"""Creating projects (with their key pair and first members) and editing their info."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import UNIT_ROLES, Invite, Role, Unit, User
from accounts.services.users import MIN_UNIT_ADMINS
from audit.actions import AuditAction
from audit.services import audit_record
from core.errors import BadInput
from core.input_guard import names_check
from keys.errors import KeyAccessError
from keys.services import project_keys_create
from projects.errors import NeedsForce, NotUnitStaff, ProjectRuleError
from projects.models import (
    FINAL_STATUSES,
    Project,
    ProjectMembership,
    ProjectStatus,
    ProjectStatusEvent,
)
from projects.selectors import project_members, user_is_project_staff
from projects.services.invites import invite_to_project

#: With two admins a unit survives one lost password; a third is what we recommend.
RECOMMENDED_UNIT_ADMINS = 3


def _allocate_public_id(unit: Unit) -> str:
    # UPDATE ... SET counter = counter + 1 takes the row lock, so concurrent creations in
    # one unit get distinct counters without a read-modify-write race.
    Unit.objects.filter(pk=unit.pk).update(project_counter=F("project_counter") + 1)
    counter = Unit.objects.values_list("project_counter", flat=True).get(pk=unit.pk)
    return f"{unit.internal_ref}-{counter:05d}"


def bucket_name_for(public_id: str, prefix: str = "") -> str:
    """S3 bucket names: 3–63 chars of lower-case letters, digits and hyphens."""
    base = f"{prefix}-{public_id}" if prefix else f"dds-{public_id}"
    return base.lower().replace("_", "-")[:63]


def unit_admin_check(*, unit: Unit, force: bool) -> None:
    """A unit needs two Unit Admins to create projects, and should have three.

    With a single admin, losing that person's password would lock the unit out of its
    projects' keys; a third makes the two-admin minimum survivable.
    """
    admins = User.objects.filter(unit=unit, role=Role.UNIT_ADMIN, is_active=True).count()
    if admins < MIN_UNIT_ADMINS:
        raise ProjectRuleError(
            f"cannot create a project: unit {unit.name} has {admins} active Unit Admin(s); "
            f"at least {MIN_UNIT_ADMINS} are required")
    if admins < RECOMMENDED_UNIT_ADMINS and not force:
        raise NeedsForce(
            f"unit {unit.name} has only {admins} Unit Admins; {RECOMMENDED_UNIT_ADMINS} "
            "are recommended. Confirm (force) to create the project anyway")


def _first_members(researchers: Sequence[User],
                   owners: Sequence[User]) -> dict[int, tuple[User, bool]]:
    """user id -> (user, is owner); an owner listed as a researcher too is an owner."""
    members = {u.pk: (u, False) for u in researchers}
    members.update({u.pk: (u, True) for u in owners})
    for user, _owner in members.values():
        if user.role != Role.RESEARCHER:
            raise ProjectRuleError(f"{user.username} is not a researcher")
    return members


def _new_project(*, unit: Unit, by: User, title: str, description: str, pi: str,
                 non_sensitive: bool) -> Project:
    public_id = _allocate_public_id(unit)
    # The unit's active storage location names the bucket (its prefix); none: "dds-".
    location = unit.storage_locations.filter(is_active=True).first()
    project = Project(
        unit=unit, public_id=public_id, title=title, description=description, pi=pi,
        non_sensitive=non_sensitive, created_by=by,
        bucket=bucket_name_for(public_id, location.bucket_prefix if location else ""),
    )
    project.full_clean()
    project.save()
    return project


@transaction.atomic
def project_create(*, unit: Unit | None, by: User, title: str, description: str = "",
                   pi: str = "", non_sensitive: bool = False, force: bool = False,
                   researchers: Sequence[User] = (), owners: Sequence[User] = (),
                   ip: str | None = None) -> Project:
    """Create a project with its key pair; add existing users as researchers/owners.

    Only the staff of ``unit`` may (a caller passing its own unit, which a researcher
    does not have, is refused the same way: 403).

    The new project key is wrapped to every active staff member of the unit and to each
    added researcher while it is still in memory here, so no KEK is needed.
    """
    if unit is None or by.role not in UNIT_ROLES or by.unit_id != unit.pk:
        raise NotUnitStaff("only the unit's staff can create its projects")
    names_check(title=title, pi=pi)
    unit_admin_check(unit=unit, force=force)
    project = _new_project(unit=unit, by=by, title=title, description=description, pi=pi,
                           non_sensitive=non_sensitive)
    members = _first_members(researchers, owners)
    staff = list(User.objects.filter(unit=unit, role__in=UNIT_ROLES, is_active=True))
    project_keys_create(project=project, holders=staff + [u for u, _ in members.values()])
    ProjectMembership.objects.bulk_create([
        ProjectMembership(project=project, user=u, is_owner=owner)
        for u, owner in members.values()])
    ProjectStatusEvent.objects.create(project=project, status=ProjectStatus.IN_PROGRESS, by=by)
    audit_record(action=AuditAction.PROJECT_CREATE, actor=by, project=project,
                 target=project.public_id, ip=ip,
                 details={"members": [u.username for u, _ in members.values()]})
    return project


@dataclass(frozen=True)
class ProjectCreated:
    """A new project, the researchers it was created with and the addresses invited to it."""

    project: Project
    added: list[ProjectMembership] = dataclasses.field(default_factory=list)
    invited: list[Invite] = dataclasses.field(default_factory=list)


def _wanted_members(researchers: Sequence[str], owners: Sequence[str]) -> dict[str, bool]:
    """lower-case email -> is owner (an owner listed as a researcher too is an owner),
    every address checked, so a typo is named before anything is made."""
    wanted: dict[str, bool] = {}
    for email, owner in [*((e, False) for e in researchers), *((e, True) for e in owners)]:
        email = (email or "").strip()
        try:
            validate_email(email)
        except ValidationError:
            raise BadInput(f"{email!r} is not a valid email address.") from None
        wanted[email.lower()] = wanted.get(email.lower(), False) or owner
    return wanted


#: Addresses without an account one project creation may invite: each invite gets its
#: own RSA key pair, made while the unit's project counter is locked (docs/locking.md).
#: More are invited afterwards with ``dds project access grant``.
CREATE_INVITES_MAX = 20


def _not_addable(email: str) -> BadInput:
    """One refusal for every address that cannot become a researcher here: it must not
    tell unit staff whose address it is, what role it has or that it is deactivated
    (``users_find`` answers such an address as it answers an unknown one)."""
    return BadInput(f"{email} cannot be added to a project as a researcher (the address "
                    "belongs to an account or invitation that is not an active researcher's). "
                    "Use another address, or ask the operators.")


def _invitable(email: str) -> None:
    """An address without an account may be invited as a researcher unless a live
    invitation for it is for another role (that one must be used or expire first)."""
    pending = Invite.objects.filter(email__iexact=email, expires_at__gt=timezone.now()).first()
    if pending is not None and pending.role != Role.RESEARCHER:
        raise _not_addable(email)


def _sorted_accounts(wanted: dict[str, bool]) -> tuple[dict[str, User], list[str]]:
    """The active researchers among ``wanted`` by email, and the addresses to invite."""
    found: dict[str, User] = {}
    unknown: list[str] = []
    for email in wanted:
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            _invitable(email)
            unknown.append(email)
        elif not user.is_active or user.role != Role.RESEARCHER:
            raise _not_addable(email)
        else:
            found[email] = user
    return found, unknown


def project_create_with_members(*, unit: Unit | None, by: User, by_kek: bytes | None,
                                title: str, description: str = "", pi: str = "",
                                non_sensitive: bool = False, force: bool = False,
                                researchers: Sequence[str] = (), owners: Sequence[str] = (),
                                notify: bool = True, ip: str | None = None) -> ProjectCreated:
    """Create a project with researchers and owners given by email: addresses with a
    researcher account become members, the others are invited to it (their invites carry
    the project key, so ``by_kek`` is needed for them), all in one transaction: a refused
    address (not an email, unit staff, a deactivated account) creates nothing.

    ``notify=False`` sends no invite email (held invites, accounts.services.invites).
    Existing researchers get no email either way: an In Progress project shows them
    nothing until it is released, which tells them.
    """
    wanted = _wanted_members(researchers, owners)
    found, unknown = _sorted_accounts(wanted)
    if len(unknown) > CREATE_INVITES_MAX:
        raise BadInput(f"At most {CREATE_INVITES_MAX} addresses without an account can be "
                       f"invited when a project is created ({len(unknown)} given); invite "
                       "the others afterwards with the members endpoint (dds project access "
                       "grant).")
    if unknown and by_kek is None:
        raise KeyAccessError("inviting new addresses to the project needs your unlocked "
                             "keys; log in again")
    with transaction.atomic():
        project = project_create(
            unit=unit, by=by, title=title, description=description, pi=pi,
            non_sensitive=non_sensitive, force=force,
            researchers=[u for e, u in found.items() if not wanted[e]],
            owners=[u for e, u in found.items() if wanted[e]], ip=ip)
        invited: list[Invite] = []
        for email in unknown:
            # The RSA key pair of each invite is made while the unit's counter row is
            # locked (this transaction): creations in the unit wait; a few seconds at most.
            result = invite_to_project(project=project, email=email, by=by,
                                       by_kek=by_kek, is_owner=wanted[email], ip=ip,
                                       notify=notify)
            if result.invite is not None:
                # The answer shows this project's grant, whatever an invite extended from
                # another project says for that one.
                result.invite.is_owner = wanted[email]
                invited.append(result.invite)
    added = list(project_members(project))  # with has_key
    return ProjectCreated(project=project, added=added, invited=invited)


@transaction.atomic
def project_update(*, project: Project, by: User, title: str | None = None,
                   description: str | None = None, pi: str | None = None,
                   ip: str | None = None) -> Project:
    """Edit project info: unit staff edit everything, owners only the description."""
    # NO KEY UPDATE (docs/locking.md): inserts that reference the project (audit events,
    # status events) need only KEY SHARE on it, so they never wait for this lock.
    names_check(title=title, pi=pi)
    project = Project.objects.select_for_update(no_key=True).get(pk=project.pk)
    if project.status in FINAL_STATUSES:
        raise ProjectRuleError(f"cannot edit: project is {project.get_status_display()}")
    if not user_is_project_staff(by, project) and (title is not None or pi is not None):
        raise ProjectRuleError("project owners may only change the description")
    changed: dict[str, str] = {}
    for field, value in (("title", title), ("description", description), ("pi", pi)):
        if value is not None and getattr(project, field) != value:
            setattr(project, field, value)
            changed[field] = value
    if changed:
        project.full_clean()
        project.save(update_fields=[*changed, "updated_at"])
        audit_record(action=AuditAction.PROJECT_UPDATE, actor=by, project=project, ip=ip,
                     details={"fields": sorted(changed)})
    return project
