"""The monthly statistics snapshot: what each figure counts, at the end of the month."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import Role, Unit, User
from accounts.tests.factories import UnitFactory, UserFactory
from audit.actions import AuditAction
from audit.models import AuditEvent
from audit.services import audit_record
from projects.models import Project, ProjectStatus, ProjectStatusEvent
from projects.tests.factories import ProjectFactory
from reports.models import StatsSnapshot
from reports.services.stats import stats_snapshot_data, stats_snapshot_take
from reports.tests.conftest import GB, local
from transfers.tests.factories import FileFactory

NOV = dt.date(2026, 11, 1)
S = ProjectStatus


def _at(event, when):
    AuditEvent.objects.filter(pk=event.pk).update(at=when)


@pytest.fixture
def system(november):
    w = november
    oct1 = local(2026, 10, 1)
    Unit.objects.update(created_at=oct1)
    UnitFactory(internal_ref="late", name="Late")  # created now (December): not counted
    for role, unit, joined, active in [
            (Role.SUPER_ADMIN, None, oct1, True),
            (Role.UNIT_ADMIN, w.ngi, oct1, True), (Role.UNIT_ADMIN, w.nbis, oct1, True),
            (Role.UNIT_PERSONNEL, w.ngi, oct1, True),
            (Role.RESEARCHER, None, oct1, True),
            (Role.RESEARCHER, None, oct1, False),  # deactivated
            (Role.RESEARCHER, None, local(2026, 12, 3), True)]:  # joined later
        user = UserFactory(role=role, unit=unit, is_active=active)
        User.objects.filter(pk=user.pk).update(date_joined=joined)
    Project.objects.update(created_at=oct1)
    for project, events in [
            (w.p1, [(S.IN_PROGRESS, oct1), (S.AVAILABLE, local(2026, 11, 10))]),
            (w.p2, [(S.IN_PROGRESS, oct1), (S.AVAILABLE, local(2026, 10, 5)),
                    (S.EXPIRED, local(2026, 11, 20))]),
            (w.p3, [(S.IN_PROGRESS, oct1), (S.AVAILABLE, local(2026, 12, 2))]),
            (w.idle, [(S.IN_PROGRESS, oct1), (S.ARCHIVED, local(2026, 11, 25))])]:
        for status, at in events:
            ProjectStatusEvent.objects.create(project=project, status=status, at=at)
        Project.objects.filter(pk=project.pk).update(status=events[-1][0])
    ProjectFactory(unit=w.ngi)  # created in December: not counted
    FileFactory(project=w.p1, path="a.txt")  # size_stored 128
    FileFactory(project=w.p1, path="b.txt")
    _at(audit_record(action=AuditAction.FILE_DOWNLOAD, project=w.p2, target="x",
                     details={"count": 3, "bytes": 1000}), local(2026, 11, 3))
    _at(audit_record(action=AuditAction.FILE_DOWNLOAD, project=w.p1, target="2 files",
                     details={"count": 2, "paths": ["a.txt", "b.txt", "gone.txt"]}),
        local(2026, 11, 30, 23, 59))
    _at(audit_record(action=AuditAction.FILE_DOWNLOAD, project=w.p1, target="a.txt",
                     details={"count": 1, "bytes": 5}), local(2026, 12, 1))  # December
    return w


def test_the_snapshot_counts_the_month(system):
    snap = stats_snapshot_take(month=NOV, now=system.now)
    data = stats_snapshot_data(snap)
    assert data["month"] == "2026-11" and data["as_of"] == local(2026, 12, 1)
    assert data["units"] == 2
    assert data["users"] == {"super_admin": 1, "unit_admin": 2, "unit_personnel": 1,
                             "researcher": 1, "total": 5}
    assert data["projects"] == {"in_progress": 1, "available": 1, "expired": 1,
                                "active": 3}
    # Alive at the end of November: p1's 1 + 2 GB and p3's half GB.
    assert data["bytes_stored"] == 3 * GB + GB // 2
    assert data["bytes_uploaded"] == 2 * GB  # p1's second version, on the 16th
    assert data["bytes_downloaded"] == 1000 + 2 * 128  # a removed file counts 0
    assert data["deliveries_released"] == 1
    event = AuditEvent.objects.get(action="stats.snapshot")
    assert event.target == "2026-11" and event.details["units"] == 2


def test_taking_a_month_again_replaces_its_row(system):
    stats_snapshot_take(month=NOV, now=system.now)
    UnitFactory(internal_ref="more", name="More")
    Unit.objects.filter(internal_ref="more").update(created_at=local(2026, 11, 2))
    again = stats_snapshot_take(month=NOV, now=system.now)
    assert StatsSnapshot.objects.count() == 1
    assert StatsSnapshot.objects.get().pk == again.pk and again.units == 3


def test_the_current_month_is_as_of_now_and_a_future_one_refused(system):
    now = local(2026, 12, 5, 9)
    snap = stats_snapshot_take(month=dt.date(2026, 12, 1), now=now)
    assert snap.as_of == now and snap.bytes_downloaded == 5
    assert snap.projects_available == 2  # p3 was released on the 2nd
    with pytest.raises(Exception, match="has not begun"):
        stats_snapshot_take(month=dt.date(2027, 1, 1), now=now)


def test_the_command_takes_last_month(system, monkeypatch):
    monkeypatch.setattr("django.utils.timezone.now", lambda: system.now)
    out = io.StringIO()
    call_command("stats_snapshot", stdout=out)
    assert "statistics 2026-11: 2 unit(s), 5 user(s), 3 active project(s)" in out.getvalue()
    assert StatsSnapshot.objects.get().month == NOV
    with pytest.raises(CommandError, match="YYYY-MM"):
        call_command("stats_snapshot", "--month", "last")
