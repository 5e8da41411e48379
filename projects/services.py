"""Writes for projects: creation, the status lifecycle, membership and editing.

Every rule lives here; views, admin actions, Celery tasks and management commands call
these functions. Each transition locks the project row (SELECT ... FOR UPDATE), re-reads
its status and refuses with a message naming why, so two concurrent requests, or a
request racing the scheduler, cannot both succeed.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import UNIT_ROLES, Role, Unit, User
from audit.services import audit_record
from core.errors import DDSError, ProjectBusy
from core.input_guard import names_check
from keys.services import project_keys_create, project_keys_destroy
from mail.services import mail_queue
from projects.models import (
    FINAL_STATUSES,
    Project,
    ProjectMembership,
    ProjectStatus,
    ProjectStatusEvent,
)
from projects.selectors import user_is_project_staff

logger = logging.getLogger(__name__)

MAX_DAYS_AVAILABLE = 90
MAX_RERELEASES = 2
MIN_UNIT_ADMINS = 2
RECOMMENDED_UNIT_ADMINS = 3

S = ProjectStatus
#: The lifecycle (DESIGN.md): from-status → statuses it may move to.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    S.IN_PROGRESS: (S.AVAILABLE, S.DELETED, S.ARCHIVED),
    S.AVAILABLE: (S.IN_PROGRESS, S.EXPIRED, S.ARCHIVED),
    S.EXPIRED: (S.AVAILABLE, S.ARCHIVED),
    S.ARCHIVED: (),
    S.DELETED: (),
}


class ProjectRuleError(DDSError):
    """A request the project's rules refuse; the message says why (shown to the user)."""

    code = "project_rule"


class TransitionRefused(ProjectRuleError):
    status_code = 409
    code = "transition_refused"


class NeedsForce(ProjectRuleError):
    """Allowed, but only when the caller confirms (``force``)."""

    code = "needs_force"


# --------------------------------------------------------------------------- creation


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


