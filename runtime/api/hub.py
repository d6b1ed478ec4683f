"""WebSocket fan-out: per-client filters, and a queue that keeps only the newest per twin.

A slow client never slows the others nor the feed: while it has not taken its messages, a
newer state or telemetry of the same twin replaces the one waiting (and counts as dropped).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

import orjson

from .labindex import LabIndex, under
from .live import ALERT, STATE, STATUS, TELEMETRY, LiveFeed
from .views import stored_values

log = logging.getLogger(__name__)

KINDS = (STATE, TELEMETRY, ALERT, STATUS)
TELEMETRY_LINGER_S = 30.0  # keep listening this long after the last live view went away


def telemetry_message(twin: str, path: str, doc: dict[str, Any]) -> dict[str, Any]:
    return {"type": TELEMETRY, "twin": twin, "uns_path": path, "ts": doc.get("ts"),
            "seq": doc.get("seq"), "values": doc.get("values")}


def state_message(twin: str, path: str, doc: dict[str, Any]) -> dict[str, Any]:
    return {**doc, "type": STATE, "twin": twin, "uns_path": path}


class Subscriber:
    """One WebSocket client: what it wants and what waits for it, coalesced.

    Args:
        prefixes: UNS path prefixes (empty: everything).
        kinds: message kinds wanted (state, telemetry, alert, status).
        max_pending: past this many waiting messages the oldest is dropped.
    """

    def __init__(self, prefixes: Iterable[str] = (), kinds: Iterable[str] = KINDS,
                 max_pending: int = 5000) -> None:
        self.prefixes: tuple[str, ...] = ()
        self.kinds: frozenset[str] = frozenset()
        self.set_filter(prefixes, kinds)
        self.max_pending = max_pending
        self.pending: dict[tuple[str, str], dict[str, Any]] = {}
        self.wake = asyncio.Event()
        self.dropped = 0
        self.sent = 0

    def set_filter(self, prefixes: Iterable[str], kinds: Iterable[str]) -> None:
        self.prefixes = tuple(p.strip("/") for p in prefixes if p.strip("/"))
        self.kinds = frozenset(k for k in kinds if k in KINDS)

    def wants(self, kind: str, path: str) -> bool:
        if kind not in self.kinds:
            return False
        return not self.prefixes or any(under(path, p) for p in self.prefixes)

    def offer(self, kind: str, key: str, message: dict[str, Any]) -> None:
        """Queue a message; an older one with the same (kind, key) is replaced."""
        slot = (kind, key)
        pending = self.pending
        if slot in pending:
            del pending[slot]  # re-inserted at the end: the order stays oldest first
            self.dropped += 1
        elif len(pending) >= self.max_pending:
            del pending[next(iter(pending))]
            self.dropped += 1
        pending[slot] = message
        self.wake.set()

    def take(self) -> list[dict[str, Any]]:
        items = list(self.pending.values())
        self.pending.clear()
        self.wake.clear()
        self.sent += len(items)
        return items


class Hub:
    """Moves what the feed heard to every subscriber that wants it, every `flush_s`."""

    def __init__(self, feed: LiveFeed, index: LabIndex, flush_s: float = 0.1,
                 linger_s: float = TELEMETRY_LINGER_S) -> None:
        self.feed = feed
        self.index = index
        self.flush_s = flush_s
        self.linger_s = linger_s
        self.subscribers: set[Subscriber] = set()
        self.pumped = 0
        self._task: asyncio.Task[None] | None = None
        self._unwatched_since: float | None = None

    def add(self, subscriber: Subscriber) -> None:
        self.subscribers.add(subscriber)
        self.watch()

    def remove(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)
        self.watch()

    def watch(self) -> None:
        """Listen to telemetry while a subscriber wants it; stop `linger_s` after the last."""
        if any(TELEMETRY in s.kinds for s in self.subscribers):
            self._unwatched_since = None
            self.feed.listen_to_telemetry(True)
        elif self.feed.telemetry_live and self._unwatched_since is None:
            self._unwatched_since = time.monotonic()

    @property
    def dropped(self) -> int:
        return sum(s.dropped for s in self.subscribers)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="ws-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_s)
            try:
                self.pump()
            except Exception:  # one bad message must not end the live stream
                log.exception("ws hub: pump failed")
            since = self._unwatched_since
            if since is not None and time.monotonic() - since > self.linger_s:
                self._unwatched_since = None
                await asyncio.to_thread(self.feed.listen_to_telemetry, False)

    def pump(self) -> None:
        """Dispatch everything drained from the feed (also drains when nobody listens)."""
        events, telemetry = self.feed.drain()
        subs = self.subscribers
        if not subs:
            return
        path_of = self.index.path_of
        for kind, twin, doc in events:
            path = path_of(twin)
            if kind == STATE:
                message, key = state_message(twin, path, doc), twin
            elif kind == ALERT:
                message = {**doc, "type": ALERT, "twin": twin, "uns_path": path}
                key = f"{doc.get('id', twin)}/{doc.get('event', '')}"  # never coalesced away
            else:
                message, key = {"type": STATUS, "twin": twin, "uns_path": path,
                                "status": doc.get("state")}, twin
            self.publish(kind, key, path, message)
        for twin, raw in telemetry.items():
            path = path_of(twin)
            wanting = [s for s in subs if s.wants(TELEMETRY, path)]
            if not wanting:
                continue
            try:
                doc = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if type(doc) is not dict:
                continue
            message = telemetry_message(twin, path, doc)
            for sub in wanting:
                sub.offer(TELEMETRY, twin, message)
        self.pumped += len(events) + len(telemetry)

    def publish(self, kind: str, key: str, path: str, message: dict[str, Any]) -> None:
        """Offer one message to every subscriber that wants it (also API-made events)."""
        for sub in self.subscribers:
            if sub.wants(kind, path):
                sub.offer(kind, key, message)

    def snapshot(self, subscriber: Subscriber,
                 stored: dict[str, list[dict[str, Any]]] | None = None) -> list[dict[str, Any]]:
        """Current state and newest telemetry of the twins a subscriber wants; `stored` (rows
        of storage's latest values by twin) stands in for telemetry not heard yet."""
        out: list[dict[str, Any]] = []
        for info in self.index.twins.values():
            path = info.uns_path
            state = self.feed.states.get(info.id)
            if state is not None and subscriber.wants(STATE, path):
                out.append(state_message(info.id, path, state))
            if subscriber.wants(TELEMETRY, path):
                doc = self.feed.telemetry(info.id)
                if doc is None and stored and stored.get(info.id):
                    values, stamps = stored_values(info, stored[info.id])
                    ts = max((t for t in stamps.values() if t is not None), default=None)
                    doc = {"ts": ts, "seq": None, "values": values}
                if doc is not None:
                    out.append(telemetry_message(info.id, path, doc))
        return out
