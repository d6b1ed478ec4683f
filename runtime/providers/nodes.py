"""The nodes of a lab run as local processes: broker, twin engine, emulator shards, API."""

from __future__ import annotations

import math
import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..emulator.spec import read_runtime
from .broker import BrokerAccount, broker_account, broker_argv, stage_broker
from .states import engine_status

# bench/emulators_bench.py: one process drives 5,000 devices (950 msg/s) on ~10% of a core;
# more processes shorten the connect storm and use every core
DEVICES_PER_SHARD = 5000
LOGS_DIR = Path("run/logs")


@dataclass(frozen=True)
class NodeSpec:
    """How to start one node and tell that it is ready.

    Args:
        name: node name (PID file, log file, status line).
        argv: the command.
        cwd: its working directory.
        account: run as this user (the broker, when we are root).
        prepare: called before every (re)start, e.g. to stage files.
        ready: returns True once the node serves; `up` waits for it before the next node.
    """

    name: str
    argv: list[str]
    cwd: Path
    account: BrokerAccount | None = None
    prepare: Callable[[], object] | None = None
    ready: Callable[[], bool] | None = None
    env: dict[str, str] = field(default_factory=dict)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.3):
            return True
    except OSError:
        return False


def runtime_subcommands() -> set[str]:
    """Which runtime processes exist (the engine and API land in runtime/__main__.py)."""
    from .. import __main__ as runtime_main  # imported late: __main__ imports the providers

    return set(runtime_main.SUBCOMMANDS)


def default_shards(twins: int) -> int:
    return max(1, min(os.cpu_count() or 1, math.ceil(twins / DEVICES_PER_SHARD)))


class EngineReady:
    """The engine subscribed (its status file says so, written since this start).

    The emulators start after it: a reading the broker acknowledged before the engine's
    subscription existed would reach nobody.
    """

    def __init__(self, lab_dir: Path) -> None:
        self.lab_dir = lab_dir
        self.since = 0.0

    def prepare(self) -> None:
        self.since = time.time()

    def __call__(self) -> bool:
        status = engine_status(self.lab_dir)
        return bool(status and status.get("mqtt_connected")
                    and float(status.get("started_at", 0)) >= self.since)


def runtime_argv(subcommand: str, lab_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "dtnlab.runtime", subcommand, "--lab", str(lab_dir), *extra]


def local_nodes(lab_dir: Path, shards: int | None = None, tls: bool = False) -> list[NodeSpec]:
    """Every node of the lab in start order (stop order is the reverse).

    Args:
        lab_dir: the generated lab folder (absolute).
        shards: emulator processes (default: one per DEVICES_PER_SHARD devices, up to the CPUs).
        tls: emulators connect to the broker's TLS listener.
    """
    runtime = read_runtime(lab_dir)
    broker = runtime.broker
    account = broker_account()
    available = runtime_subcommands()
    ports = [broker.port] + ([broker.tls_port] if broker.tls_port else [])
    nodes = [NodeSpec(
        name="broker", argv=broker_argv(), cwd=lab_dir / "run" / "broker", account=account,
        prepare=lambda: stage_broker(lab_dir, account),
        ready=lambda: all(port_open(broker.host, p) for p in ports))]
    if "engine" in available:
        ready = EngineReady(lab_dir)
        nodes.append(NodeSpec("engine", runtime_argv("engine", lab_dir), lab_dir,
                              prepare=ready.prepare, ready=ready))
    count = shards or default_shards(len(runtime.twins))
    for k in range(count):
        name = f"emulator-{k}"
        extra = ["--shard", f"{k}/{count}", "--name", name] + (["--tls"] if tls else [])
        nodes.append(NodeSpec(name, runtime_argv("emulator", lab_dir, *extra), lab_dir))
    if "api" in available:
        nodes.append(NodeSpec("api", runtime_argv("api", lab_dir), lab_dir))
    return nodes
