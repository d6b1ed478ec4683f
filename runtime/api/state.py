"""Everything a request handler needs, built once per app: lab, users, tokens, store, feed."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psycopg

from ..engine.status import StatusFile
from ..labfiles import LabFiles
from ..storage import Store, StoreUnavailable
from .audit import AuditLog
from .errors import ApiError
from .guard import Limits
from .hub import Hub
from .labindex import LabIndex
from .live import ALERT, LiveFeed
from .querypool import QueryPool
from .settings import Settings
from .tokens import TokenService
from .users import UserBook

log = logging.getLogger(__name__)

T = TypeVar("T")
ENGINE_STATUS = Path("engine/status.json")
DB_ERRORS = (sqlite3.Error, psycopg.Error, StoreUnavailable, OSError)
STATUS_CACHE_S = 0.5


@dataclass
class ApiState:
    settings: Settings
    lab: LabFiles
    index: LabIndex
    users: UserBook
    tokens: TokenService
    store: Store
    feed: LiveFeed
    hub: Hub
    audit: AuditLog
    limits: Limits
    queries: QueryPool
    started_at: float = field(default_factory=time.time)
    _status: tuple[float, dict[str, Any] | None] = (0.0, None)

    def db(self, query: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a storage query; a database that cannot answer becomes a 503."""
        try:
            return self.queries.run(query, *args, **kwargs)
        except DB_ERRORS as exc:
            log.warning("storage query %s failed: %s", getattr(query, "__name__", query), exc)
            raise ApiError(503, "the database cannot answer right now",
                           code="database_unavailable") from None

    async def adb(self, query: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`db` for coroutines: the query runs on the pool while the event loop goes on."""
        try:
            return await self.queries.run_async(query, *args, **kwargs)
        except DB_ERRORS as exc:
            log.warning("storage query %s failed: %s", getattr(query, "__name__", query), exc)
            raise ApiError(503, "the database cannot answer right now",
                           code="database_unavailable") from None

    def notify_ack(self, alert_id: str, device: str, by: str, at: float) -> None:
        """Tell WebSocket clients an alert was acknowledged."""
        self.feed.inject(ALERT, device, {"id": alert_id, "event": "acked", "device": device,
                                         "acked_by": by, "acked_at": at})

    def engine_status(self) -> dict[str, Any] | None:
        """run/engine/status.json (the engine rewrites it every second), cached briefly."""
        now = time.monotonic()
        at, doc = self._status
        if now - at >= STATUS_CACHE_S:
            doc = StatusFile(self.lab.run_dir / ENGINE_STATUS).read()
            self._status = (now, doc)
        return doc

    def engine_running(self, doc: dict[str, Any] | None) -> bool:
        return doc is not None and time.time() - float(doc.get("ts", 0)) <= (
            self.settings.engine_stale_s)
