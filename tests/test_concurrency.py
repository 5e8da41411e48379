"""Concurrency on PostgreSQL: the races a busy facility hits first (issue 13).

Real requests in parallel threads, each thread on its own database connection:
- release / retract / member PATCH / download prepare on one project: every answer is a
  4xx or 2xx (no "deadlock detected" 500), and the status history matches the answers;
- one correct and three wrong second-factor codes for one pending login: one login, three
  counted and audited failures, no 500.
"""

from __future__ import annotations

import base64
import itertools
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

import c4gh
from accounts.models import LoginThrottle, Role
from accounts.services.lockout import throttle_keys
from accounts.tests.helpers import APIClient, api_login, bearer, last_code
from audit.models import AuditEvent
from audit.services import audit_verify
from keys.tests.helpers import keyed_user
from projects.models import Project, ProjectStatusEvent
from projects.services import project_create, project_member_add
from transfers.tests.helpers import api_url, upload

pytestmark = pytest.mark.django_db(transaction=True)


def _parallel(calls, workers: int = 8) -> list:
    def run(call):
        try:
            return call()
        finally:
            connections.close_all()  # each worker thread's own connection

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(run, calls))


def _client(access: str) -> APIClient:
    client = bearer(access)
    client.raise_request_exception = False  # a 500 is an answer to count, not a raise
    return client


@pytest.fixture
def delivery(settings, tmp_path, live_server, unit_a):
    settings.DDS_STORAGE_BACKEND = "local"
    settings.DDS_LOCAL_STORAGE_ROOT = tmp_path / "storage"
    settings.DDS_LOCAL_STORAGE_URL = live_server.url
    admin, admin_pw, admin_kek = keyed_user(Role.UNIT_ADMIN, unit=unit_a)
    keyed_user(Role.UNIT_ADMIN, unit=unit_a)
    researcher, researcher_pw, _ = keyed_user(Role.RESEARCHER)
    project = project_create(unit=unit_a, by=admin, title="Busy delivery", force=True)
    project.refresh_from_db()
    project_member_add(project=project, by=admin, kek=admin_kek, email=researcher.email)
    staff_access = api_login(admin, admin_pw)["access"]
    upload(bearer(staff_access), project, "data/one.txt", b"one file for everybody")
    return {"project": project, "researcher": researcher,
            "staff": staff_access, "researcher_token": api_login(researcher, researcher_pw)[
                "access"]}


def test_mixed_release_retract_patch_download_never_deadlock(delivery):
    project, staff = delivery["project"], _client(delivery["staff"])
    reader = _client(delivery["researcher_token"])
    username = delivery["researcher"].username
    _, pk = c4gh.generate_keypair()
    download = {"public_key": base64.b64encode(pk).decode(), "paths": ["data/one.txt"]}
    before = ProjectStatusEvent.objects.filter(project=project).count()
    owner = itertools.cycle([True, False])

    def release():
        return "release", staff.post(api_url(project, "release"),
                                     {"deadline_days": 10, "notify": False}, format="json")

    def retract():
        return "retract", staff.post(api_url(project, "retract"), {}, format="json")

    def patch():
        return "patch", staff.patch(api_url(project, f"members/{username}"),
                                    {"owner": next(owner)}, format="json")

    def prepare():
        return "download", reader.post(api_url(project, "files/download"), download,
                                       format="json")

    calls = [release, retract, patch, prepare] * 20
    results = _parallel(calls)
    statuses = [(kind, r.status_code) for kind, r in results]
    assert not [s for s in statuses if s[1] >= 500], statuses
    assert {code for _, code in statuses} <= {200, 201, 403, 404, 409}, statuses
    changed = sum(1 for kind, code in statuses if kind in ("release", "retract")
                  and code == 200)
    assert changed >= 2  # both transitions really ran against each other
    assert ProjectStatusEvent.objects.filter(project=project).count() == before + changed
    project.refresh_from_db()
    last = ProjectStatusEvent.objects.filter(project=project).order_by("-id").first()
    assert project.status == last.status
    assert sum(1 for kind, code in statuses if kind == "download" and code == 200) == \
        AuditEvent.objects.filter(project=project, action="file.download").count()
    assert audit_verify().ok


def test_one_right_and_three_wrong_codes_in_parallel(db, settings):
    # Wrong codes that lose the race to the right one still count: no lockout within this.
    settings.DDS_LOCKOUT_FAILURES = 50
    user, password, _ = keyed_user(Role.RESEARCHER)
    counted_total = 0
    for round_ in range(4):
        client = APIClient()
        client.raise_request_exception = False
        first = client.post("/api/v1/auth/login", {"username": user.username,
                                                   "password": password}, format="json")
        assert first.status_code == 200, first.content
        pending, code = first.json()["pending_token"], last_code(user.email)
        wrong = [f"{(int(code) + n) % 10**8:08d}" for n in (1, 2, 3)]
        failures_before = AuditEvent.objects.filter(action="auth.failure").count()

        def attempt(value, pending=pending):
            c = APIClient()
            c.raise_request_exception = False
            r = c.post("/api/v1/auth/2fa", {"code": value}, format="json",
                       HTTP_AUTHORIZATION=f"Bearer {pending}")
            return value, (r.status_code, r.json().get("detail", ""))

        answers = dict(_parallel([lambda v=v: attempt(v) for v in [code, *wrong]], workers=4))
        assert answers[code][0] == 200, (round_, answers)
        # A wrong code is refused (401): checked and counted while the login is pending,
        # or turned away with the pending token once the right code has won.
        assert all(answers[w][0] == 401 for w in wrong), (round_, answers)
        counted = sum(1 for w in wrong if "code is wrong" in answers[w][1])
        counted_total += counted
        # Each checked wrong attempt was counted and audited, none lost to a deadlock.
        assert AuditEvent.objects.filter(action="auth.failure").count() == \
            failures_before + counted
        ip_row = LoginThrottle.objects.filter(
            key=throttle_keys(user.username, "127.0.0.1")[1][0]).first()
        assert (ip_row.failures if ip_row else 0) == counted_total
    assert counted_total > 0  # the race really ran
    assert AuditEvent.objects.filter(action="auth.login", actor=user).count() == 4
    assert audit_verify().ok


def test_projects_of_other_units_do_not_share_an_audit_lock(unit_a, unit_b):
    """Events of unrelated projects go to different chain heads (no global lock)."""
    from accounts.tests.factories import UserFactory
    from audit.services import audit_record

    a = UserFactory(role=Role.UNIT_ADMIN, unit=unit_a)
    b = UserFactory(role=Role.UNIT_ADMIN, unit=unit_b)
    pa = Project.objects.create(unit=unit_a, public_id="unita-00001", title="A",
                                bucket="b-a", created_by=a)
    pb = Project.objects.create(unit=unit_b, public_id="unitb-00001", title="B",
                                bucket="b-b", created_by=b)
    from django.db import transaction

    # Hold project A's head in this thread; project B's append must not wait for it.
    with transaction.atomic():
        audit_record(action="project.update", actor=a, project=pa)

        def other():
            with connections["default"].cursor() as cursor:
                cursor.execute("SET lock_timeout = '2s'")
            audit_record(action="project.update", actor=b, project=pb)
            return "done"

        assert _parallel([other], workers=1) == ["done"]
    assert audit_verify().ok
