"""Storage queries on a few threads of the API's own, so their connections can be closed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ..storage import Store

log = logging.getLogger(__name__)

T = TypeVar("T")


class QueryPool:
    """Runs a store's queries on `workers` threads.

    A store keeps one reader connection per thread that queries it. FastAPI's thread pool
    never tells us when its threads end, so those connections would be left to the garbage
    collector; on our own threads `close` can close each one where it was opened.
    """

    def __init__(self, store: Store, workers: int = 4) -> None:
        self.store = store
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:  # (re)opened on first use, so an app can start again
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="api-db")
            return self._pool

    def run(self, query: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return self._executor().submit(query, *args, **kwargs).result()

    async def run_async(self, query: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """The same from the event loop, without blocking it."""
        return await asyncio.wrap_future(self._executor().submit(query, *args, **kwargs))

    def close(self) -> None:
        """Close every worker's reader connection, then the workers."""
        barrier = threading.Barrier(self.workers)

        def close_mine() -> None:
            # The stores keep readers in a threading.local named _local (storage/*.py).
            local = getattr(self.store, "_local", None)
            conn = getattr(local, "conn", None)
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
                local.conn = None  # type: ignore[union-attr]
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(5.0)  # one task per thread: each waits until all have started

        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            for future in [pool.submit(close_mine) for _ in range(self.workers)]:
                future.result()
            pool.shutdown(wait=True)
        self.store.close()
