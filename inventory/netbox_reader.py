"""Read many NetBox list queries at once: first pages, then the other pages, on a thread pool."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from .netbox_client import PAGE_SIZE, NetBoxClient, NetBoxObject

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Query:
    """One list query; its objects land in `bucket`, which id-chunked queries share."""

    bucket: str
    endpoint: str
    params: dict[str, Any] = field(default_factory=dict)


# Called when a query has all its pages; returns follow-up queries (e.g. ids learned from it).
OnDone = Callable[[Query, dict[str, list[NetBoxObject]]], list[Query]]


class PagedReader:
    """Runs queries concurrently without a request per object.

    A query's first page tells the total count; its other pages are then requested in parallel
    (offset paging, `ordering=id` so that pages never overlap). All scheduling happens on the
    calling thread, so follow-up queries never wait on a worker that waits on them.
    """

    def __init__(self, client: NetBoxClient, workers: int = 4, page_size: int = PAGE_SIZE) -> None:
        self.client = client
        self.workers = workers
        self.page_size = page_size

    def read(self, queries: list[Query],
             on_done: OnDone | None = None) -> dict[str, list[NetBoxObject]]:
        """Return bucket -> objects (deduplicated by id, sorted by id) for every query run."""
        results: dict[str, dict[object, NetBoxObject]] = defaultdict(dict)
        views: dict[str, list[NetBoxObject]] = {}
        outstanding: dict[int, int] = {}
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="netbox")
        pending: dict[Future[tuple[list[NetBoxObject], int]], tuple[Query, int, int]] = {}

        def submit(query: Query, offset: int, limit: int) -> None:
            params = {**query.params, "ordering": "id"}
            fut = pool.submit(self.client.page, query.endpoint, params, offset, limit)
            pending[fut] = (query, offset, limit)

        def start(query: Query) -> None:
            results.setdefault(query.bucket, {})
            outstanding[id(query)] = 1
            submit(query, 0, self.page_size)

        try:
            for query in queries:
                start(query)
            while pending:
                done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for fut in done:
                    query, offset, limit = pending.pop(fut)
                    items, count = fut.result()
                    bucket = results[query.bucket]
                    for position, obj in enumerate(items):
                        bucket[obj.get("id", (offset, position))] = obj
                    outstanding[id(query)] -= 1
                    if offset == 0 and len(items) < count and items:
                        # The server may cap the page size below ours: page by what it gave.
                        step = len(items)
                        for next_offset in range(step, count, step):
                            submit(query, next_offset, step)
                            outstanding[id(query)] += 1
                    if outstanding[id(query)] == 0 and on_done is not None:
                        views = {k: list(v.values()) for k, v in results.items()}
                        for follow_up in on_done(query, views):
                            start(follow_up)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return {k: sorted(v.values(), key=_by_id) for k, v in results.items()}


def _by_id(obj: NetBoxObject) -> tuple[int, str]:
    value = obj.get("id")
    return (value, "") if isinstance(value, int) else (0, str(value))
