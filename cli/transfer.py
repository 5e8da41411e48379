"""What uploads and downloads share: the storage HTTP client, progress and the summary.

The debug log (``--log-file``, ``-v``) gets a line per storage request (method, host and
path, status, duration; never the presigned URL's query, which holds its signature) and
one per file outcome.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from enum import Enum
from types import TracebackType
from typing import Any, TypeVar

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from cli.errors import Cancelled, LoginRequired
from cli.tls import tls_context

log = logging.getLogger(__name__)
_HTTP11: type[Any] | None
try:  # httpcore's private class: another layout keeps its default read size
    from httpcore._sync.http11 import HTTP11Connection as _HTTP11
except ImportError:  # pragma: no cover - depends on the installed httpcore
    _HTTP11 = None

#: Files smaller than this get no bar of their own: with thousands of small files, a bar
#: per file costs more terminal redraws than the transfer itself (the total still moves).
OWN_BAR_MIN = 8 * 1024 * 1024


class _Recorded(Enum):
    #: Returned by a ``run_files`` work function that recorded its items' outcomes itself.
    RECORDED = "recorded"


RECORDED = _Recorded.RECORDED
#: What a ``run_files`` work function returns: None (done), a reason it was skipped, or
#: RECORDED.
Result = str | _Recorded | None

Item = TypeVar("Item")


def storage_client(threads: int) -> httpx.Client:
    # Presigned URLs carry their own authorisation: this client never sends the API token.
    _larger_reads()
    hooks: dict[str, list[Callable[[Any], None]]] = {}
    if log.isEnabledFor(logging.DEBUG):
        hooks = {"request": [_request_started], "response": [_response_logged]}
    return httpx.Client(timeout=httpx.Timeout(120, connect=15), verify=tls_context(),
                        limits=httpx.Limits(max_connections=threads * 4 + 8,
                                            max_keepalive_connections=threads * 4 + 8),
                        event_hooks=hooks)


_STARTED = "dds_started"  # our key in a request's extensions: when it was sent


def _storage_where(request: httpx.Request) -> str:
    """Where a storage request goes, without the query (a presigned URL's signature)."""
    return f"{request.url.scheme}://{request.url.netloc.decode()}{request.url.path}"


def _request_started(request: httpx.Request) -> None:
    request.extensions[_STARTED] = time.monotonic()


def _response_logged(response: httpx.Response) -> None:
    request = response.request
    started = request.extensions.get(_STARTED)
    took = f" in {(time.monotonic() - started) * 1000:.0f} ms" if started else ""
    log.debug("storage %s %s -> %d%s (request id %s)", request.method,
              _storage_where(request), response.status_code, took,
              response.headers.get("x-amz-request-id", "-"))


def _larger_reads() -> None:
    """Receive in 1 MiB reads instead of httpcore's 64 KiB: a 1 GiB download then costs
    0.46 instead of 0.70 CPU-s in the client (measured against bench/s3sink.py), fewer
    Python iterations per byte. Harmless for small answers (a read returns what is there)."""
    if _HTTP11 is not None and getattr(_HTTP11, "READ_NUM_BYTES", 0) < READ_BYTES:
        _HTTP11.READ_NUM_BYTES = READ_BYTES


READ_BYTES = 1024 * 1024


def backoff(attempt: int) -> None:
    pause = min(0.5 * 2 ** attempt, 8)
    log.debug("retrying in %.1f s (attempt %d failed)", pause, attempt + 1)
    time.sleep(pause)


#: 4xx answers that can pass on their own (busy, throttled, timed out): worth a rerun.
TRANSIENT_4XX = (408, 423, 425, 429)


def permanent(status: int | None) -> bool:
    """A refusal that the same command will meet again (the project is released, the path
    is refused...): a rerun does not help until the cause is fixed."""
    return status is not None and 400 <= status < 500 and status not in TRANSIENT_4XX


@dataclass
class Summary:
    """What happened to each file, for the closing report and the exit code."""

    done: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    #: Names among ``failed`` that were refused for good (see :func:`permanent`).
    refused: set[str] = field(default_factory=set)
    #: Names among ``failed`` that a rerun meets again for a reason on this side: a path
    #: that does not exist (here or in the project), a symbolic link loop, a file that
    #: cannot be read. The summary says to fix them rather than to run the command again.
    unusable: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def ok(self, name: str) -> None:
        log.debug("done: %s", name)
        with self.lock:
            self.done.append(name)

    def skip(self, name: str, why: str) -> None:
        log.debug("skipped: %s: %s", name, why)
        with self.lock:
            self.skipped.append((name, why))

    def fail(self, name: str, why: str, *, status: int | None = None,
             unusable: bool = False) -> None:
        """Record a failed file. ``status``: the server's answer, if it refused it;
        ``unusable``: the path itself is the problem (a rerun will fail the same way)."""
        log.debug("failed: %s: %s (status %s%s)", name, why, status,
                  ", not retryable" if unusable else "")
        with self.lock:
            self.failed.append((name, why))
            if unusable:
                self.unusable.add(name)
            elif permanent(status):
                self.refused.add(name)

    def _hint(self, retry_hint: str) -> str:
        """What to do about the failures: run the command again only when that can help."""
        refused, unusable = len(self.refused), len(self.unusable)
        if len(self.failed) > refused + unusable:
            fix = []
            if refused:
                fix.append(f"{refused} of them were refused by the server")
            if unusable:
                fix.append(f"{unusable} of them {'is a path' if unusable == 1 else 'are paths'}"
                           " that cannot be used as given")
            return (f"To retry: {retry_hint}"
                    + (f" ({' and '.join(fix)}: fix the reason shown first)" if fix else ""))
        if not unusable:
            return ("The server refused them: running the same command again will not help "
                    "until the reason shown is fixed.")
        if not refused:
            return ("Running the same command again will not help: fix the paths shown "
                    "first (each reason says what is wrong with it).")
        return ("Running the same command again will not help until the reasons shown are "
                "fixed (the server refused some files; others are paths that cannot be used "
                "as given).")

    def report(self, console: Console, verb: str, retry_hint: str) -> None:
        for name, why in sorted(self.skipped):
            console.print(f"[yellow]skipped[/] {name}: {why}", highlight=False)
        if self.failed:
            console.print(f"[bold red]{len(self.failed)} file(s) failed[/]; "
                          f"{len(self.done)} {verb}. {self._hint(retry_hint)}",
                          highlight=False)
            for name, why in sorted(self.failed):
                console.print(f"  [red]✗[/] {name}: {why}", highlight=False)
        else:
            console.print(f"[green]{len(self.done)} file(s) {verb}[/]"
                          + (f", {len(self.skipped)} skipped" if self.skipped else "") + ".",
                          highlight=False)


class Bars:
    """Per-file bars plus a total (bytes/s, ETA); does nothing with --silent."""

    def __init__(self, console: Console, total: int, silent: bool, label: str) -> None:
        self.silent = silent
        self._lock = threading.Lock()
        if silent:
            return
        self.progress = Progress(TextColumn("{task.description}", markup=False),
                                 BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                                 TimeRemainingColumn(), console=console, transient=False)
        self.total = self.progress.add_task(label, total=total)

    def __enter__(self) -> Bars:
        if not self.silent:
            self.progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if not self.silent:
            self.progress.stop()

    def file(self, name: str, size: int) -> TaskID | None:
        if self.silent or size < OWN_BAR_MIN:
            return None
        short = name if len(name) <= 40 else "…" + name[-39:]
        return self.progress.add_task(short, total=size)

    def advance(self, task: TaskID | None, n: int) -> None:
        if self.silent or not n:
            return
        if task is not None:
            self.progress.advance(task, n)
        self.progress.advance(self.total, n)

    def finish(self, task: TaskID | None) -> None:
        if not self.silent and task is not None:
            self.progress.remove_task(task)


def run_files(items: Sequence[Item], work: Callable[[Item], Result],
              name: Callable[[Item], str], *, threads: int, summary: Summary,
              cancel: threading.Event, break_on_fail: bool) -> None:
    """Run ``work(item)`` for every item on ``threads`` threads, recording each outcome.

    ``work`` returns None (done), a reason the item was skipped, or ``RECORDED`` (it
    recorded the outcomes itself, e.g. of a batch of files). A failure stops the
    others only with ``break_on_fail``; an ended login stops everything (every other
    request would fail the same way). Ctrl-C sets ``cancel`` and raises ``Cancelled``.
    """
    pool = ThreadPoolExecutor(threads, thread_name_prefix="dds-file")
    futures: dict[Future[Result], Item] = {}
    try:
        futures = {pool.submit(work, it): it for it in items}
        for f in _as_done(futures):
            label = name(futures[f])
            exc = f.exception()
            if exc is None:
                reason = f.result()
                if reason is RECORDED:
                    continue
                if reason:
                    summary.skip(label, reason)
                else:
                    summary.ok(label)
            elif isinstance(exc, Cancelled):
                summary.fail(label, "interrupted")
            elif isinstance(exc, LoginRequired):
                cancel.set()
                raise exc
            else:
                summary.fail(label, getattr(exc, "message", None) or repr(exc),
                             status=getattr(exc, "status", None))
                if break_on_fail:
                    cancel.set()
    except KeyboardInterrupt:
        cancel.set()
        raise Cancelled()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    for f, it in futures.items():
        if f.cancelled():
            summary.fail(name(it), "not started (stopped after an earlier failure)")


def _as_done(futures: dict[Future[Result], Any]) -> Iterator[Future[Result]]:
    """``as_completed`` that wakes up regularly, so Ctrl-C reaches the main thread."""
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=0.5, return_when="FIRST_COMPLETED")
        yield from done
