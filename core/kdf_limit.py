"""Memory-hard hashing as a bounded resource of the process.

Every Argon2id run (a user's KEK, a password hash) needs its memory cost in RAM for as
long as it runs; unbounded, fifty concurrent logins need fifty times that and the pod is
OOM-killed (issue 13). So each run first takes its memory cost from a per-process budget
(``DDS_KDF_MEMORY_BUDGET_MIB``), waiting in a FIFO queue of at most ``DDS_KDF_QUEUE``
requests for at most ``DDS_KDF_WAIT_SECONDS``; beyond either bound the request is refused
at once with 503 and ``Retry-After`` (``KdfBusy``), which a client retries, instead of the
whole pod failing. docs/operations-load.md has the memory arithmetic.

A run that needs more than the whole budget (an old user's costlier parameters) waits
until it has the budget to itself, so one such run at most is in flight.
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from collections.abc import Iterator

from django.conf import settings
from django.contrib.auth.hashers import get_hasher

from core import metrics
from core.errors import DDSError


class KdfBusy(DDSError):
    """Too many logins at once on this server process: try again in a few seconds."""

    status_code = 503
    code = "busy"

    def __init__(self, wait: int):
        super().__init__(f"The server is busy with other logins; try again in {wait} "
                         "seconds.", retry_after=wait)


class MemoryBudget:
    """A FIFO weighted semaphore over KiB of Argon2 memory."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._used = 0
        self._queue: collections.deque[object] = collections.deque()
        self._local = threading.local()
        self.peak_used = 0
        self.refused = 0

    @property
    def used_kib(self) -> int:
        return self._used

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def _limits(self) -> tuple[int, int, float]:
        return (max(1, int(getattr(settings, "DDS_KDF_MEMORY_BUDGET_MIB", 512))) * 1024,
                max(0, int(getattr(settings, "DDS_KDF_QUEUE", 16))),
                float(getattr(settings, "DDS_KDF_WAIT_SECONDS", 30.0)))

    @contextlib.contextmanager
    def slot(self, memory_kib: int) -> Iterator[None]:
        if getattr(self._local, "held", False):
            # Nested in a run of this thread (a rehash right after a check): the memory
            # of the outer run is free again by then, so it needs no second share.
            yield
            return
        budget, queue_max, wait_max = self._limits()
        weight = min(max(int(memory_kib), 1), budget)
        ticket = object()
        with self._cond:
            if len(self._queue) >= queue_max and (self._queue or self._used + weight > budget):
                self.refused += 1
                raise KdfBusy(self._retry_after(wait_max))
            self._queue.append(ticket)
            deadline = time.monotonic() + wait_max
            try:
                while self._queue[0] is not ticket or self._used + weight > budget:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        self.refused += 1
                        raise KdfBusy(self._retry_after(wait_max))
                    self._cond.wait(left)
            finally:
                self._queue.remove(ticket)
                self._cond.notify_all()
            self._used += weight
            self.peak_used = max(self.peak_used, self._used)
        self._local.held = True
        try:
            yield
        finally:
            self._local.held = False
            with self._cond:
                self._used -= weight
                self._cond.notify_all()

    @staticmethod
    def _retry_after(wait_max: float) -> int:
        return max(1, min(30, int(wait_max / 4) or 1))


#: The process's budget (gunicorn workers are processes: each has its own).
BUDGET = MemoryBudget()


@contextlib.contextmanager
def kdf_slot(memory_kib: int) -> Iterator[None]:
    """``with kdf_slot(params.memory_cost_kib): derive(...)`` (waiting and running runs
    are the ``dds_kdf_queue_depth`` gauge; a nested run is not counted twice)."""
    if getattr(BUDGET._local, "held", False):
        with BUDGET.slot(memory_kib):
            yield
        return
    with metrics.kdf_queued(), BUDGET.slot(memory_kib):
        yield


def password_hasher_memory_kib() -> int:
    """Memory of the configured password hasher (Argon2's memory_cost), else nothing."""
    return int(getattr(get_hasher(), "memory_cost", 0) or 0)
