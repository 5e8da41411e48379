"""Creating projects (with their key pair and first members) and editing their info."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction
from django.db.models import F

from accounts.models import UNIT_ROLES, Role, Unit, User
from accounts.services.users import MIN_UNIT_ADMINS
from audit.actions import AuditAction
from audit.services import audit_record
from core.input_guard import names_check
from keys.services import project_keys_create
from projects.errors import NeedsForce, NotUnitStaff, ProjectRuleError
from projects.models import (
    FINAL_STATUSES,
    Project,
    ProjectMembership,
    ProjectStatus,
    ProjectStatusEvent,
)
from projects.selectors import user_is_project_staff

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
                   researchers: Sequence[User] = (), owners: Sequence[User] = ()) -> Project:
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
                 target=project.public_id,
                 details={"members": [u.username for u, _ in members.values()]})
    return project


@transaction.atomic
def project_update(*, project: Project, by: User, title: str | None = None,
                   description: str | None = None, pi: str | None = None) -> Project:
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
        audit_record(action=AuditAction.PROJECT_UPDATE, actor=by, project=project,
                     details={"fields": sorted(changed)})
    return project
