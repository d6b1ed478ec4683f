"""The fault control channel of the local provider: one request file per device in run/faults/.

A request is JSON {"id": str, "fault": kind, "args": {...}, "ts": epoch s}. It is the device's
desired fault, not an event: an emulator that (re)starts applies what is there, and a request is
applied once per id. `request_fault()` writes run/faults/<device>.json atomically; every emulator
process polls the folder (every 0.2 s) and applies the requests for its own devices, then reports
what it applied in run/emulator/<name>.json, which is how `dtnlab fault` knows it took effect.

Nodes that share no folder with the CLI (containerlab) take the same faults over MQTT as the
`fault` command on the device's own command topic (see commands.py), acked like any command.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .faults import FAULT_KINDS

log = logging.getLogger(__name__)

FAULTS_DIR = Path("run/faults")
STATUS_DIR = Path("run/emulator")
STALE_SPIKE_S = 30.0  # a spike requested this long ago is history, not a wish


def fault_request(kind: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault {kind!r}; faults are {', '.join(FAULT_KINDS)}")
    return {"id": uuid.uuid4().hex[:12], "fault": kind, "args": args or {}, "ts": time.time()}


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def request_fault(lab_dir: Path, device_id: str, kind: str,
                  args: dict[str, Any] | None = None) -> dict[str, Any]:
    """Ask the emulators to apply a fault to a device (file channel); return the request."""
    request = fault_request(kind, args)
    write_atomic(lab_dir / FAULTS_DIR / f"{device_id}.json", json.dumps(request))
    return request


def applied_faults(lab_dir: Path) -> dict[str, dict[str, Any]]:
    """What every emulator process reports it applied: device -> {id, fault, result}."""
    applied: dict[str, dict[str, Any]] = {}
    for path in sorted((lab_dir / STATUS_DIR).glob("*.json")):
        try:
            applied.update(json.loads(path.read_text()).get("faults", {}))
        except (OSError, ValueError):
            continue  # being replaced right now, or a crashed writer's leftover
    return applied


Apply = Callable[[str, str, dict[str, Any], str], str]  # device, kind, args, id -> result


@dataclass
class FaultInbox:
    """Applies each request once; `apply` returns "applied" or the reason it could not."""

    apply: Apply
    owned: set[str]
    results: dict[str, dict[str, Any]] = field(default_factory=dict)

    def offer(self, device_id: str, request: dict[str, Any]) -> bool:
        if device_id not in self.owned:
            return False
        request_id = str(request.get("id", ""))
        if self.results.get(device_id, {}).get("id") == request_id:
            return False
        kind = str(request.get("fault", ""))
        fresh = time.time() - float(request.get("ts", 0)) < STALE_SPIKE_S
        if kind == "spike" and not fresh and device_id not in self.results:
            result = "skipped: stale spike"
        else:
            result = self.apply(device_id, kind, dict(request.get("args") or {}), request_id)
        self.results[device_id] = {"id": request_id, "fault": kind, "result": result,
                                   "ts": time.time()}
        return True


class FaultFolderWatcher:
    """Polls run/faults/ for new or replaced request files (cheap: one scandir per poll)."""

    def __init__(self, lab_dir: Path, inbox: FaultInbox) -> None:
        self.folder = lab_dir / FAULTS_DIR
        self.inbox = inbox
        self._seen: dict[str, tuple[int, int]] = {}

    def poll(self) -> bool:
        """Apply new requests; return whether anything was applied."""
        try:
            entries = {e.name: e for e in os.scandir(self.folder)
                       if e.name.endswith(".json") and not e.name.startswith(".")}
        except FileNotFoundError:
            return False
        changed = False
        for name, entry in entries.items():
            stat = entry.stat()
            key = (stat.st_ino, stat.st_mtime_ns)
            if self._seen.get(name) == key:
                continue
            self._seen[name] = key
            try:
                request = json.loads(Path(entry.path).read_text())
            except (OSError, ValueError) as exc:
                log.warning("ignoring fault request %s: %s", entry.path, exc)
                continue
            changed |= self.inbox.offer(name.removesuffix(".json"), request)
        return changed
