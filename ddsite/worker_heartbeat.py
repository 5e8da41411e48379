"""A Celery bootstep that touches a file while the worker runs: the worker Deployment's
liveness probe (``entrypoint.sh probe-worker``) restarts a worker whose heartbeat stops,
without a broker round trip per probe (``celery inspect ping`` would need one)."""

from __future__ import annotations

import os
from pathlib import Path

from celery import bootsteps


class HeartbeatFile(bootsteps.StartStopStep):
    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.path = Path(os.environ.get("DDS_WORKER_HEARTBEAT_FILE",
                                        "/tmp/dds-worker-heartbeat"))  # noqa: S108
        self.interval = float(os.environ.get("DDS_WORKER_HEARTBEAT_SECONDS", "30"))
        self.timer_ref = None

    def _beat(self):
        self.path.touch()

    def start(self, worker):
        self._beat()
        self.timer_ref = worker.timer.call_repeatedly(self.interval, self._beat)

    def stop(self, worker):
        if self.timer_ref is not None:
            self.timer_ref.cancel()
        self.path.unlink(missing_ok=True)
