"""Every allowed and refused transition, the scheduler, and concurrent releases."""

import datetime as dt
import logging
import threading

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from core.errors import ProjectBusy
from keys.models import ProjectUserKey
from projects.errors import ProjectRuleError, TransitionRefused
from projects.models import Project, ProjectStatus, ProjectStatusEvent
from projects.services import (
    project_archive,
    project_delete,
    project_expire,
    project_extend,
    project_release,
    project_retract,
    projects_archive_due,
    projects_expire_due,
)
from projects.tests.helpers import make_world

S = ProjectStatus


@pytest.fixture
def world(unit_a):
    return make_world(unit_a)


def _status(project):
    project.refresh_from_db()
    return project.status


def _history(project):
    return list(project.status_events.values_list("status", flat=True))


# --------------------------------------------------------------------------- allowed


@pytest.mark.django_db
def test_release_sets_deadline_and_emails_researchers(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        project_release(project=world.project, by=world.staff, deadline_days=10)
    p = world.project
    assert _status(p) == S.AVAILABLE and p.released
    assert abs((p.deadline - timezone.now()) - dt.timedelta(days=10)) < dt.timedelta(minutes=1)
    assert _history(p) == [S.IN_PROGRESS, S.AVAILABLE]
    assert [m.to for m in mail.outbox] == [[world.researcher.email]]
    assert p.public_id in mail.outbox[0].subject


@pytest.mark.django_db
def test_release_uses_the_unit_default_and_can_skip_email(world,
                                                          django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        project_release(project=world.project, by=world.staff, notify=False)
    p = world.project
    p.refresh_from_db()
    expected = dt.timedelta(days=world.unit.days_in_available)
    assert abs((p.deadline - timezone.now()) - expected) < dt.timedelta(minutes=1)
    assert mail.outbox == []


@pytest.mark.django_db
def test_retract_and_release_again_keeps_the_deadline(world):
    project_release(project=world.project, by=world.staff, deadline_days=20)
    deadline = Project.objects.get(pk=world.project.pk).deadline
    project_retract(project=world.project, by=world.staff)
    assert _status(world.project) == S.IN_PROGRESS
    project_release(project=world.project, by=world.staff)
    world.project.refresh_from_db()
    assert world.project.deadline == deadline
    assert _history(world.project) == [S.IN_PROGRESS, S.AVAILABLE, S.IN_PROGRESS, S.AVAILABLE]


@pytest.mark.django_db
def test_expire_then_rerelease_at_most_twice(world):
    project_release(project=world.project, by=world.staff, deadline_days=5)
    for _ in range(2):
        project_expire(project=world.project)
        assert _status(world.project) == S.EXPIRED
        project_release(project=world.project, by=world.staff, deadline_days=5)
        assert _status(world.project) == S.AVAILABLE
    project_expire(project=world.project)
    with pytest.raises(TransitionRefused, match="re-released 2 times already"):
        project_release(project=world.project, by=world.staff)
    assert _status(world.project) == S.EXPIRED


@pytest.mark.django_db
def test_expire_sets_the_grace_deadline(world):
    project_release(project=world.project, by=world.staff)
    project_expire(project=world.project)
    world.project.refresh_from_db()
    expected = dt.timedelta(days=world.unit.days_in_expired)
    assert abs((world.project.deadline - timezone.now()) - expected) < dt.timedelta(minutes=1)


@pytest.mark.django_db
def test_extend_counts_as_a_rerelease_and_caps_at_90_days(world):
    project_release(project=world.project, by=world.staff, deadline_days=30)
    project_extend(project=world.project, by=world.staff, days=30)
    world.project.refresh_from_db()
    assert world.project.rerelease_count == 1
    assert (world.project.deadline - timezone.now()).days in (59, 60)
    with pytest.raises(ProjectRuleError, match="at most 90 days away"):
        project_extend(project=world.project, by=world.staff, days=40)
    project_extend(project=world.project, by=world.staff, days=20)
    with pytest.raises(TransitionRefused, match="re-released 2 times"):
        project_extend(project=world.project, by=world.staff, days=1)


@pytest.mark.django_db
def test_delete_removes_keys_members_and_metadata(world):
    project_delete(project=world.project, by=world.staff)
    p = world.project
    p.refresh_from_db()
    assert p.status == S.DELETED and not p.is_active
    assert p.description == "" and p.pi == "" and "deleted" in p.title
    assert not ProjectUserKey.objects.filter(project=p).exists()
    assert not p.memberships.exists()
    assert p.public_key is None


@pytest.mark.django_db
@pytest.mark.parametrize("release", [False, True])
def test_archive_keeps_metadata_and_removes_keys(world, release):
    if release:
        project_release(project=world.project, by=world.staff)
    project_archive(project=world.project, by=world.staff)
    p = world.project
    p.refresh_from_db()
    assert p.status == S.ARCHIVED and p.title == "Lifecycle"
    assert not ProjectUserKey.objects.filter(project=p).exists()
    event = p.status_events.last()
    assert event.status == S.ARCHIVED and not event.is_aborted


@pytest.mark.django_db
def test_archive_from_expired_and_abort_clears_metadata(world):
    project_release(project=world.project, by=world.staff)
    project_expire(project=world.project)
    project_archive(project=world.project, by=world.staff, abort=True)
    p = world.project
    p.refresh_from_db()
    assert p.status == S.ARCHIVED and "aborted" in p.title and p.description == ""
    assert p.status_events.last().is_aborted


# --------------------------------------------------------------------------- refused


@pytest.mark.django_db
@pytest.mark.parametrize("action,message", [
    (lambda w: project_retract(project=w.project, by=w.staff), "cannot retract: project is In"),
    (lambda w: project_expire(project=w.project), "cannot expire: project is In Progress"),
    (lambda w: project_extend(project=w.project, by=w.staff, days=3),
     "cannot extend: project is In Progress"),
])
def test_refused_from_in_progress(world, action, message):
    with pytest.raises(TransitionRefused, match=message):
        action(world)
    assert _history(world.project) == [S.IN_PROGRESS]


@pytest.mark.django_db
def test_refused_from_available(world):
    project_release(project=world.project, by=world.staff)
    with pytest.raises(TransitionRefused, match="cannot release: project is Available"):
        project_release(project=world.project, by=world.staff)
    with pytest.raises(TransitionRefused, match="cannot delete: project is Available"):
        project_delete(project=world.project, by=world.staff)


@pytest.mark.django_db
def test_refused_from_expired(world):
    project_release(project=world.project, by=world.staff)
    project_expire(project=world.project)
    with pytest.raises(TransitionRefused, match="cannot retract: project is Expired"):
        project_retract(project=world.project, by=world.staff)
    with pytest.raises(TransitionRefused, match="cannot delete"):
        project_delete(project=world.project, by=world.staff)
    with pytest.raises(TransitionRefused, match="cannot expire"):
        project_expire(project=world.project)


@pytest.mark.django_db
def test_delete_refused_after_a_release(world):
    project_release(project=world.project, by=world.staff)
    project_retract(project=world.project, by=world.staff)
    with pytest.raises(TransitionRefused, match="has been released; archive it instead"):
        project_delete(project=world.project, by=world.staff)


@pytest.mark.django_db
@pytest.mark.parametrize("final", ["delete", "archive"])
def test_final_statuses_refuse_everything(world, final):
    if final == "delete":
        project_delete(project=world.project, by=world.staff)
        reason = "project was deleted"
    else:
        project_archive(project=world.project, by=world.staff)
        reason = "project was archived"
    for action in (lambda: project_release(project=world.project, by=world.staff),
                   lambda: project_retract(project=world.project, by=world.staff),
                   lambda: project_archive(project=world.project, by=world.staff),
                   lambda: project_delete(project=world.project, by=world.staff)):
        with pytest.raises(TransitionRefused, match=reason):
            action()


@pytest.mark.django_db
@pytest.mark.parametrize("days", [0, 91, -1, "7", True])
def test_deadline_must_be_1_to_90_days(world, days):
    with pytest.raises(ProjectRuleError, match="between 1 and 90 days"):
        project_release(project=world.project, by=world.staff, deadline_days=days)
    assert _status(world.project) == S.IN_PROGRESS


@pytest.mark.django_db
def test_busy_project_refuses_transitions(world):
    Project.objects.filter(pk=world.project.pk).update(busy=True)
    with pytest.raises(ProjectBusy, match="busy"):
        project_release(project=world.project, by=world.staff)


# --------------------------------------------------------------------------- scheduler


@pytest.mark.django_db
def test_scheduler_expires_and_archives_the_right_projects(unit_a, capsys):
    w = make_world(unit_a)
    from projects.services import project_create

    due = w.project
    later = project_create(unit=unit_a, by=w.admin, title="later")
    untouched = project_create(unit=unit_a, by=w.admin, title="in progress")
    project_release(project=due, by=w.staff, deadline_days=3)
    project_release(project=later, by=w.staff, deadline_days=30)

    with time_machine.travel(timezone.now() + dt.timedelta(days=4), tick=False):
        call_command("projects_expire", "--dry-run")
        assert f"would expire {due.public_id}" in capsys.readouterr().out
        assert _status(due) == S.AVAILABLE
        assert projects_expire_due() == [due.public_id]
        assert _status(due) == S.EXPIRED and _status(later) == S.AVAILABLE
        assert projects_expire_due() == []  # idempotent

    grace = unit_a.days_in_expired
    with time_machine.travel(timezone.now() + dt.timedelta(days=4 + grace + 1), tick=False):
        assert projects_archive_due() == [due.public_id]
    assert _status(due) == S.ARCHIVED
    assert _status(later) == S.AVAILABLE and _status(untouched) == S.IN_PROGRESS


# --------------------------------------------------------------------------- concurrency


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_releases_leave_one_event(unit_a):
    assert connection.vendor == "postgresql", "concurrency is tested on PostgreSQL"
    w = make_world(unit_a)
    barrier = threading.Barrier(2)
    outcomes = []

    def release():
        try:
            barrier.wait()
            project_release(project=w.project, by=w.staff, deadline_days=7, notify=False)
            outcomes.append("ok")
        except TransitionRefused as exc:
            outcomes.append(str(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=release) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["cannot release: project is Available", "ok"]
    assert ProjectStatusEvent.objects.filter(project=w.project,
                                             status=S.AVAILABLE).count() == 1


@pytest.mark.django_db
def test_the_scheduler_skips_a_busy_project_without_reporting_a_failure(unit_a, caplog):
    """A project that became busy (a key rotation) between selection and lock is skipped
    and left for the next run, not reported as a failure."""
    from projects.services.scheduling import run_each_project

    w = make_world(unit_a)
    project_release(project=w.project, by=w.staff, deadline_days=3)
    Project.objects.filter(pk=w.project.pk).update(busy=True)
    with time_machine.travel(timezone.now() + dt.timedelta(days=4), tick=False):
        done = run_each_project(Project.objects.filter(pk=w.project.pk),
                                lambda p: project_expire(project=p), dry_run=False)
    assert done == [] and _status(w.project) == S.AVAILABLE
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
