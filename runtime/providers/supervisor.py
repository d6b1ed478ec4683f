"""A simple supervisor: starts a lab's nodes in order, restarts the ones that crash, stops them all.

Run as `python -m dtnlab.runtime supervise --lab DIR` (the local provider's `up` starts it in
the background). Each node's PID file is in run/pids/, its output in run/logs/<node>.log and the
supervisor's view (restarts, last exit code) in run/supervisor.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import resource
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType

from .nodes import LOGS_DIR, NodeSpec, local_nodes
from .process import PidFile, pid_files, pid_path, terminate

log = logging.getLogger(__name__)

STATE_FILE = Path("run/supervisor.json")
SUPERVISOR = "supervisor"
POLL_S = 0.2
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
BACKOFF_MAX_S = 30.0
STABLE_S = 30.0  # a node that ran this long starts its backoff afresh when it crashes


@dataclass
class NodeState:
    pid: int | None = None
    state: str = "starting"  # starting | running | restarting | stopped
    restarts: int = 0
    last_exit: int | None = None
    started: float = 0.0
    next_start: float = 0.0
    failures: int = 0


def raise_fd_limit() -> int:
    """Children inherit it: the broker holds one fd per device, an emulator one per device."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class Supervisor:
    def __init__(self, lab_dir: Path, nodes: list[NodeSpec]) -> None:
        self.lab_dir = lab_dir
        self.nodes = nodes
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.states = {n.name: NodeState() for n in nodes}
        self.stopping = False

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def write_state(self) -> None:
        path = self.lab_dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"ts": time.time(),
                                   "nodes": {n: asdict(s) for n, s in self.states.items()}}))
        tmp.replace(path)

    def start(self, node: NodeSpec) -> None:
        state = self.states[node.name]
        if node.prepare is not None:
            node.prepare()
        (self.lab_dir / LOGS_DIR).mkdir(parents=True, exist_ok=True)
        with (self.lab_dir / LOGS_DIR / f"{node.name}.log").open("ab") as output:
            account = node.account
            proc = subprocess.Popen(
                node.argv, cwd=node.cwd, stdin=subprocess.DEVNULL, stdout=output,
                stderr=subprocess.STDOUT, env={**os.environ, **node.env} if node.env else None,
                user=account.uid if account else None, group=account.gid if account else None,
                extra_groups=[] if account else None)
        self.procs[node.name] = proc
        PidFile.of(node.name, proc.pid, node.argv).write(self.lab_dir)
        state.pid, state.state, state.started = proc.pid, "running", time.time()
        log.info("%s started (pid %d)", node.name, proc.pid)
        self.write_state()

    def wait_ready(self, node: NodeSpec) -> None:
        if node.ready is None:
            return
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self.stopping and not node.ready():
            proc = self.procs[node.name]
            if proc.poll() is not None or time.monotonic() > deadline:
                log.error("%s is not ready (exit code %s); see %s", node.name, proc.returncode,
                          LOGS_DIR / f"{node.name}.log")
                return
            time.sleep(0.05)

    def check(self) -> bool:
        """Restart what exited; return whether anything changed."""
        changed = False
        now = time.time()
        for node in self.nodes:
            state = self.states[node.name]
            proc = self.procs.get(node.name)
            if state.state == "running" and proc is not None and proc.poll() is not None:
                state.last_exit, state.pid = proc.returncode, None
                state.failures = 1 if now - state.started > STABLE_S else state.failures + 1
                delay = min(2.0 ** (state.failures - 1), BACKOFF_MAX_S)
                state.state, state.next_start = "restarting", now + delay
                pid_path(self.lab_dir, node.name).unlink(missing_ok=True)
                log.warning("%s exited with %s; restarting in %.0fs", node.name, proc.returncode,
                            delay)
                changed = True
            elif state.state == "restarting" and now >= state.next_start:
                state.restarts += 1
                try:
                    self.start(node)
                except OSError as exc:
                    log.error("%s could not start: %s", node.name, exc)
                    state.next_start = now + BACKOFF_MAX_S
                changed = True
        return changed

    def stop_all(self) -> None:
        for node in reversed(self.nodes):
            proc = self.procs.get(node.name)
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    log.warning("%s ignored SIGTERM: SIGKILL", node.name)
                    proc.kill()
                    proc.wait(5.0)
                log.info("%s stopped (exit code %s)", node.name, proc.returncode)
            self.states[node.name].state, self.states[node.name].pid = "stopped", None
            pid_path(self.lab_dir, node.name).unlink(missing_ok=True)

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        log.info("open-file limit %d", raise_fd_limit())
        stop_leftovers(self.lab_dir, keep=SUPERVISOR)
        try:
            for node in self.nodes:
                if self.stopping:
                    break
                self.start(node)
                self.wait_ready(node)
            while not self.stopping:
                if self.check():
                    self.write_state()
                time.sleep(POLL_S)
        finally:
            self.stop_all()
            self.write_state()
        return 0


def stop_leftovers(lab_dir: Path, keep: str | None = None) -> list[str]:
    """Stop every process a PID file names that is still the one recorded (a crash's orphans)."""
    stopped = []
    for name, entry in pid_files(lab_dir).items():
        if name == keep:
            continue
        if terminate(entry, STOP_TIMEOUT_S):
            stopped.append(name)
        with contextlib.suppress(FileNotFoundError):
            pid_path(lab_dir, name).unlink()
    return stopped


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m dtnlab.runtime supervise",
                                     description="Run a lab's nodes as supervised processes.")
    parser.add_argument("--lab", type=Path, required=True, help="the generated lab folder")
    parser.add_argument("--shards", type=int, help="emulator processes (default: by size)")
    parser.add_argument("--tls", action="store_true", help="emulators use the TLS listener")
    parser.add_argument("--detach", action="store_true",
                        help="fork into the background (the caller need not wait for it)")
    args = parser.parse_args(argv)
    lab_dir = args.lab.resolve()
    nodes = local_nodes(lab_dir, args.shards, args.tls)
    if args.detach and os.fork():
        return 0  # the parent: its caller sees it exit at once, the child is the supervisor
    PidFile.of(SUPERVISOR, os.getpid(), ["python", "-m", "dtnlab.runtime", "supervise",
                                          *argv]).write(lab_dir)
    try:
        return Supervisor(lab_dir, nodes).run()
    finally:
        pid_path(lab_dir, SUPERVISOR).unlink(missing_ok=True)
