"""A small lab end to end through the CLI, storing in a fresh database on the machine's PostgreSQL:
up (the API node too), stored telemetry, every fault with its state transitions and alerts,
commands, broker restarts (nothing the broker acknowledged is lost at QoS 1), down. Real
Mosquitto, twin engine, API and emulators, all as local processes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from dtnlab.cli import main as dtnlab
from dtnlab.runtime.engine import EngineConfig
from dtnlab.runtime.labfiles import LabFiles, load_lab
from dtnlab.runtime.providers import LocalProvider
from dtnlab.runtime.providers.commands import send_command
from dtnlab.runtime.providers.process import pid_files
from tests.runtime.emulator.smalllab import (
    PLC,
    SENSOR,
    Watcher,
    emulator_totals,
    lab_processes,
    write_inventory,
)
from tests.runtime.storage.pgcluster import TestDatabase
from tests.waiting import wait_for

pytestmark = [pytest.mark.mosquitto, pytest.mark.postgres]

PERIOD_S, HEARTBEAT_S = 0.3, 1.5
# The engine looks for silent twins every tick: a heartbeat timeout shows within one tick,
# plus a little for delivery and a loaded machine.
HEARTBEAT_SLACK_S = EngineConfig().tick_s + 0.75


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with TestDatabase() as db:
        yield db.url


@pytest.fixture(scope="module")
def lab_dir(tmp_path_factory: pytest.TempPathFactory, database: str) -> Iterator[Path]:
    saved = os.environ.get("DTN_DATABASE_URL")
    os.environ["DTN_DATABASE_URL"] = database  # the engine and the API inherit it
    root = tmp_path_factory.mktemp("e2e")
    inventory = write_inventory(root, period_s=PERIOD_S, heartbeat_s=HEARTBEAT_S, lab="e2e",
                                telemetry_qos=1)
    labs = root / "labs"
    args = ["-i", str(inventory), "--labs-dir", str(labs)]
    try:
        assert dtnlab(["up", *args, "--timeout", "90"]) == 0
        yield labs / "e2e"
    finally:
        dtnlab(["down", *args])
        if saved is None:
            os.environ.pop("DTN_DATABASE_URL", None)
        else:
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


def stored(database: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(database, autocommit=True) as conn:
        return conn.execute(sql.encode(), params).fetchall()


def stored_moves(database: str, device: str, since: float) -> list[tuple[str, str]]:
    return [(a, b) for a, b in stored(
        database, "SELECT from_state, to_state FROM transitions WHERE device = %s"
        " AND ts >= to_timestamp(%s) ORDER BY ts", device, since)]


def assert_moves_stored(database: str, device: str, since: float,
                        expected: list[tuple[str, str]]) -> None:
    """The state history in PostgreSQL since `since` is exactly `expected`."""
    wait_for(lambda: len(stored_moves(database, device, since)) >= len(expected),
             what=f"{len(expected)} transitions of {device} stored")
    assert stored_moves(database, device, since) == expected


def stored_alert(database: str, alert_id: str) -> dict[str, Any]:
    """The alert row, once its resolution is stored."""
    fields = ("device", "metric", "kind", "severity", "resolved")
    row = wait_for(lambda: next(iter(stored(
        database, "SELECT device, metric, kind, severity, resolved_at IS NOT NULL FROM alerts"
        " WHERE id = %s AND resolved_at IS NOT NULL", alert_id)), None),
        what=f"alert {alert_id} stored as resolved")
    return dict(zip(fields, row, strict=True))


def last_telemetry_before(database: str, device: str, moment: float) -> float:
    rows = stored(database, "SELECT extract(epoch FROM max(ts))::float8 FROM telemetry"
                  " WHERE device = %s AND ts <= to_timestamp(%s)", device, moment)
    return float(rows[0][0])


def state_after(watcher: Watcher, lab: LabFiles, device: str, state: str, since: float,
                timeout: float = 6.0) -> dict[str, Any]:
    return watcher.wait(lab.twins[device].twin_state_topic, lambda m: m["state"] == state,
                        since, timeout, f"{device} to become {state}")


def alert_event(watcher: Watcher, lab: LabFiles, device: str, event: str, since: float,
                kind: str, metric: str = "", alert_id: str | None = None,
                timeout: float = 6.0) -> dict[str, Any]:
    def match(m: dict[str, Any]) -> bool:
        return (m["event"] == event and m["kind"] == kind and m["metric"] == metric
                and alert_id in (None, m["id"]))

    return watcher.wait(lab.twins[device].topics.alert, match, since, timeout,
                        f"a {kind} alert {event}")


def fault(lab_dir: Path, device: str, kind: str, *options: str) -> tuple[float, float]:
    """Inject a fault through the CLI once the twin is healthy; return (monotonic, wall) times."""
    wait_for(lambda: twin_states(lab_dir).get(device) == "healthy", timeout=15,
             what=f"{device} healthy before the {kind} fault")
    since, wall = time.monotonic(), time.time()
    assert cli(lab_dir, "fault", device, kind, *options) == 0
    return since, wall


def twin_states(lab_dir: Path) -> dict[str, str]:
    return LocalProvider(lab_dir).status().twins.states


def all_healthy(lab_dir: Path) -> bool:
    states = twin_states(lab_dir)
    return bool(states) and set(states.values()) == {"healthy"}


def api_health(lab_dir: Path) -> dict[str, Any] | None:
    port = json.loads((lab_dir / "runtime.json").read_text())["api"]["port"]
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2.0)
    except httpx.TransportError:
        return None  # not listening yet
    assert response.status_code == 200, response.text
    doc: dict[str, Any] = response.json()
    return doc


def test_up_stores_telemetry_serves_the_api_and_every_twin_is_healthy(
        lab_dir: Path, lab: LabFiles, database: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    wait_for(lambda: all_healthy(lab_dir), timeout=10, what="every twin healthy")
    rows = wait_for(lambda: (lambda r: r if len(r) == len(lab.twins) else None)(stored(
        database, "SELECT device, count(*) FROM telemetry GROUP BY device")), timeout=10,
        what="telemetry of every device stored in PostgreSQL")
    assert all(count > 0 for _, count in rows)
    capsys.readouterr()
    assert cli(lab_dir, "status") == 0
    out = capsys.readouterr().out
    assert f"twins (twin state topics): {len(lab.twins)} healthy" in out
    for node in ("supervisor", "broker", "engine", "emulator-0", "api"):
        assert f"\n{node}" in f"\n{out}"
    health = wait_for(lambda: (h := api_health(lab_dir)) and h["status"] == "ok" and h,
                      timeout=20, what="the API node to answer /health with ok")
    assert health["lab"] == "e2e"
    assert health["twins"] == len(lab.twins)
    assert (health["database"]["ok"], health["database"]["kind"]) == (True, "postgres")
    assert health["broker"]["connected"]
    assert health["engine"]["running"]


def test_spike_goes_critical_with_a_critical_alert_and_both_clear(
        lab_dir: Path, lab: LabFiles, watcher: Watcher, database: str) -> None:
    since, wall = fault(lab_dir, SENSOR, "spike")
    critical = state_after(watcher, lab, SENSOR, "critical", since)
    assert "temperature" in critical["reason"]
    raised = alert_event(watcher, lab, SENSOR, "raised", since, "threshold", "temperature")
    assert raised["severity"] == "critical"
    state_after(watcher, lab, SENSOR, "healthy", since)  # the spike ends by itself
    alert_event(watcher, lab, SENSOR, "resolved", since, "threshold", "temperature", raised["id"])
    assert_moves_stored(database, SENSOR, wall, [("healthy", "critical"), ("critical", "healthy")])
    assert stored_alert(database, raised["id"]) == {
        "device": SENSOR, "metric": "temperature", "kind": "threshold", "severity": "critical",
        "resolved": True}


def test_drift_goes_degraded_then_critical_and_recover_clears_its_alert(
        lab_dir: Path, lab: LabFiles, watcher: Watcher, database: str) -> None:
    since, wall = fault(lab_dir, SENSOR, "drift", "--ramp-s", "2")
    degraded = state_after(watcher, lab, SENSOR, "degraded", since)
    raised = alert_event(watcher, lab, SENSOR, "raised", since, "threshold", "temperature")
    assert raised["severity"] == "warning"
    critical = state_after(watcher, lab, SENSOR, "critical", since)
    assert degraded["since"] < critical["since"]
    escalated = alert_event(watcher, lab, SENSOR, "escalated", since, "threshold",
                            "temperature", raised["id"])
    assert escalated["severity"] == "critical"
    healed = fault_now(lab_dir, SENSOR, "recover")
    state_after(watcher, lab, SENSOR, "healthy", healed)
    alert_event(watcher, lab, SENSOR, "resolved", healed, "threshold", "temperature",
                raised["id"])
    assert_moves_stored(database, SENSOR, wall, [
        ("healthy", "degraded"), ("degraded", "critical"), ("critical", "healthy")])
    assert stored_alert(database, raised["id"])["severity"] == "critical"


def fault_now(lab_dir: Path, device: str, kind: str) -> float:
    """A fault (recover, mostly) on a twin in whatever state it is; the monotonic time."""
    since = time.monotonic()
    assert cli(lab_dir, "fault", device, kind) == 0
    return since


def test_stuck_readings_degrade_the_twin_with_stuck_alerts_until_recover(
        lab_dir: Path, lab: LabFiles, watcher: Watcher, database: str) -> None:
    floats = sorted(m for m, spec in lab.twins[PLC].metrics.items() if spec.type == "float")
    assert floats == ["cpu_load", "cycle_time"]
    since, wall = fault(lab_dir, PLC, "stuck")
    applied = time.time()
    # the same values stuck_after times in a row, then the engine calls it
    flat_s = lab.twins[PLC].stuck_after * PERIOD_S
    degraded = state_after(watcher, lab, PLC, "degraded", since, timeout=flat_s + 6)
    assert "stuck" in degraded["reason"]
    raised = [alert_event(watcher, lab, PLC, "raised", since, "stuck", metric)
              for metric in floats]
    values = stored(database, "SELECT DISTINCT value FROM telemetry WHERE device = %s"
                    " AND metric = 'cpu_load' AND ts > to_timestamp(%s)", PLC, applied)
    assert len(values) == 1, values  # stored exactly as sent
    healed = fault_now(lab_dir, PLC, "recover")
    state_after(watcher, lab, PLC, "healthy", healed)
    for alert in raised:
        alert_event(watcher, lab, PLC, "resolved", healed, "stuck", alert["metric"], alert["id"])
        assert stored_alert(database, alert["id"])["kind"] == "stuck"
    assert_moves_stored(database, PLC, wall, [("healthy", "degraded"), ("degraded", "healthy")])


def test_a_silent_device_goes_offline_within_its_heartbeat_and_comes_back(
        lab_dir: Path, lab: LabFiles, watcher: Watcher, database: str) -> None:
    since, wall = fault(lab_dir, SENSOR, "dropout")
    offline = state_after(watcher, lab, SENSOR, "offline", since,
                          timeout=HEARTBEAT_S + PERIOD_S + 3)
    assert "heartbeat" in offline["reason"]
    raised = alert_event(watcher, lab, SENSOR, "raised", since, "offline")
    silence = offline["since"] - last_telemetry_before(database, SENSOR, offline["since"])
    assert HEARTBEAT_S < silence <= HEARTBEAT_S + HEARTBEAT_SLACK_S
    back = fault_now(lab_dir, SENSOR, "recover")
    state_after(watcher, lab, SENSOR, "healthy", back)
    alert_event(watcher, lab, SENSOR, "resolved", back, "offline", alert_id=raised["id"])
    assert stored_alert(database, raised["id"])["kind"] == "offline"
    assert_moves_stored(database, SENSOR, wall, [("healthy", "offline"), ("offline", "healthy")])


def test_offline_fires_the_will_before_the_heartbeat_and_recover_brings_it_back(
        lab_dir: Path, lab: LabFiles, watcher: Watcher, database: str) -> None:
    since, wall = fault(lab_dir, SENSOR, "offline")
    offline = state_after(watcher, lab, SENSOR, "offline", since, timeout=HEARTBEAT_S)
    assert "will" in offline["reason"]
    raised = alert_event(watcher, lab, SENSOR, "raised", since, "offline")
    silence = offline["since"] - last_telemetry_before(database, SENSOR, offline["since"])
    assert silence < HEARTBEAT_S  # the broker told the engine; no need to wait for silence
    back = fault_now(lab_dir, SENSOR, "recover")
    state_after(watcher, lab, SENSOR, "healthy", back)
    alert_event(watcher, lab, SENSOR, "resolved", back, "offline", alert_id=raised["id"])
    assert stored_alert(database, raised["id"])["kind"] == "offline"
    assert_moves_stored(database, SENSOR, wall, [
        ("healthy", "offline"), ("offline", "initializing"), ("initializing", "healthy")])


def test_logs_show_a_node_or_every_node(lab_dir: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert cli(lab_dir, "logs", "emulator-0", "-n", "200") == 0
    assert f"{SENSOR}: fault offline" in capsys.readouterr().out
    assert cli(lab_dir, "logs", "broker", "-n", "200") == 0
    assert "mosquitto version" in capsys.readouterr().out
    assert cli(lab_dir, "logs", "-n", "1") == 0
    assert {line.split("|")[0] for line in capsys.readouterr().out.splitlines()} >= {
        "supervisor", "broker", "engine", "emulator-0", "api"}
    assert cli(lab_dir, "logs", "nosuchnode") == 1


def test_a_command_is_acknowledged_by_its_device(lab_dir: Path) -> None:
    ack = send_command(lab_dir, PLC, "ping")
    assert (ack["result"], ack["detail"]) == ("ok", "pong")
    assert send_command(lab_dir, PLC, "warp")["result"] == "rejected"


def restart_broker(lab_dir: Path, sig: signal.Signals) -> float:
    """Signal the broker; the supervisor starts it again. Returns when it is back."""
    broker = pid_files(lab_dir)["broker"]
    os.kill(broker.pid, sig)
    stopped = time.time()
    wait_for(lambda: (lambda b: b is not None and b.pid != broker.pid and b.alive())(
        pid_files(lab_dir).get("broker")), timeout=15, what="the supervisor to restart it")
    return stopped


def engine_sees_all_healthy(lab_dir: Path, lab: LabFiles, after: float) -> bool:
    """Retained states may predate a restart: ask the engine's own status file."""
    engine = json.loads((lab_dir / "run" / "engine" / "status.json").read_text())
    return bool(engine["ts"] > after and engine["mqtt_connected"]
                and engine["states"]["healthy"] == len(lab.twins))


