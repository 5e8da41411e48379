"""Storage calls for many objects at once, in parallel threads."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from core.errors import DDSError

_In = TypeVar("_In")
_Out = TypeVar("_Out")

_pool: ThreadPoolExecutor | None = None
#: Threads per process: storage round trips wait on the network, not the CPU.
POOL_SIZE = 16


def storage_map(fn: Callable[[_In], _Out], items: Sequence[_In]) -> list[_Out | DDSError]:
    """``fn`` over ``items``, storage calls in parallel (boto3 clients are thread-safe);
    per item its result or the domain error it raised."""
    global _pool

    def one(item: _In) -> _Out | DDSError:
        try:
            return fn(item)
        except DDSError as exc:
            return exc

    if len(items) <= 1:
        return [one(i) for i in items]
    if _pool is None:
        _pool = ThreadPoolExecutor(POOL_SIZE, thread_name_prefix="dds-storage")
    return list(_pool.map(one, items))
