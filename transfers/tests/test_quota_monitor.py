"""Quota warnings (issue #18, item 3): one email per crossing of a unit's warning level,
to its active Unit Admins, its contact address and the operators; the quota_monitor job
checks every unit."""

from __future__ import annotations

import threading
from io import StringIO

import pytest
from django.core import mail
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection

from accounts.models import Role, Unit
from accounts.tests.factories import UnitFactory, UserFactory
from audit.models import AuditEvent
from projects.tests.factories import ProjectFactory
from transfers.models import FileVersion
from transfers.services import quota
from transfers.services.quota import quota_check, quota_check_after_upload, quota_check_all

pytestmark = pytest.mark.django_db(transaction=True)


def warnings() -> list:
    return [m for m in mail.outbox if "storage quota" in m.subject]


@pytest.fixture
def unit(settings):
    settings.DDS_OPERATOR_EMAILS = ["ops@example.org"]
    unit = UnitFactory(quota_bytes=1000, warning_level=0.8, contact_email="unit@example.org")
    UserFactory(role=Role.UNIT_ADMIN, unit=unit, email="admin1@example.org")
    UserFactory(role=Role.UNIT_ADMIN, unit=unit, email="admin2@example.org")
    UserFactory(role=Role.UNIT_ADMIN, unit=unit, email="gone@example.org", is_active=False)
    UserFactory(role=Role.UNIT_PERSONNEL, unit=unit, email="personnel@example.org")
    return unit


def store(unit, size: int, key: str) -> FileVersion:
    project = unit.projects.first() or ProjectFactory(unit=unit)
    return FileVersion.objects.create(project=project, object_key=key, size_stored=size)


def test_a_crossing_is_mailed_once_to_the_unit_admins_contact_and_operators(unit):
    store(unit, 700, "a")
    assert quota_check(unit=unit) is False  # 70 %
    assert Unit.objects.get(pk=unit.pk).quota_warned_at is None
    store(unit, 150, "b")
    assert quota_check(unit=unit) is True  # 85 %: crossed
    assert quota_check(unit=unit) is False  # still above: no second email
    [warned] = warnings()
    assert sorted(warned.to) == ["admin1@example.org", "admin2@example.org",
                                 "ops@example.org", "unit@example.org"]
    assert "85%" in warned.body and "80%" in warned.body
    assert Unit.objects.get(pk=unit.pk).quota_warned_at is not None
    [event] = AuditEvent.objects.filter(action="quota.warning")
    assert event.details["percent"] == 85 and event.details["unit"] == unit.internal_ref


def test_the_crossing_is_remembered_in_the_database_not_the_cache(unit):
    store(unit, 900, "a")
    assert quota_check(unit=unit) is True
    cache.clear()  # a Redis flush, or another pod with its own cache
    assert quota_check(unit=Unit.objects.get(pk=unit.pk)) is False
    assert len(warnings()) == 1


def test_back_below_the_level_re_arms_the_warning(unit):
    big = store(unit, 900, "a")
    assert quota_check(unit=unit) is True
    big.delete()
    assert quota_check(unit=unit) is False  # back below: re-armed
    assert Unit.objects.get(pk=unit.pk).quota_warned_at is None
    store(unit, 850, "c")
    assert quota_check(unit=unit) is True  # the second crossing warns again
    assert len(warnings()) == 2


def test_a_lowered_quota_is_a_crossing_too(unit):
    store(unit, 500, "a")
    assert quota_check(unit=unit) is False
    Unit.objects.filter(pk=unit.pk).update(quota_bytes=600)
    assert quota_check(unit=Unit.objects.get(pk=unit.pk)) is True


def test_two_concurrent_checks_send_one_email(unit, monkeypatch):
    store(unit, 900, "a")
    # Both checks read the usage before either claims the crossing.
    barrier = threading.Barrier(2, timeout=10)
    real = quota.unit_bytes_used

    def used(*, unit_id):
        result = real(unit_id=unit_id)
        barrier.wait()
        return result

    monkeypatch.setattr(quota, "unit_bytes_used", used)
    results: list[bool] = []

    def check() -> None:
        try:
            results.append(quota_check(unit=Unit.objects.get(pk=unit.pk)))
        finally:
            connection.close()

    threads = [threading.Thread(target=check) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, True]
    assert len(warnings()) == 1
    assert AuditEvent.objects.filter(action="quota.warning").count() == 1


def test_uploads_far_below_the_level_do_not_sum_the_unit_each_time(
        unit, django_assert_num_queries):
    project = ProjectFactory(unit=unit)
    FileVersion.objects.create(project=project, object_key="a", size_stored=100)
    assert quota_check_after_upload(public_id=project.public_id, added=100) is False  # sums
    for i in range(5):  # 100 + 5 x 100 < 800: only the project lookup, no sum
        FileVersion.objects.create(project=project, object_key=f"b{i}", size_stored=100)
        with django_assert_num_queries(1):
            assert quota_check_after_upload(public_id=project.public_id, added=100) is False
    FileVersion.objects.create(project=project, object_key="c", size_stored=300)
    # The estimate reaches the level: the real sum (900 B) decides, and warns once.
    assert quota_check_after_upload(public_id=project.public_id, added=300) is True
    assert quota_check_after_upload(public_id=project.public_id, added=1) is False
    assert len(warnings()) == 1


def test_the_quota_monitor_job_checks_every_unit(unit):
    calm = UnitFactory(quota_bytes=1000, warning_level=0.8)
    store(calm, 100, "calm")
    store(unit, 950, "full")
    out = StringIO()
    call_command("quota_monitor", stdout=out)
    assert "1 at or above their warning level, 1 warned now" in out.getvalue()
    assert unit.internal_ref in out.getvalue()
    assert len(warnings()) == 1
    summary = quota_check_all()  # the next run is silent
    assert summary.above == [unit.internal_ref] and summary.warned == []
    assert len(warnings()) == 1