@transaction.atomic
def project_create(*, unit: Unit, by: User, title: str, description: str = "",
                   pi: str = "", non_sensitive: bool = False, force: bool = False,
                   researchers: Sequence[User] = (), owners: Sequence[User] = ()) -> Project:
    """Create a project with its key pair; add existing users as researchers/owners.

    The new project key is wrapped to every active staff member of the unit and to each
    added researcher while it is still in memory here, so no KEK is needed.
    """
    if by.role not in UNIT_ROLES or by.unit_id != unit.pk:
        raise ProjectRuleError("only the unit's staff can create its projects")
    names_check(title=title, pi=pi)
    unit_admin_check(unit=unit, force=force)
    public_id = _allocate_public_id(unit)
    location = unit.storage_locations.filter(is_active=True).first()
    project = Project(
        unit=unit, public_id=public_id, title=title, description=description, pi=pi,
        non_sensitive=non_sensitive, created_by=by,
        bucket=bucket_name_for(public_id, location.bucket_prefix if location else ""),
    )
    project.full_clean()
    project.save()
    staff = list(User.objects.filter(unit=unit, role__in=UNIT_ROLES, is_active=True))
    members = {u.pk: (u, False) for u in researchers}
    members.update({u.pk: (u, True) for u in owners})
    for user, _owner in members.values():
        if user.role != Role.RESEARCHER:
            raise ProjectRuleError(f"{user.username} is not a researcher")
    project_keys_create(project=project, holders=staff + [u for u, _ in members.values()])
    ProjectMembership.objects.bulk_create([
        ProjectMembership(project=project, user=u, is_owner=owner)
        for u, owner in members.values()])
    ProjectStatusEvent.objects.create(project=project, status=S.IN_PROGRESS, by=by)
    audit_record(action="project.create", actor=by, project=project, target=public_id,
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
    changed = {}
    for field, value in (("title", title), ("description", description), ("pi", pi)):
        if value is not None and getattr(project, field) != value:
            setattr(project, field, value)
            changed[field] = value
    if changed:
        project.full_clean()
        project.save(update_fields=[*changed, "updated_at"])
        audit_record(action="project.update", actor=by, project=project,
                     details={"fields": sorted(changed)})
    return project


# --------------------------------------------------------------------------- lifecycle


def _lock(project: Project) -> Project:
    # The project row first, FOR NO KEY UPDATE and only that row (not the joined unit):
    # see docs/locking.md for the one lock order.
    locked = (Project.objects.select_for_update(no_key=True, of=("self",))
              .select_related("unit").get(pk=project.pk))
    if locked.busy:
        raise ProjectBusy(f"project {locked.public_id} is busy with another operation; "
                          "try again in a moment")
    return locked


def _refuse_unless(project: Project, target: str, verb: str) -> None:
    if target not in TRANSITIONS[project.status]:
        current = project.get_status_display()
        if project.status == S.DELETED:
            reason = "project was deleted"
        elif project.status == S.ARCHIVED:
            reason = "project was archived"
        else:
            reason = f"project is {current}"
        raise TransitionRefused(f"cannot {verb}: {reason}")


def _deadline_days(days: int | None, default: int) -> int:
    days = default if days is None else days
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_DAYS_AVAILABLE:
        raise ProjectRuleError(
            f"deadline must be between 1 and {MAX_DAYS_AVAILABLE} days")
    return days


def _set_status(project: Project, status: str, *, by: User | None,
                deadline: dt.datetime | None, aborted: bool = False,
                extra_fields: Sequence[str] = ()) -> ProjectStatusEvent:
    project.status = status
    project.deadline = deadline
    project.save(update_fields=["status", "deadline", "updated_at", *extra_fields])
    return ProjectStatusEvent.objects.create(project=project, status=status, deadline=deadline,
                                             is_aborted=aborted, by=by)


def _notify_release(project: Project) -> None:
    recipients = list(project.memberships.filter(user__is_active=True)
                      .values_list("user__email", flat=True))
    if not recipients:
        return
    deadline = timezone.localtime(project.deadline).strftime("%Y-%m-%d") if project.deadline \
        else "-"
    mail_queue(
        subject=f"[DDS] Data available in project {project.public_id}",
        body=(f"The data of project {project.public_id} ({project.title}) is available "
              f"for download until {deadline}.\n\nOpen the DDS portal, or run:\n"
              f"  dds data get -p {project.public_id} --get-all\n"),
        to=recipients)


@transaction.atomic
def project_release(*, project: Project, by: User, deadline_days: int | None = None,
                    notify: bool = True) -> Project:
    """In Progress → Available (or re-release from Expired, at most twice).

    A project retracted to In Progress and released again keeps its deadline.
    """
    project = _lock(project)
    _refuse_unless(project, S.AVAILABLE, "release")
    now = timezone.now()
    extra: list[str] = ["released"]
    if project.status == S.EXPIRED:
        if project.rerelease_count >= MAX_RERELEASES:
            raise TransitionRefused(
                f"cannot release: project has been re-released {MAX_RERELEASES} times already")
        days = _deadline_days(deadline_days, project.unit.days_in_available)
        deadline = now + dt.timedelta(days=days)
        project.rerelease_count += 1
        extra.append("rerelease_count")
        action = "project.rerelease"
    elif project.released and project.deadline and project.deadline > now \
            and deadline_days is None:
        deadline = project.deadline  # retracted and released again: keeps its deadline
        action = "project.release"
    else:
        days = _deadline_days(deadline_days, project.unit.days_in_available)
        deadline = now + dt.timedelta(days=days)
        action = "project.release"
    project.released = True
    _set_status(project, S.AVAILABLE, by=by, deadline=deadline, extra_fields=extra)
    audit_record(action=action, actor=by, project=project,
                 details={"deadline": deadline.isoformat(), "notify": notify})
    if notify:
        # robust: the release has committed; a mail failure is logged, not a 500.
        transaction.on_commit(lambda: _notify_release(project), robust=True)
    return project


@transaction.atomic
def project_retract(*, project: Project, by: User) -> Project:
    """Available → In Progress (e.g. to add forgotten files); the deadline is kept."""
    project = _lock(project)
    _refuse_unless(project, S.IN_PROGRESS, "retract")
    _set_status(project, S.IN_PROGRESS, by=by, deadline=project.deadline)
    audit_record(action="project.retract", actor=by, project=project)
    return project


@transaction.atomic
def project_extend(*, project: Project, by: User, days: int) -> Project:
    """Move an Available project's deadline later; counts as a re-release."""
    project = _lock(project)
    if project.status != S.AVAILABLE:
        raise TransitionRefused(
            f"cannot extend: project is {project.get_status_display()}, not Available")
    days = _deadline_days(days, project.unit.days_in_available)
    if project.rerelease_count >= MAX_RERELEASES:
        raise TransitionRefused(
            f"cannot extend: project has been re-released {MAX_RERELEASES} times already")
    now = timezone.now()
    new_deadline = max(project.deadline or now, now) + dt.timedelta(days=days)
    if new_deadline - now > dt.timedelta(days=MAX_DAYS_AVAILABLE):
        left = (project.deadline - now).days if project.deadline else 0
        raise ProjectRuleError(
            f"cannot extend by {days} days: the deadline may be at most "
            f"{MAX_DAYS_AVAILABLE} days away ({left} days are left)")
    project.rerelease_count += 1
    _set_status(project, S.AVAILABLE, by=by, deadline=new_deadline,
                extra_fields=["rerelease_count"])
    audit_record(action="project.extend", actor=by, project=project,
                 details={"days": days, "deadline": new_deadline.isoformat()})
    return project


@transaction.atomic
def project_expire(*, project: Project, by: User | None = None) -> Project:
    """Available → Expired (normally by the scheduler at the deadline)."""
    project = _lock(project)
    _refuse_unless(project, S.EXPIRED, "expire")
    deadline = timezone.now() + dt.timedelta(days=project.unit.days_in_expired)
    _set_status(project, S.EXPIRED, by=by, deadline=deadline)
    audit_record(action="project.expire", actor=by, project=project,
                 details={"deadline": deadline.isoformat()})
    return project


def _enqueue_purge(project: Project) -> None:
    def enqueue() -> None:
        from projects.tasks import project_storage_cleanup

        project_storage_cleanup.delay(project.pk)

    transaction.on_commit(enqueue)


@transaction.atomic
def project_delete(*, project: Project, by: User) -> Project:
    """In Progress and never released → Deleted: data, keys, members and metadata go."""
    project = _lock(project)
    _refuse_unless(project, S.DELETED, "delete")
    if project.released:
        raise TransitionRefused("cannot delete: project has been released; archive it instead")
    project_keys_destroy(project=project)
    project.memberships.all().delete()
    project.invites.all().delete()
    project.title = f"(deleted project {project.public_id})"
    project.description = ""
    project.pi = ""
    project.is_active = False
    _set_status(project, S.DELETED, by=by, deadline=None,
                extra_fields=["title", "description", "pi", "is_active"])
    audit_record(action="project.delete", actor=by, project=project)
    _enqueue_purge(project)
    return project


@transaction.atomic
def project_archive(*, project: Project, by: User | None, abort: bool = False) -> Project:
    """Any non-final status → Archived: objects and keys go; metadata stays unless aborted.

    ``abort`` is for data released by mistake: it also clears the project's description.
    """
    project = _lock(project)
    _refuse_unless(project, S.ARCHIVED, "archive")
    project_keys_destroy(project=project)
    project.invites.all().delete()
    project.is_active = False
    extra = ["is_active"]
    if abort:
        project.title = f"(aborted project {project.public_id})"
        project.description = ""
        project.pi = ""
        extra += ["title", "description", "pi"]
    _set_status(project, S.ARCHIVED, by=by, deadline=None, aborted=abort, extra_fields=extra)
    audit_record(action="project.archive", actor=by, project=project,
                 details={"aborted": abort})
    _enqueue_purge(project)
    return project


# --------------------------------------------------------------------------- scheduled work


def projects_due_for_expiry(now: dt.datetime | None = None):
    now = now or timezone.now()
    return Project.objects.filter(status=S.AVAILABLE, deadline__lte=now, busy=False)


def projects_due_for_archival(now: dt.datetime | None = None):
    now = now or timezone.now()
    return Project.objects.filter(status=S.EXPIRED, deadline__lte=now, busy=False)


def projects_due_for_cleanup():
    return Project.objects.filter(status__in=FINAL_STATUSES, storage_purged_at__isnull=True)


def _run_each(projects, action, *, dry_run: bool) -> list[str]:
    """Apply ``action`` to each project; one failure does not stop the others.

    A project changed since the query (e.g. re-released) is skipped; any other failure
    (storage down) is logged and the next run retries it. Returns the ids handled.
    """
    done = []
    for project in projects.order_by("pk"):
        if dry_run:
            done.append(project.public_id)
            continue
        try:
            action(project)
            done.append(project.public_id)
        except ProjectRuleError as exc:
            logger.info("scheduler skipped %s: %s", project.public_id, exc)
        except Exception:
            logger.exception("scheduler failed on %s; the next run retries it",
                             project.public_id)
    return done


def projects_expire_due(*, now: dt.datetime | None = None, dry_run: bool = False) -> list[str]:
    """Expire every Available project past its deadline. Returns their ids."""
    return _run_each(projects_due_for_expiry(now), lambda p: project_expire(project=p),
                     dry_run=dry_run)


def projects_archive_due(*, now: dt.datetime | None = None, dry_run: bool = False) -> list[str]:
    """Archive every Expired project past its deadline. Returns their ids."""
    return _run_each(projects_due_for_archival(now),
                     lambda p: project_archive(project=p, by=None), dry_run=dry_run)


def project_storage_cleanup(*, project: Project) -> int:
    """Remove a deleted/archived project's objects; idempotent, safe to run concurrently.

    Only marks the project purged once storage confirms everything is gone, so a failure
    half-way leaves it for the next run.
    """
    from transfers.services import project_storage_purge

    if project.status not in FINAL_STATUSES:
        raise ProjectRuleError(
            f"refusing to purge storage of {project.public_id}: it is "
            f"{project.get_status_display()}")
    removed = project_storage_purge(project=project)
    Project.objects.filter(pk=project.pk, storage_purged_at__isnull=True).update(
        storage_purged_at=timezone.now())
    return removed  # audited by project_storage_purge, once


def projects_storage_cleanup_due(*, dry_run: bool = False) -> list[str]:
    return _run_each(projects_due_for_cleanup(),
                     lambda p: project_storage_cleanup(project=p), dry_run=dry_run)


# --------------------------------------------------------------------------- members


def _open_for_members(project: Project) -> None:
    if project.status in FINAL_STATUSES:
        raise TransitionRefused(f"cannot change members: project is "
                                f"{project.get_status_display()}")


def project_member_add(*, project: Project, by: User, kek: bytes, email: str,
                       owner: bool = False, ip: str | None = None):
    """Add a researcher: an existing account gets membership and a key; a new email an
    invite carrying the key (accounts.services.invite_create holds that rule)."""
    from accounts.services import invite_create

    _open_for_members(project)
    result = invite_create(email=email, role=Role.RESEARCHER, by=by, by_kek=kek,
                           project=project, is_owner=owner, ip=ip)
    if result.kind == "added":
        return ProjectMembership.objects.select_related("user").get(project=project,
                                                                    user=result.user)
    return result.invite


def _membership(project: Project, username: str) -> ProjectMembership:
    membership = (ProjectMembership.objects.select_related("user")
                  .filter(project=project, user__username=username).first())
    if membership is None:
        raise ProjectRuleError(f"{username} is not a member of {project.public_id}")
    return membership


@transaction.atomic
def project_member_set_owner(*, project: Project, by: User, username: str,
                             owner: bool) -> ProjectMembership:
    _open_for_members(project)
    membership = _membership(project, username)
    if membership.is_owner != owner:
        membership.is_owner = owner
        membership.save(update_fields=["is_owner"])
        audit_record(action="project.member_owner", actor=by, project=project,
                     target=username, details={"is_owner": owner})
    return membership


@transaction.atomic
def project_member_revoke(*, project: Project, by: User, username: str) -> None:
    """Remove a member and destroy their copy of the project key."""
    from keys.services import project_access_revoke

    membership = _membership(project, username)
    project_access_revoke(project=project, user=membership.user)
    membership.delete()
    audit_record(action="project.member_revoke", actor=by, project=project, target=username)


def project_access_fix(*, project: Project | None, by: User, kek: bytes,
                       username: str, ip: str | None = None) -> list[Project]:
    """Re-grant keys to a member who reset their password, by username (the rule and its
    audit live in accounts.services.user_access_fix)."""
    from accounts.selectors import user_get_for_actor
    from accounts.services import user_access_fix

    # Scoped lookup: an unknown name and another unit's user look the same (404).
    user = user_get_for_actor(actor=by, username=username)
    return user_access_fix(user=user, by=by, by_kek=kek, project=project, ip=ip)
