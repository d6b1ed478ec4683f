"""Tell a running lab its files changed: restage and SIGHUP the broker, SIGHUP the other nodes.

Mosquitto re-reads its password and ACL files on SIGHUP and keeps every connection whose
credentials still hold (a removed device's is dropped). The engine, the emulators and the API
reload on SIGHUP and apply a reconcile plan (runtime/reconcile.py). A node that does not catch
SIGHUP (an older build) would die of it, so it is restarted instead: SIGTERM, and the
supervisor starts it again from the new files.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path

from .broker import BrokerAccount, broker_account, stage_broker
from .process import PidFile, pid_files

log = logging.getLogger(__name__)

BROKER = "broker"
PROVIDER_FILE = Path("run/provider.json")
Stage = Callable[[Path, BrokerAccount | None], Path]
# Nodes that reload their lab files; anything else (supervisor, netns helpers) is left alone.
RELOADING = ("engine", "api")
RELOADING_PREFIXES = ("emulator",)


def catches(pid: int, signum: int) -> bool:
    """Whether the process installed a handler for `signum` (SigCgt in /proc/<pid>/status)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    except (OSError, ValueError):
        return False
    return False


def running_nodes(lab_dir: Path) -> dict[str, PidFile]:
    """The lab's nodes whose recorded process is alive."""
    return {name: entry for name, entry in pid_files(lab_dir).items() if entry.alive()}


def _reloads(name: str) -> bool:
    return name in RELOADING or name.startswith(RELOADING_PREFIXES)


def _signal(entry: PidFile, signum: int) -> bool:
    with contextlib.suppress(ProcessLookupError):
        os.kill(entry.pid, signum)
        return True
    return False


def stage_for(lab_dir: Path) -> Stage:
    """How the provider the lab runs under stages the broker's files (run/provider.json)."""
    try:
        provider = json.loads((lab_dir / PROVIDER_FILE).read_text()).get("provider")
    except (OSError, ValueError, AttributeError):
        provider = "local"
    if provider == "netns":
        from .netns import stage_netns_broker  # its own listener config beside local.conf

        return stage_netns_broker
    return stage_broker


def reload_running_lab(lab_dir: Path, broker: bool, processes: bool,
                       stage: Stage | None = None) -> list[str]:
    """Apply the lab folder to the running nodes; return what was signalled ("name:HUP|TERM").

    Args:
        lab_dir: the lab folder (its files are already written).
        broker: the ACL or password file changed: restage the broker's files and SIGHUP it.
        processes: twins or runtime.json changed: the engine, emulators and API reload.
        stage: copies the broker's files where it reads them (default: by provider).
    """
    lab_dir = lab_dir.resolve()
    nodes = running_nodes(lab_dir)
    done: list[str] = []
    # The broker first: a new device's credentials must exist before its emulator connects.
    if broker and BROKER in nodes:
        (stage or stage_for(lab_dir))(lab_dir, broker_account())
        if _signal(nodes[BROKER], signal.SIGHUP):
            done.append(f"{BROKER}:HUP")
    if not processes:
        return done
    # The engine before the emulators, so a moved device's new topic is routed when it speaks.
    order = sorted((n for n in nodes if _reloads(n)),
                   key=lambda n: (0 if n == "engine" else 1 if n.startswith("emulator") else 2, n))
    for name in order:
        entry = nodes[name]
        if catches(entry.pid, signal.SIGHUP):
            if _signal(entry, signal.SIGHUP):
                done.append(f"{name}:HUP")
        elif _signal(entry, signal.SIGTERM):  # the supervisor restarts it from the new files
            log.warning("%s does not reload on SIGHUP; restarting it", name)
            done.append(f"{name}:TERM")
    return done
