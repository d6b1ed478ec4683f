"""The local provider: every node a supervised process on loopback, no Docker, no root needed."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ..emulator.control import STATUS_DIR
from ..emulator.spec import read_runtime
from .base import LabStatus, NodeStatus, Provider, ProviderError
from .nodes import LOGS_DIR, runtime_subcommands
from .process import PidFile, pid_files, pid_path, terminate
from .states import ENGINE_STATUS, broker_answers, engine_status
from .supervisor import STATE_FILE, SUPERVISOR, stop_leftovers

log = logging.getLogger(__name__)

SUPERVISOR_STOP_S = 40.0  # it stops every node in turn, each with its own SIGKILL deadline
NOT_REPORTED = ("offline", "initializing")


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


class LocalProvider(Provider):
    """Runs the lab as processes under one supervisor; PID files and logs under run/.

    Args:
        lab_dir: the generated lab folder.
        shards: emulator processes (default: by the number of devices).
        tls: emulators connect to the broker's TLS listener.
    """

    name = "local"

    def __init__(self, lab_dir: Path, shards: int | None = None, tls: bool = False) -> None:
        super().__init__(lab_dir)
        self.shards = shards
        self.tls = tls

    def _supervisor(self) -> PidFile | None:
        entry = pid_files(self.lab_dir).get(SUPERVISOR)
        return entry if entry is not None and entry.alive() else None

    def up(self, timeout: float = 60.0) -> LabStatus:
        if not (self.lab_dir / "runtime.json").exists():
            raise ProviderError(f"{self.lab_dir}: no runtime.json; generate the lab first")
        fresh = self._supervisor() is None
        if fresh:
            self._start_supervisor()
        # a lab already up may have faulted twins on purpose: then the broker is enough
        self._wait_ready(time.monotonic() + timeout, twins=fresh)
        return self.status()

    def _start_supervisor(self) -> None:
        stop_leftovers(self.lab_dir)  # orphans of a supervisor that crashed
        run = self.lab_dir / "run"
        for stale in (run / "faults", run / "emulator"):  # a fresh lab starts without faults
            shutil.rmtree(stale, ignore_errors=True)
        (self.lab_dir / ENGINE_STATUS).unlink(missing_ok=True)
        (self.lab_dir / LOGS_DIR).mkdir(parents=True, exist_ok=True)
        pid_path(self.lab_dir, SUPERVISOR).unlink(missing_ok=True)
        argv = [sys.executable, "-m", "dtnlab.runtime", "supervise", "--detach", "--lab",
                str(self.lab_dir)]
        argv += (["--shards", str(self.shards)] if self.shards else []) + (
            ["--tls"] if self.tls else [])
        log_file = self.lab_dir / LOGS_DIR / f"{SUPERVISOR}.log"
        with log_file.open("ab") as output:
            # a new session, and forked once more: it outlives the CLI and its terminal
            code = subprocess.call(argv, cwd=self.lab_dir, stdin=subprocess.DEVNULL,
                                   stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        if code != 0:
            raise ProviderError(f"the supervisor did not start (exit code {code}); "
                                f"{log_file}:\n{log_tail(log_file)}")
        deadline = time.monotonic() + 10.0
        while (entry := self._supervisor()) is None:
            if time.monotonic() > deadline:
                raise ProviderError(f"the supervisor did not start; {log_file}:\n"
                                    f"{log_tail(log_file)}")
            time.sleep(0.05)
        log.debug("supervisor started (pid %d)", entry.pid)

    def _wait_ready(self, deadline: float, twins: bool = True) -> None:
        """The broker accepts a login, then every twin has reported."""
        while not broker_answers(self.lab_dir):
            self._check_alive(deadline, "the broker does not answer",
                              self.lab_dir / LOGS_DIR / "broker.log")
            time.sleep(0.2)
        has_engine = "engine" in runtime_subcommands()
        while twins:
            waiting = self._not_reported(has_engine)
            if waiting is None:
                return
            self._check_alive(deadline, f"twins have not reported: {waiting}",
                              self.lab_dir / LOGS_DIR / ("engine.log" if has_engine
                                                         else "emulator-0.log"))
            time.sleep(0.2)

    def _not_reported(self, has_engine: bool) -> str | None:
        """None once every twin reported; else what is missing."""
        twins = len(read_runtime(self.lab_dir).twins)
        if has_engine:
            status = engine_status(self.lab_dir)
            if status is None:
                return "no engine status yet"
            waiting = sum(status.get("states", {}).get(s, 0) for s in NOT_REPORTED)
            return f"{waiting} of {twins} offline or initializing" if waiting else None
        connected = 0
        for path in (self.lab_dir / STATUS_DIR).glob("*.json"):
            try:
                connected += int(json.loads(path.read_text()).get("connected", 0))
            except (OSError, ValueError):
                pass
        return f"{connected} of {twins} emulated devices connected" if connected < twins else None

    def _check_alive(self, deadline: float, problem: str, log_file: Path) -> None:
        if self._supervisor() is None:
            raise ProviderError(f"the supervisor exited; {LOGS_DIR / 'supervisor.log'}:\n"
                                f"{log_tail(self.lab_dir / LOGS_DIR / 'supervisor.log')}")
        if time.monotonic() > deadline:
            raise ProviderError(f"timed out: {problem}; {log_file.name}:\n{log_tail(log_file)}")

    def down(self) -> list[str]:
        running = [name for name, entry in pid_files(self.lab_dir).items() if entry.alive()]
        supervisor = pid_files(self.lab_dir).get(SUPERVISOR)
        if supervisor is not None:
            terminate(supervisor, SUPERVISOR_STOP_S)  # it stops its nodes in reverse order
        pid_path(self.lab_dir, SUPERVISOR).unlink(missing_ok=True)
        stop_leftovers(self.lab_dir)  # what a crashed supervisor left behind
        return sorted(running, key=lambda name: name != SUPERVISOR)  # the supervisor first

    def nodes(self) -> list[NodeStatus]:
        try:
            states = json.loads((self.lab_dir / STATE_FILE).read_text())["nodes"]
        except (OSError, ValueError, KeyError):
            states = {}
        entries = pid_files(self.lab_dir)
        names = [SUPERVISOR, *states, *(n for n in entries if n not in states and
                                          n != SUPERVISOR)]
        supervised = entries.get(SUPERVISOR) is not None and entries[SUPERVISOR].alive()
        result = []
        for name in names:
            entry, state = entries.get(name), states.get(name, {})
            alive = entry is not None and entry.alive()
            label = "running" if alive else "stopped"
            if not alive and supervised and state.get("state") in ("starting", "restarting"):
                label = state["state"]
            result.append(NodeStatus(name=name, pid=entry.pid if entry else None, alive=alive,
                                     state=label, restarts=state.get("restarts", 0),
                                     last_exit=state.get("last_exit")))
        return result
