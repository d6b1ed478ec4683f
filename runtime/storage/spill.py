"""Spill files: batches the database could not take yet, kept on disk in arrival order."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import orjson

from .base import Batch

log = logging.getLogger(__name__)


class SpillFiles:
    """One append-only JSON-lines file per spill (one batch a line), renamed into place when
    complete, replayed oldest first and deleted once the database has the rows. Batches the
    database refused go to rejected-*.jsonl, kept for a person to look at."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        existing = self.files()
        self._seq = int(existing[-1].stem) + 1 if existing else 1

    def files(self) -> list[Path]:
        return sorted(p for p in self.folder.glob("*.jsonl") if p.stem.isdigit())

    def write(self, batches: list[Batch]) -> Path:
        path = self.folder / f"{self._seq:010d}.jsonl"
        self._seq += 1
        return self._write(path, batches)

    def write_rejected(self, batch: Batch) -> Path:
        """Keep a batch the database refused, beside the spill files but never replayed."""
        return self._write(self.folder / f"rejected-{time.time_ns()}.jsonl", [batch])

    @staticmethod
    def _write(path: Path, batches: list[Batch]) -> Path:
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as handle:
            for b in batches:
                handle.write(orjson.dumps({"t": b.telemetry, "x": b.transitions, "a": b.alerts}))
                handle.write(b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
        return path

    @staticmethod
    def read(path: Path) -> Batch:
        batch = Batch()
        with path.open("rb") as handle:
            for line in handle:
                if not line.strip():
                    continue
                doc = orjson.loads(line)
                batch.telemetry += [(t[0], t[1], t[2]) for t in doc["t"]]
                batch.transitions += [(x[0], x[1], x[2], x[3], x[4]) for x in doc["x"]]
                batch.alerts += doc["a"]
        return batch

    @staticmethod
    def remove(path: Path) -> None:
        path.unlink(missing_ok=True)
