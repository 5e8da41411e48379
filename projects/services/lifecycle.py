"""The status lifecycle: release, retract, extend, expire, delete, archive.

Each transition locks the project row (SELECT ... FOR UPDATE), re-reads its status and
refuses with a message naming why, so two concurrent requests, or a request racing the
scheduler, cannot both succeed. Deleting or archiving queues the storage purge
(transfers.tasks.project_storage_cleanup) once the transition commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from accounts.models import MAX_DAYS_AVAILABLE, User
from audit.actions import AuditAction
from audit.services import audit_record
from core.dispatch import after_commit
from core.errors import ProjectBusy
from keys.services import project_keys_destroy
from mail.services import mail_send_template
from projects.errors import ProjectRuleError, TransitionRefused
from projects.models import Project, ProjectStatus, ProjectStatusEvent

#: Re-releases from Expired (and extensions while Available) in a project's life.
MAX_RERELEASES = 2
#: The task that removes a deleted or archived project's stored objects (transfers).
PURGE_TASK = "transfers.tasks.project_storage_cleanup"

S = ProjectStatus
#: The lifecycle (DESIGN.md): from-status → statuses it may move to.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    S.IN_PROGRESS: (S.AVAILABLE, S.DELETED, S.ARCHIVED),
    S.AVAILABLE: (S.IN_PROGRESS, S.EXPIRED, S.ARCHIVED),
    S.EXPIRED: (S.AVAILABLE, S.ARCHIVED),
    S.ARCHIVED: (),
    S.DELETED: (),
}


def project_lock(project: Project) -> Project:
    """The project row, locked for this transaction, re-read; ``ProjectBusy`` (423) while
    a long operation (key rotation, purge) holds it."""
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
        if project.status == S.DELETED:
            reason = "project was deleted"
        elif project.status == S.ARCHIVED:
            reason = "project was archived"
        else:
            reason = f"project is {project.get_status_display()}"
        raise TransitionRefused(f"cannot {verb}: {reason}")


def deadline_days_check(days: int | None, default: int) -> int:
    """Days until a deadline: ``days`` (or the unit's ``default``), 1 to the maximum."""
    days = default if days is None else days
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_DAYS_AVAILABLE:
        raise ProjectRuleError(f"deadline must be between 1 and {MAX_DAYS_AVAILABLE} days")
    return days


def _rereleases_check(project: Project, verb: str) -> None:
    if project.rerelease_count >= MAX_RERELEASES:
        raise TransitionRefused(
            f"cannot {verb}: project has been re-released {MAX_RERELEASES} times already")


def _set_status(project: Project, status: str, *, by: User | None,
                deadline: dt.datetime | None, aborted: bool = False,
                extra_fields: Sequence[str] = ()) -> ProjectStatusEvent:
    project.status = status
    project.deadline = deadline
    project.save(update_fields=["status", "deadline", "updated_at", *extra_fields])
    return ProjectStatusEvent.objects.create(project=project, status=status, deadline=deadline,
                                             is_aborted=aborted, by=by)


def _release_notify(project: Project) -> None:
    """Email the active members that the data is available (queued with the release)."""
    recipients = list(project.memberships.filter(user__is_active=True)
                      .values_list("user__email", flat=True))
    if not recipients:
        return
    deadline = (timezone.localtime(project.deadline).strftime("%Y-%m-%d")
                if project.deadline else "-")
    mail_send_template(template="projects/released", to=recipients,
                       context={"project": project, "deadline": deadline})


def _release_deadline(project: Project, deadline_days: int | None,
                      now: dt.datetime) -> tuple[dt.datetime, AuditAction, list[str]]:
    """(deadline, audit action, extra fields to save) of releasing ``project`` now."""
    if project.status == S.EXPIRED:
        _rereleases_check(project, "release")
        days = deadline_days_check(deadline_days, project.unit.days_in_available)
        project.rerelease_count += 1
        return (now + dt.timedelta(days=days), AuditAction.PROJECT_RERELEASE,
                ["rerelease_count"])
    if (project.released and project.deadline and project.deadline > now
            and deadline_days is None):
        return project.deadline, AuditAction.PROJECT_RELEASE, []  # retracted: keeps it
    days = deadline_days_check(deadline_days, project.unit.days_in_available)
    return now + dt.timedelta(days=days), AuditAction.PROJECT_RELEASE, []


@transaction.atomic
def project_release(*, project: Project, by: User, deadline_days: int | None = None,
                    notify: bool = True, ip: str | None = None) -> Project:
    """In Progress → Available (or re-release from Expired, at most twice).

    A project retracted to In Progress and released again keeps its deadline.
    """
    project = project_lock(project)
    _refuse_unless(project, S.AVAILABLE, "release")
    deadline, action, extra = _release_deadline(project, deadline_days, timezone.now())
    project.released = True
    _set_status(project, S.AVAILABLE, by=by, deadline=deadline,
                extra_fields=["released", *extra])
    audit_record(action=action, actor=by, project=project, ip=ip,
                 details={"deadline": deadline.isoformat(), "notify": notify})
    if notify:
        _release_notify(project)
    return project


@transaction.atomic
def project_retract(*, project: Project, by: User, ip: str | None = None) -> Project:
    """Available → In Progress (e.g. to add forgotten files); the deadline is kept."""
    project = project_lock(project)
    _refuse_unless(project, S.IN_PROGRESS, "retract")
    _set_status(project, S.IN_PROGRESS, by=by, deadline=project.deadline)
    audit_record(action=AuditAction.PROJECT_RETRACT, actor=by, project=project, ip=ip)
    return project


@transaction.atomic
def project_extend(*, project: Project, by: User, days: int,
                   ip: str | None = None) -> Project:
    """Move an Available project's deadline later; counts as a re-release."""
    project = project_lock(project)
    if project.status != S.AVAILABLE:
        raise TransitionRefused(
            f"cannot extend: project is {project.get_status_display()}, not Available")
    days = deadline_days_check(days, project.unit.days_in_available)
    _rereleases_check(project, "extend")
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
    audit_record(action=AuditAction.PROJECT_EXTEND, actor=by, project=project, ip=ip,
                 details={"days": days, "deadline": new_deadline.isoformat()})
    return project


@transaction.atomic
def project_expire(*, project: Project, by: User | None = None,
                   ip: str | None = None) -> Project:
    """Available → Expired (normally by the scheduler at the deadline)."""
    project = project_lock(project)
    _refuse_unless(project, S.EXPIRED, "expire")
    deadline = timezone.now() + dt.timedelta(days=project.unit.days_in_expired)
    _set_status(project, S.EXPIRED, by=by, deadline=deadline)
    audit_record(action=AuditAction.PROJECT_EXPIRE, actor=by, project=project, ip=ip,
                 details={"deadline": deadline.isoformat()})
    return project


def _keys_and_invites_remove(project: Project) -> None:
    """The data becomes unreadable: every copy of the project key, and pending invites."""
    project_keys_destroy(project=project)
    project.invites.all().delete()


@transaction.atomic
def project_delete(*, project: Project, by: User, ip: str | None = None) -> Project:
    """In Progress and never released → Deleted: data, keys, members and metadata go."""
    project = project_lock(project)
    _refuse_unless(project, S.DELETED, "delete")
    if project.released:
        raise TransitionRefused("cannot delete: project has been released; archive it instead")
    _keys_and_invites_remove(project)
    project.memberships.all().delete()
    project.title = f"(deleted project {project.public_id})"
    project.description = ""
    project.pi = ""
    project.is_active = False
    _set_status(project, S.DELETED, by=by, deadline=None,
                extra_fields=["title", "description", "pi", "is_active"])
    audit_record(action=AuditAction.PROJECT_DELETE, actor=by, project=project, ip=ip)
    after_commit(PURGE_TASK, project.pk)
    return project


@transaction.atomic
def project_archive(*, project: Project, by: User | None, abort: bool = False,
                    ip: str | None = None) -> Project:
    """Any non-final status → Archived: objects and keys go; metadata stays unless aborted.

    ``abort`` is for data released by mistake: it also clears the project's description.
    """
    project = project_lock(project)
    _refuse_unless(project, S.ARCHIVED, "archive")
    _keys_and_invites_remove(project)
    project.is_active = False
    extra = ["is_active"]
    if abort:
        project.title = f"(aborted project {project.public_id})"
        project.description = ""
        project.pi = ""
        extra += ["title", "description", "pi"]
    _set_status(project, S.ARCHIVED, by=by, deadline=None, aborted=abort, extra_fields=extra)
    audit_record(action=AuditAction.PROJECT_ARCHIVE, actor=by, project=project, ip=ip,
                 details={"aborted": abort})
    after_commit(PURGE_TASK, project.pk)
    return project
