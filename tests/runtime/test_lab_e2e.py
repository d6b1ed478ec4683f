"""A small lab end to end through the CLI: up, stored telemetry, faults, commands, a broker restart,
down. Real Mosquitto, twin engine, SQLite storage and emulators, all as local processes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dtnlab.cli import main as dtnlab
from dtnlab.runtime.labfiles import LabFiles, load_lab
from dtnlab.runtime.providers import LocalProvider
from dtnlab.runtime.providers.commands import send_command
from dtnlab.runtime.providers.process import pid_files
from tests.runtime.emulator.smalllab import PLC, SENSOR, Watcher, lab_processes, write_inventory
from tests.waiting import wait_for

pytestmark = pytest.mark.mosquitto

PERIOD_S, HEARTBEAT_S = 0.3, 1.5


@pytest.fixture(scope="module")
def lab_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    saved = os.environ.pop("DTN_DATABASE_URL", None)  # the engine stores in run/ (SQLite)
    root = tmp_path_factory.mktemp("e2e")
    inventory = write_inventory(root, period_s=PERIOD_S, heartbeat_s=HEARTBEAT_S, lab="e2e")
    labs = root / "labs"
    args = ["-i", str(inventory), "--labs-dir", str(labs)]
    assert dtnlab(["up", *args, "--timeout", "90"]) == 0
    try:
        yield labs / "e2e"
    finally:
        dtnlab(["down", *args])
        if saved is not None:
            os.environ["DTN_DATABASE_URL"] = saved


@pytest.fixture(scope="module")
def lab(lab_dir: Path) -> LabFiles:
    return load_lab(lab_dir)


@pytest.fixture(scope="module")
def watcher(lab: LabFiles) -> Iterator[Watcher]:
    ent = lab.runtime.enterprise
    watching = Watcher(lab, [f"{ent}/_twin/+/state", f"{ent}/+/+/+/+/+/alert"])
    yield watching
    watching.close()


def cli(lab_dir: Path, *argv: str) -> int:
    return dtnlab([*argv, "--lab", lab_dir.name, "--labs-dir", str(lab_dir.parent)])


def stored(lab_dir: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{lab_dir / 'run' / 'dtnlab.sqlite3'}?mode=ro", uri=True) as db:
        return db.execute(sql, params).fetchall()


def state_after(watcher: Watcher, lab: LabFiles, device: str, state: str, since: float,
                timeout: float = 6.0) -> dict[str, Any]:
    return watcher.wait(lab.twins[device].twin_state_topic, lambda m: m["state"] == state,
                        since, timeout, f"{device} to become {state}")


def fault(lab_dir: Path, device: str, kind: str, *options: str) -> float:
    since = time.monotonic()
    assert cli(lab_dir, "fault", device, kind, *options) == 0
    return since


def all_healthy(lab_dir: Path) -> bool:
    states = LocalProvider(lab_dir).status().twins.states
    return bool(states) and set(states.values()) == {"healthy"}


def test_up_stores_telemetry_and_every_twin_is_healthy(lab_dir: Path, lab: LabFiles,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    wait_for(lambda: all_healthy(lab_dir), timeout=10, what="every twin healthy")
    rows = wait_for(lambda: (lambda r: r if len(r) == len(lab.twins) else None)(stored(
        lab_dir, "SELECT device, count(*) FROM telemetry GROUP BY device")), timeout=10,
        what="telemetry of every device stored")
    assert all(count > 0 for _, count in rows)
    capsys.readouterr()
    assert cli(lab_dir, "status") == 0
    out = capsys.readouterr().out
    assert f"twins (twin state topics): {len(lab.twins)} healthy" in out
    for node in ("supervisor", "broker", "engine", "emulator-0"):
        assert f"\n{node}" in f"\n{out}"


def test_spike_raises_a_critical_alert_that_resolves(lab_dir: Path, lab: LabFiles,
                                                     watcher: Watcher) -> None:
    since = fault(lab_dir, SENSOR, "spike")
    critical = state_after(watcher, lab, SENSOR, "critical", since)
    assert "temperature" in critical["reason"]
    alert_topic = lab.twins[SENSOR].topics.alert
    raised = watcher.wait(alert_topic, lambda m: m["event"] == "raised", since)
    assert raised["severity"] == "critical"
    state_after(watcher, lab, SENSOR, "healthy", since)
    watcher.wait(alert_topic, lambda m: m["event"] == "resolved" and m["id"] == raised["id"],
                 since)


def test_drift_goes_degraded_then_critical_and_recover_heals(lab_dir: Path, lab: LabFiles,
                                                              watcher: Watcher) -> None:
    since = fault(lab_dir, SENSOR, "drift", "--ramp-s", "2")
    degraded = state_after(watcher, lab, SENSOR, "degraded", since)
    critical = state_after(watcher, lab, SENSOR, "critical", since)
    assert degraded["since"] < critical["since"]
    healed = fault(lab_dir, SENSOR, "recover")
    state_after(watcher, lab, SENSOR, "healthy", healed)


def test_stuck_readings_are_stored_as_they_were_sent(lab_dir: Path, lab: LabFiles) -> None:
    fault(lab_dir, PLC, "stuck")
    start = time.time()
    time.sleep(8 * PERIOD_S)
    values = stored(lab_dir, "SELECT value FROM telemetry WHERE device = ? AND metric = ? "
                    "AND ts > ? ORDER BY ts", PLC, "cpu_load", start)
    assert len(values) >= 5
    assert len(set(values)) == 1, values
    fault(lab_dir, PLC, "recover")


def test_a_silent_device_goes_offline_within_its_heartbeat(lab_dir: Path, lab: LabFiles,
                                                            watcher: Watcher) -> None:
    since = fault(lab_dir, SENSOR, "dropout")
    offline = state_after(watcher, lab, SENSOR, "offline", since, timeout=HEARTBEAT_S + 3)
    assert "heartbeat" in offline["reason"]
    assert time.monotonic() - since < HEARTBEAT_S + 2.0
    back = fault(lab_dir, SENSOR, "recover")
    state_after(watcher, lab, SENSOR, "healthy", back)


def test_offline_fires_the_will_and_recover_brings_the_device_back(
        lab_dir: Path, lab: LabFiles, watcher: Watcher) -> None:
    since = fault(lab_dir, SENSOR, "offline")
    offline = state_after(watcher, lab, SENSOR, "offline", since, timeout=3.0)
    assert "will" in offline["reason"]
    back = fault(lab_dir, SENSOR, "recover")
    state_after(watcher, lab, SENSOR, "healthy", back)


def test_logs_show_a_node_or_every_node(lab_dir: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert cli(lab_dir, "logs", "emulator-0", "-n", "200") == 0
    assert f"{SENSOR}: fault offline" in capsys.readouterr().out
    assert cli(lab_dir, "logs", "broker", "-n", "200") == 0
    assert "mosquitto version" in capsys.readouterr().out
    assert cli(lab_dir, "logs", "-n", "1") == 0
    assert {line.split("|")[0] for line in capsys.readouterr().out.splitlines()} >= {
        "supervisor", "broker", "engine", "emulator-0"}
    assert cli(lab_dir, "logs", "nosuchnode") == 1


def test_a_command_is_acknowledged_by_its_device(lab_dir: Path) -> None:
    ack = send_command(lab_dir, PLC, "ping")
    assert (ack["result"], ack["detail"]) == ("ok", "pong")
    assert send_command(lab_dir, PLC, "warp")["result"] == "rejected"


def test_everything_reconnects_after_the_broker_restarts(lab_dir: Path, lab: LabFiles) -> None:
    broker = pid_files(lab_dir)["broker"]
    os.kill(broker.pid, signal.SIGKILL)
    killed = time.time()
    wait_for(lambda: (lambda b: b is not None and b.pid != broker.pid and b.alive())(
        pid_files(lab_dir).get("broker")), timeout=10, what="the supervisor to restart it")
    wait_for(lambda: {d for (d,) in stored(lab_dir, "SELECT DISTINCT device FROM telemetry "
                                           "WHERE ts > ?", killed + 1)} == set(lab.twins),
             timeout=20, what="telemetry of every device stored again")

    def engine_sees_all_healthy() -> bool:  # retained states may predate the kill: ask the engine
        engine = json.loads((lab_dir / "run" / "engine" / "status.json").read_text())
        return bool(engine["ts"] > killed + 1 and engine["mqtt_connected"]
                    and engine["states"]["healthy"] == len(lab.twins))

    wait_for(engine_sees_all_healthy, timeout=15, what="the engine to see every twin healthy")


def test_down_leaves_nothing_running(lab_dir: Path) -> None:
    assert cli(lab_dir, "down") == 0
    assert lab_processes(lab_dir) == []
    assert pid_files(lab_dir) == {}
    assert cli(lab_dir, "status") == 3