def test_a_graceful_broker_restart_loses_no_reading_the_broker_acknowledged(
        lab_dir: Path, lab: LabFiles, database: str) -> None:
    held = emulator_totals(lab_dir)["held"]
    stopped = restart_broker(lab_dir, signal.SIGTERM)  # mosquitto saves its sessions
    wait_for(lambda: emulator_totals(lab_dir)["connected"] == len(lab.twins), timeout=20,
             what="every emulated device connected again")
    wait_for(lambda: engine_sees_all_healthy(lab_dir, lab, stopped + 1), timeout=20,
             what="the engine to see every twin healthy")
    assert emulator_totals(lab_dir)["held"] > held  # readings made while the broker was away
    # Quiet every device, then wait for every acknowledgement: from then on each reading a
    # device made since the lab started was acknowledged by the broker, and must be stored.
    for device in lab.twins:
        assert cli(lab_dir, "fault", device, "dropout") == 0
    try:
        settled = wait_for(lambda: (t := emulator_totals(lab_dir)) and t["unacked"] == 0 and t,
                           timeout=10, what="every QoS 1 message acknowledged")
        assert settled["dropped"] == 0
        published = settled["published_by_device"]
        assert set(published) == set(lab.twins)
        assert settled["acked"] >= sum(published.values())  # command acks are counted too

        def stored_readings() -> dict[str, int]:  # a reading resent with DUP is stored twice
            return dict(stored(database, "SELECT device, count(DISTINCT ts) FROM telemetry"
                               " GROUP BY device"))

        with contextlib.suppress(AssertionError):
            wait_for(lambda: stored_readings() == published, timeout=20)
        assert stored_readings() == published
    finally:
        for device in lab.twins:
            cli(lab_dir, "fault", device, "recover")
    wait_for(lambda: all_healthy(lab_dir), timeout=15, what="every twin healthy again")


def test_everything_reconnects_after_the_broker_is_killed(lab_dir: Path, lab: LabFiles,
                                                         database: str) -> None:
    killed = restart_broker(lab_dir, signal.SIGKILL)
    wait_for(lambda: {d for (d,) in stored(database, "SELECT DISTINCT device FROM telemetry"
                                           " WHERE ts > to_timestamp(%s)", killed + 1)}
             == set(lab.twins), timeout=20, what="telemetry of every device stored again")
    wait_for(lambda: engine_sees_all_healthy(lab_dir, lab, killed + 1), timeout=15,
             what="the engine to see every twin healthy")


def test_down_leaves_nothing_running(lab_dir: Path) -> None:
    assert cli(lab_dir, "down") == 0
    assert lab_processes(lab_dir) == []
    assert pid_files(lab_dir) == {}
    assert cli(lab_dir, "status") == 3
