"""The storage writer thread: batches writes, rides out database outages without losing rows."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from .base import Batch, Store, StoreUnavailable
from .spill import SpillFiles

log = logging.getLogger(__name__)


class StorageWriter:
    """Takes batches from the engine (a non-blocking `put`) and writes them in a thread.

    While the database is down, batches wait in memory; past `memory_limit` rows the oldest go
    to spill files in `spill_dir`. When it is back, spill files are written first, then memory,
    so rows arrive in order. Delivery is at least once: a batch whose commit was not confirmed
    is written again.
    """

    def __init__(self, store: Store, spill_dir: Path, *, flush_interval: float = 0.02,
                 max_batch: int = 20_000, memory_limit: int = 200_000,
                 retry_min: float = 0.5, retry_max: float = 5.0) -> None:
        self.store = store
        self.spill = SpillFiles(spill_dir)
        self.flush_interval = flush_interval
        self.max_batch = max_batch
        self.memory_limit = memory_limit
        self.retry_min, self.retry_max = retry_min, retry_max
        self._inbox: deque[Batch] = deque()
        self._memory: deque[Batch] = deque()
        self._memory_rows = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.db_up = False
        self.last_error: str | None = None
        self.written_msgs = self.written_batches = self.write_errors = 0
        self.spilled_rows = self.rejected_rows = 0
        self.latency_sink: list[float] | None = None  # publish -> stored, for benchmarks
        self._backoff = retry_min
        self._next_try = 0.0

    # -- engine side --------------------------------------------------------------------------

    def put(self, batch: Batch) -> None:
        """Queue a batch; never blocks."""
        if len(batch):
            self._inbox.append(batch)

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self._try_connect()
        self._thread = threading.Thread(target=self._run, name="storage-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is pending (or spill it when the database is down), then stop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.store.close()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is written; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._inbox and not self._memory and not self.spill.files():
                return True
            time.sleep(0.01)
        return False

    # -- writer thread ------------------------------------------------------------------------

    def _try_connect(self) -> None:
        try:
            self.store.connect()
        except StoreUnavailable as exc:
            self._down(exc)
            return
        if not self.db_up:
            log.info("storage: %s connected", self.store.kind)
        self.db_up, self._backoff, self.last_error = True, self.retry_min, None

    def _down(self, exc: Exception) -> None:
        if self.db_up or self.last_error is None:
            log.warning("storage: %s unavailable (%s); buffering, retry in %.1fs",
                        self.store.kind, exc, self._backoff)
        self.db_up = False
        self.last_error = str(exc)
        self._next_try = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, self.retry_max)

    def _run(self) -> None:
        while True:
            stopping = self._stop.is_set()
            self._drain_inbox()
            if not self.db_up and time.monotonic() >= self._next_try:
                self._try_connect()
            worked = False
            if self.db_up:
                worked = self._write_spilled() and self._write_memory()
            if self._memory_rows > self.memory_limit:  # down, or slower than ingest
                self._spill(self._memory_rows - self.memory_limit // 2)
            if stopping and not self._inbox:
                if self._memory and not self.db_up:
                    self._spill(self._memory_rows)
                if not self._memory or not self.db_up:
                    return
            if not worked:
                time.sleep(self.flush_interval)

    def _drain_inbox(self) -> None:
        inbox, memory = self._inbox, self._memory
        while inbox:
            batch = inbox[0]
            memory.append(batch)  # appended before popped: flush() always sees it somewhere
            inbox.popleft()
            self._memory_rows += len(batch)

    def _write(self, batch: Batch) -> bool:
        try:
            self.store.write(batch)
        except StoreUnavailable as exc:
            self.write_errors += 1
            self._down(exc)
            return False
        except Exception as exc:  # BatchRejected, or a bug: never stall storage on one batch
            path = self.spill.write_rejected(batch)
            self.rejected_rows += len(batch)
            log.error("storage: %s refused a batch of %d rows (%s); kept in %s",
                      self.store.kind, len(batch), exc, path)
            return True
        self.written_batches += 1
        self.written_msgs += len(batch.telemetry)
        sink = self.latency_sink
        if sink is not None:
            now = time.time()
            sink.extend(now - m[0] for m in batch.telemetry)
        return True

    def _write_spilled(self) -> bool:
        for path in self.spill.files():
            if not self._write(self.spill.read(path)):
                return False
            self.spill.remove(path)
            log.info("storage: replayed %s", path.name)
        return True

    def _write_memory(self) -> bool:
        """Write up to max_batch rows from memory; True when something was written."""
        if not self._memory:
            return False
        taken: list[Batch] = []
        merged = Batch()
        rows = 0
        for b in self._memory:
            if taken and rows + len(b) > self.max_batch:
                break
            taken.append(b)
            merged.extend(b)
            rows += len(b)
        if not self._write(merged):
            return False
        for _ in taken:
            self._memory.popleft()
        self._memory_rows -= rows
        return True

    def _spill(self, rows: int) -> None:
        chunk: list[Batch] = []
        moved = 0
        while self._memory and moved < rows:
            b = self._memory.popleft()
            chunk.append(b)
            moved += len(b)
        if chunk:
            path = self.spill.write(chunk)
            self._memory_rows -= moved
            self.spilled_rows += moved
            log.warning("storage: spilled %d rows to %s", moved, path)

    def stats(self) -> dict[str, Any]:
        return {"backend": self.store.kind, "db_up": self.db_up, "last_error": self.last_error,
                "written_msgs": self.written_msgs, "written_batches": self.written_batches,
                "write_errors": self.write_errors,
                "pending_rows": self._memory_rows + sum(len(b) for b in list(self._inbox)),
                "spilled_rows": self.spilled_rows, "spill_files": len(self.spill.files()),
                "rejected_rows": self.rejected_rows}
