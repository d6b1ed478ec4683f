"""The engine against the real broker: states, alerts, storage, status file, commands."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import orjson
import psycopg
import pytest

from dtnlab.runtime.engine import CommandTimeout, Engine
from dtnlab.runtime.engine.status import StatusFile
from dtnlab.runtime.storage import PostgresStore
from tests.runtime.engine.twinlab import SENSOR, engine_config
from tests.waiting import wait_for

pytestmark = pytest.mark.mosquitto  # every test here talks to a real broker


def test_birth_data_degraded_and_back(make_engine, make_device, make_listener, lab) -> None:
    twin_cfg = lab.twins[SENSOR]
    listener = make_listener([twin_cfg.twin_state_topic, twin_cfg.topics.alert])
    engine = make_engine()
    device = make_device()
    device.birth()
    wait_for(lambda: engine.twin(SENSOR)["state"] == "initializing", what="initializing")
    device.send({"temperature": 22.0})
    wait_for(lambda: engine.twin(SENSOR)["state"] == "healthy", what="healthy")
    for _ in range(3):
        device.send({"temperature": 32.0})  # outside normal [15, 30], inside warning
    wait_for(lambda: engine.twin(SENSOR)["state"] == "degraded", what="degraded")
    for _ in range(3):
        device.send({"temperature": 37.0})  # outside warning [10, 35]
    wait_for(lambda: engine.twin(SENSOR)["state"] == "critical", what="critical")
    for _ in range(4):
        device.send({"temperature": 20.0})
    wait_for(lambda: engine.twin(SENSOR)["state"] == "healthy", what="healthy again")

    alerts = wait_for(lambda: len(listener.on(twin_cfg.topics.alert)) >= 3 and
                      listener.on(twin_cfg.topics.alert), what="alert events")
    threshold = [a for a in alerts if a["kind"] == "threshold"]
    assert [a["event"] for a in threshold] == ["raised", "escalated", "resolved"]
    assert len({a["id"] for a in threshold}) == 1  # one alert, raised once
    states = wait_for(lambda: (s := [d["state"] for d in listener.on(twin_cfg.twin_state_topic)])
                      and s[-1] == "healthy" and s, what="the twin state topic")
    assert states[-5:] == ["initializing", "healthy", "degraded", "critical", "healthy"]

    assert engine.writer.flush(5.0)
    history = engine.store.history(SENSOR, "temperature")
    assert [r["value"] for r in history] == [22.0, 32, 32, 32, 37, 37, 37, 20, 20, 20, 20]
    stored = engine.store.alerts(device=SENSOR)
    assert len(stored) == 1
    assert stored[0]["resolved_at"]
    assert stored[0]["severity"] == "critical"
    moves = [(t["from_state"], t["to_state"]) for t in engine.store.transitions(SENSOR)]
    assert ("degraded", "critical") in moves
    status = wait_for(lambda: (s := engine.status_file.read()) and s["ingest"]["valid"] == 11
                      and s, what="status.json counting 11 valid messages")
    assert status["twins"] == len(lab.twins)
    assert status["states"]["healthy"] == 1


def test_heartbeat_timeout_and_last_will(make_engine, make_device) -> None:
    engine = make_engine()
    device = make_device()
    device.birth()
    device.send({"temperature": 20.0})
    wait_for(lambda: engine.twin(SENSOR)["state"] == "healthy", what="healthy")
    start = time.monotonic()
    wait_for(lambda: engine.twin(SENSOR)["state"] == "offline", what="heartbeat timeout")
    assert 0.8 < time.monotonic() - start < 2.0  # heartbeat_s is 1.0 in this lab
    assert "heartbeat" in engine.twin(SENSOR)["reason"]
    assert any(a["kind"] == "offline" for a in engine.open_alerts())

    device.birth()
    wait_for(lambda: engine.twin(SENSOR)["state"] == "initializing", what="birth again")
    assert not any(a["kind"] == "offline" for a in engine.open_alerts())
    device.send({"temperature": 20.0})
    device.die()  # well inside the 1 s heartbeat: only the last will can make it offline
    wait_for(lambda: engine.twin(SENSOR)["state"] == "offline", timeout=0.8, what="last will")
    assert "last will" in engine.twin(SENSOR)["reason"]


def test_value_on_threshold_does_not_flap(make_engine, make_device) -> None:
    engine = make_engine()
    device = make_device()
    device.birth()
    for i in range(30):  # noise around the normal band's upper edge, 30
        device.send({"temperature": 30.0 + (0.3 if i % 2 else -0.3)})
    device.send({"temperature": 30.2})
    device.send({"temperature": 30.4})
    wait_for(lambda: engine.twin(SENSOR)["messages"] == 32, what="32 messages")
    assert engine.writer.flush(5.0)
    moves = [t["to_state"] for t in reversed(engine.store.transitions(SENSOR))]
    assert moves == ["initializing", "healthy", "degraded"]


def test_aggregates_published(make_engine, make_device, make_listener, lab) -> None:
    line = "/".join(lab.twins[SENSOR].uns_path.split("/")[:4])
    topic = lab.runtime.aggregates[line]
    listener = make_listener([topic])
    engine = make_engine()
    device = make_device()
    device.birth()
    device.send({"temperature": 20.0})
    wait_for(lambda: engine.twin(SENSOR)["state"] == "healthy", what="healthy")
    line_twins = sum(1 for t in lab.twins.values() if t.level_paths[2] == line)
    doc = wait_for(lambda: [d for d in listener.on(topic) if d["states"]["healthy"] == 1],
                   what="an aggregate with the healthy sensor")[-1]
    assert doc["twins"] == line_twins
    assert doc["path"] == line
    assert doc["states"]["offline"] == line_twins - 1
    assert 0 < doc["quality"] <= 1
    assert doc["open_alerts"] == 0
    site = "/".join(line.split("/")[:2])
    assert engine.aggregates()[site]["twins"] > line_twins


def test_command_ack_and_timeout(make_engine, make_device) -> None:
    engine = make_engine()
    device = make_device()
    ack = engine.command(SENSOR, "set_period", {"period_s": 1}, timeout=3.0)
    assert ack["result"] == "ok"
    assert ack["detail"] == "done"
    assert device.commands[-1]["command"] == "set_period"
    assert device.commands[-1]["args"] == {"period_s": 1}
    device.auto_ack = None
    with pytest.raises(CommandTimeout):
        engine.command(SENSOR, "reboot", timeout=0.3)
    assert engine.commands.pending == 0


def test_maintenance_suppresses_alerts(make_engine, make_device, make_listener, lab) -> None:
    engine = make_engine()
    device = make_device()
    device.birth()
    device.send({"temperature": 20.0})
    wait_for(lambda: engine.twin(SENSOR)["state"] == "healthy", what="healthy")
    engine.set_maintenance(SENSOR, True, "alice").result(2.0)
    assert engine.twin(SENSOR)["state"] == "maintenance"
    for _ in range(3):
        device.send({"temperature": 40.0})
    wait_for(lambda: engine.twin(SENSOR)["messages"] == 4, what="4 messages")
    assert engine.twin(SENSOR)["state"] == "maintenance"
    assert not engine.open_alerts()
    # Leaving maintenance over MQTT, as the API does from its own process.
    control = f"{lab.runtime.enterprise}/_twin/{SENSOR}/control"
    engine.client.publish(control, orjson.dumps({"maintenance": False, "by": "bob"}), 1)
    wait_for(lambda: engine.twin(SENSOR)["state"] == "critical", what="critical after")
    assert "maintenance off by bob" in engine.twin(SENSOR)["reason"]


@pytest.mark.postgres
def test_engine_on_postgres(lab, make_device) -> None:
    name = f"dtnlab_test_{uuid.uuid4().hex[:10]}"
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}".encode())
    engine = Engine(lab, engine_config(),
                    store=PostgresStore(f"postgresql://postgres@127.0.0.1:5432/{name}"))
    try:
        engine.start()
        wait_for(engine.client.connected.is_set, what="the engine to connect")
        device = make_device()
        device.birth()
        for t in (20.0, 21.0, 22.0):
            device.send({"temperature": t})
        wait_for(lambda: engine.twin(SENSOR)["messages"] == 3, what="3 messages")
        assert engine.writer.flush(5.0)
        assert [r["value"] for r in engine.store.history(SENSOR, "temperature")] == [20, 21, 22]
        assert engine.store.latest(SENSOR)[0]["value"] == 22.0
        assert engine.store.transitions(SENSOR)[0]["to_state"] == "healthy"
    finally:
        engine.stop()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)".encode())


def test_command_line_entry_point(lab, broker) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "dtnlab.runtime", "engine", "--lab",
                             str(lab.root)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "DTN_DATABASE_URL": ""})
    status = StatusFile(lab.run_dir / "engine" / "status.json")
    try:
        doc = wait_for(lambda: (s := status.read()) and s["mqtt_connected"] and s, timeout=15,
                       what="the engine's status.json")
        assert doc["twins"] == len(lab.twins)
        assert doc["states"]["offline"] == len(lab.twins)
        assert doc["storage"]["backend"] == "sqlite"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0, out.decode()
    assert (lab.run_dir / "dtnlab.sqlite3").exists()
