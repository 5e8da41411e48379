"""The seam through which services hand work to Celery tasks.

Tasks import services, never the reverse: a service names the task it wants run and this
module looks it up in the Celery app's registry (``ddsite.celery`` discovers every app's
``tasks`` module). ``after_commit`` queues it only once the caller's transaction commits,
so a worker never sees rows that are not there yet, and nothing is queued for a write
that rolls back. With no broker configured the task runs in-process (eager), as before.
"""

from __future__ import annotations

from typing import Any

from celery import current_app
from django.db import transaction


def enqueue(task_name: str, *args: Any, **kwargs: Any) -> Any:
    """Queue the task registered as ``task_name`` now (outside any transaction)."""
    if task_name not in current_app.tasks:
        # The web process has not imported the apps' task modules yet: discover them
        # (ddsite.celery's autodiscover_tasks) once.
        current_app.loader.import_default_modules()
    return current_app.tasks[task_name].delay(*args, **kwargs)


def after_commit(task_name: str, *args: Any, robust: bool = False, **kwargs: Any) -> None:
    """Queue the task once the current transaction commits (at once outside one).

    ``robust``: a failure to queue (broker down) is logged instead of raised; use it when
    something else re-queues the work (e.g. mail_flush for the outbox).
    """
    def queue() -> None:
        enqueue(task_name, *args, **kwargs)

    queue.__qualname__ = f"enqueue {task_name}"  # what a failure log names
    transaction.on_commit(queue, robust=robust)
