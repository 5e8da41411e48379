"""Argon2 runs draw on a bounded per-process memory budget: beyond it, 503 + Retry-After."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest

from accounts.tests.helpers import APIClient
from core.kdf_limit import BUDGET, KdfBusy, MemoryBudget, kdf_slot


def _hold(budget: MemoryBudget, kib: int, release: threading.Event, held: threading.Event):
    with budget.slot(kib):
        held.set()
        release.wait(10)


@contextlib.contextmanager
def _budget_taken(settings):
    """The process's whole budget held by another thread for the block (1 MiB, short
    waits), so a login in the block finds no room."""
    settings.DDS_KDF_MEMORY_BUDGET_MIB = 1
    settings.DDS_KDF_WAIT_SECONDS = 0.2
    release, held = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold, args=(BUDGET, 1024, release, held))
    holder.start()
    held.wait(5)
    try:
        yield
    finally:
        release.set()
        holder.join()


def test_runs_never_exceed_the_budget(settings):
    settings.DDS_KDF_MEMORY_BUDGET_MIB = 1
    settings.DDS_KDF_QUEUE = 64
    budget, lock = MemoryBudget(), threading.Lock()
    running, peak = [0], [0]

    def run():
        with budget.slot(400):  # two of these fit in 1 MiB, three do not
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            time.sleep(0.02)
            with lock:
                running[0] -= 1

    threads = [threading.Thread(target=run) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 2
    assert budget.peak_used == 800 and budget.used_kib == 0 and budget.waiting == 0


def test_a_full_budget_answers_busy_after_the_bounded_wait(settings):
    settings.DDS_KDF_MEMORY_BUDGET_MIB = 1
    settings.DDS_KDF_WAIT_SECONDS = 0.2
    budget, release, held = MemoryBudget(), threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold, args=(budget, 1024, release, held))
    holder.start()
    held.wait(5)
    started = time.monotonic()
    with pytest.raises(KdfBusy) as caught:
        with budget.slot(512):
            pass
    assert 0.15 < time.monotonic() - started < 2
    assert caught.value.status_code == 503 and caught.value.retry_after >= 1
    release.set()
    holder.join()
    with budget.slot(512):  # free again
        assert budget.used_kib == 512


def test_a_full_queue_answers_busy_at_once(settings):
    settings.DDS_KDF_MEMORY_BUDGET_MIB = 1
    settings.DDS_KDF_QUEUE = 0
    settings.DDS_KDF_WAIT_SECONDS = 30
    budget, release, held = MemoryBudget(), threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold, args=(budget, 1024, release, held))
    holder.start()
    held.wait(5)
    started = time.monotonic()
    with pytest.raises(KdfBusy):
        with budget.slot(1):
            pass
    assert time.monotonic() - started < 5  # at once, not after the 30 s wait
    release.set()
    holder.join()
    assert budget.refused == 1


def test_a_run_costlier_than_the_budget_gets_it_alone(settings):
    settings.DDS_KDF_MEMORY_BUDGET_MIB = 1
    budget = MemoryBudget()
    with budget.slot(10 * 1024):  # an old user's 10 MiB parameters
        assert budget.used_kib == 1024


def test_nested_runs_of_one_thread_take_one_share(settings):
    settings.DDS_KDF_MEMORY_BUDGET_MIB = 1
    settings.DDS_KDF_WAIT_SECONDS = 0.1
    budget = MemoryBudget()
    with budget.slot(1024), budget.slot(1024):  # a rehash right after a check
        assert budget.used_kib == 1024


@pytest.mark.django_db
def test_login_gets_503_with_retry_after_while_the_budget_is_taken(settings):
    from keys.tests.helpers import keyed_user

    user, password, _ = keyed_user()
    with _budget_taken(settings):
        r = APIClient().post("/api/v1/auth/login",
                             {"username": user.username, "password": password},
                             format="json")
    assert r.status_code == 503, r.content
    assert int(r["Retry-After"]) >= 1
    assert r.json()["code"] == "busy"
    r = APIClient().post("/api/v1/auth/login",
                         {"username": user.username, "password": password}, format="json")
    assert r.status_code == 200, r.content


def test_kdf_slot_uses_the_process_budget(settings):
    settings.DDS_KDF_MEMORY_BUDGET_MIB = 4
    with kdf_slot(1024):
        assert BUDGET.used_kib == 1024
    assert BUDGET.used_kib == 0


@pytest.mark.django_db
def test_portal_login_gets_a_503_page_with_retry_after(settings):
    from accounts.tests.helpers import PortalClient
    from keys.tests.helpers import keyed_user

    user, password, _ = keyed_user()
    with _budget_taken(settings):
        r = PortalClient().post("/accounts/login/", {"username": user.username,
                                                     "password": password})
    assert r.status_code == 503 and int(r["Retry-After"]) >= 1
    assert b"busy" in r.content


def test_kdf_slot_is_the_queue_depth_gauge():
    from core.kdf_limit import kdf_slot
    from core.metrics import KDF_QUEUE

    before = KDF_QUEUE._value.get()
    with kdf_slot(1024):
        assert KDF_QUEUE._value.get() == before + 1
        with kdf_slot(1024):  # nested in the same thread: not counted twice
            assert KDF_QUEUE._value.get() == before + 1
    assert KDF_QUEUE._value.get() == before
