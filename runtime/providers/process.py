"""PID files that identify a process for sure (pid + kernel start time), and stopping by them."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

PIDS_DIR = Path("run/pids")


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] == "Z":  # a zombie has exited; only its parent's wait() is missing
        return None
    return int(fields[19])


@dataclass(frozen=True)
class PidFile:
    """Who a node is: a pid is reused by the kernel, pid + start time is not."""

    node: str
    pid: int
    start_ticks: int
    argv: tuple[str, ...]
    started: float

    @classmethod
    def of(cls, node: str, pid: int, argv: list[str]) -> PidFile:
        return cls(node, pid, start_ticks(pid) or 0, tuple(argv), time.time())

    def alive(self) -> bool:
        """Is this still the process that was started (not a new one with a reused pid)?"""
        return start_ticks(self.pid) == self.start_ticks

    def write(self, lab_dir: Path) -> None:
        path = pid_path(lab_dir, self.node)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        tmp.replace(path)


def pid_path(lab_dir: Path, node: str) -> Path:
    return lab_dir / PIDS_DIR / f"{node}.pid"


def read_pid_file(path: Path) -> PidFile | None:
    try:
        raw = json.loads(path.read_text())
        return PidFile(raw["node"], int(raw["pid"]), int(raw["start_ticks"]),
                       tuple(raw["argv"]), float(raw["started"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def pid_files(lab_dir: Path) -> dict[str, PidFile]:
    """Every node's PID file, by node name."""
    found = {}
    for path in sorted((lab_dir / PIDS_DIR).glob("*.pid")):
        entry = read_pid_file(path)
        if entry is not None:
            found[entry.node] = entry
    return found


def _gone(entry: PidFile, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while entry.alive():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def terminate(entry: PidFile, timeout: float = 10.0) -> bool:
    """SIGTERM the process if it is still the one recorded, SIGKILL after `timeout`.

    Returns:
        True when a live process was stopped, False when it was already gone.
    """
    if not entry.alive():
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(entry.pid, signal.SIGTERM)
    if not _gone(entry, timeout):
        log.warning("%s (pid %d) ignored SIGTERM for %.0fs: SIGKILL", entry.node, entry.pid,
                    timeout)
        with contextlib.suppress(ProcessLookupError):
            os.kill(entry.pid, signal.SIGKILL)
        _gone(entry, 5.0)
    return True
