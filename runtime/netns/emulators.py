"""Every device's emulator in its own namespace: one process per device, forked from one parent.

Python start-up dominates on a small machine (a second or more per process, worse when dozens
start at once), so the parent imports the emulator once, then forks a child per device that
enters the device's namespace (setns) and runs the emulator for that device alone. Each child
is a real process inside its node's namespace (`ip netns pids` lists it), with its own log in
run/logs/emulator-<id>.log. The parent restarts a child that dies and stops them all on SIGTERM.

Run: `python -m dtnlab.runtime.netns.emulators --lab DIR --view DIR [--tls]`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from .nsenter import enter_namespace
from .state import load_plan, netns_dir

log = logging.getLogger(__name__)

POLL_S = 0.2
STOP_GRACE_S = 8.0
BACKOFF_MAX_S = 30.0
LOGS_DIR = Path("run/logs")


@dataclass
class Child:
    device: str
    ns: str
    pid: int = 0
    started: float = 0.0
    failures: int = 0
    next_start: float = 0.0


class Emulators:
    def __init__(self, lab_dir: Path, view: Path, tls: bool, devices: dict[str, str]) -> None:
        self.lab_dir = lab_dir
        self.view = view
        self.tls = tls
        self.children = {device: Child(device, ns) for device, ns in devices.items()}
        self.stopping = False

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def spawn(self, child: Child) -> None:
        from ..emulator.runner import EmulatorOptions, run

        logfile = self.lab_dir / LOGS_DIR / f"emulator-{child.device}.log"
        pid = os.fork()
        if pid == 0:  # the child: never return into the parent's loop
            code = 1
            try:
                for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                    signal.signal(signum, signal.SIG_DFL)
                out = os.open(logfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                os.dup2(out, 1)
                os.dup2(out, 2)
                os.close(out)
                logging.root.handlers.clear()
                logging.basicConfig(level=logging.INFO, stream=sys.stderr, force=True,
                                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
                enter_namespace(child.ns)
                code = run(self.view, EmulatorOptions(device_ids=(child.device,), tls=self.tls,
                                                      name=f"emulator-{child.device}"))
            except BaseException as exc:  # noqa: BLE001 - a child reports and exits, always
                sys.stderr.write(f"emulator {child.device}: {exc!r}\n")
            finally:
                sys.stderr.flush()
                os._exit(code)
        child.pid, child.started = pid, time.time()

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            for child in self.children.values():
                if child.pid == pid:
                    child.pid = 0
                    if not self.stopping:
                        now = time.time()
                        child.failures = 1 if now - child.started > 30 else child.failures + 1
                        delay = min(2.0 ** (child.failures - 1), BACKOFF_MAX_S)
                        child.next_start = now + delay
                        log.warning("emulator %s exited (%s); restarting in %.0fs",
                                    child.device, os.waitstatus_to_exitcode(status), delay)

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        (self.lab_dir / LOGS_DIR).mkdir(parents=True, exist_ok=True)
        for child in self.children.values():
            self.spawn(child)
        log.info("%d device emulators started, each in its namespace", len(self.children))
        while not self.stopping:
            time.sleep(POLL_S)
            self.reap()
            now = time.time()
            for child in self.children.values():
                if not child.pid and not self.stopping and now >= child.next_start:
                    self.spawn(child)
        self.stop()
        return 0

    def stop(self) -> None:
        alive = [c.pid for c in self.children.values() if c.pid]
        for pid in alive:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + STOP_GRACE_S
        while any(c.pid for c in self.children.values()) and time.monotonic() < deadline:
            time.sleep(0.05)
            self.reap()
        for child in self.children.values():
            if child.pid:
                try:
                    os.kill(child.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.reap()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dtnlab.runtime.netns.emulators",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--lab", type=Path, required=True, help="the generated lab folder")
    parser.add_argument("--view", type=Path, required=True,
                        help="the lab as emulators see it (run/netns/view)")
    parser.add_argument("--tls", action="store_true", help="use the broker's TLS listener")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    lab_dir = args.lab.resolve()
    plan = load_plan(netns_dir(lab_dir))
    twins = json.loads((lab_dir / "runtime.json").read_text()).get("twins", [])
    devices = {t: plan.nodes[t].ns for t in twins if t in plan.nodes}
    missing = sorted(set(twins) - set(devices))
    if missing:
        log.warning("twins without a node in the topology, not emulated: %s", ", ".join(missing))
    from ..emulator import runner  # noqa: F401 - imported once here, not in every child

    return Emulators(lab_dir, args.view.resolve(), args.tls, devices).run()


if __name__ == "__main__":
    sys.exit(main())
