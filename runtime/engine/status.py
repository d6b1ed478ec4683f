"""The engine status snapshot, written atomically to run/engine/status.json every second."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)


class StatusFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._last: tuple[float, int, int] | None = None
        self._rates = {"received_per_s": 0.0, "valid_per_s": 0.0}

    def rates(self, now: float, received: int, valid: int) -> dict[str, float]:
        """Totals and rates since the previous call (at most once a second changes them)."""
        last = self._last
        if last is None:
            self._last = (now, received, valid)
        elif now - last[0] >= 0.5:
            dt = now - last[0]
            self._rates = {"received_per_s": round((received - last[1]) / dt, 1),
                           "valid_per_s": round((valid - last[2]) / dt, 1)}
            self._last = (now, received, valid)
        return {"received": received, "valid": valid, **self._rates}

    def read(self) -> dict[str, Any] | None:
        try:
            doc: dict[str, Any] = orjson.loads(self.path.read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError):
            return None
        return doc

    def write(self, snapshot: dict[str, Any]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(orjson.dumps(snapshot, option=orjson.OPT_INDENT_2))
            tmp.replace(self.path)
        except OSError as exc:
            log.warning("cannot write %s: %s", self.path, exc)
