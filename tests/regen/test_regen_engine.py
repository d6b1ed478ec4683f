"""The twin engine reloads in place: twins keep their object, state and counters across a regen."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from dtnlab.runtime.engine import Engine, EngineConfig
from dtnlab.runtime.labfiles import load_lab
from dtnlab.runtime.reconcile import lab_digest
from dtnlab.runtime.storage import SqliteStore
from tests.broker import Broker
from tests.regen.regenlab import (
    MOVED,
    add_sensor,
    edited,
    inventory,
    move_sensor,
    regen,
    remove_device,
    set_threshold,
    write,
)
from tests.runtime.engine.twinlab import Device
from tests.waiting import wait_for

pytestmark = pytest.mark.mosquitto

PLC = "aar-l1-c1-plc-01"
GONE = "aar-l1-c1-vt-01"
NEW = "aar-l1-c1-tt-02"


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Path, Path, Engine, Broker]]:
    path, _ = inventory(tmp_path, heartbeat_s=30.0)  # no heartbeat timeout mid-test
    assert regen(path, tmp_path / "labs") == 0
    lab_dir = tmp_path / "labs" / "rg"
    broker = Broker(lab_dir).start()
    engine = Engine(load_lab(lab_dir),
                    EngineConfig(client_id=f"dtn-engine-test-{uuid.uuid4().hex[:8]}",
                                 tick_s=0.05),
                    store=SqliteStore(lab_dir / "run" / "test.sqlite3"))
    engine.start()
    try:
        yield path, lab_dir, engine, broker
    finally:
        engine.stop()
        broker.stop()


def test_reload_reconfigures_moves_adds_and_removes_in_place(
        running: tuple[Path, Path, Engine, Broker]) -> None:
    path, lab_dir, engine, broker = running
    data = yaml.safe_load(path.read_text())
    sensor = Device(engine.lab, MOVED)
    sensor.birth()
    for _ in range(3):
        sensor.send({"temperature": 22.0})
    wait_for(lambda: engine.twins[MOVED].state == "healthy" and engine.twins[MOVED].messages == 3,
             what="the sensor healthy")
    twin = engine.twins[MOVED]
    plc_twin, plc_since = engine.twins[PLC], engine.twins[PLC].since
    messages = twin.messages
    sensor.close()

    write(path, edited(data, lambda d: (move_sensor(d), add_sensor(d),  # type: ignore[func-returns-value]
                                        remove_device(d, "AAR-L1-C1-VT-01"),
                                        set_threshold(d, [23, 30]))))
    assert regen(path, lab_dir.parent, "--no-apply") == 0
    broker.reload()  # the moved device's new topics in the ACL
    plan = engine.reload()
    assert plan.moved == (MOVED,)
    assert plan.added == (NEW,)
    assert plan.removed == (GONE,)
    wait_for(lambda: engine.reloads == 1, what="the engine thread to apply the reload")

    assert engine.twins[MOVED] is twin  # the same twin: state, counters, alerts kept
    assert twin.messages == messages
    assert "/line-3/" in twin.cfg.uns_path
    # 22 degC is outside the new normal band [23, 30]: the state follows at once
    assert twin.state == "degraded"
    assert engine.twins[PLC] is plc_twin
    assert engine.twins[PLC].since == plc_since
    assert GONE not in engine.twins
    assert engine.twins[NEW].state == "offline"
    assert engine.status()["lab_sha256"] == lab_digest(lab_dir)

    moved = Device(load_lab(lab_dir), MOVED)
    try:
        for _ in range(4):
            moved.send({"temperature": 26.0})
            time.sleep(0.05)
        wait_for(lambda: twin.state == "healthy", what="telemetry on the new topic")
        assert twin.messages >= messages + 4
    finally:
        moved.close()
    assert engine.failures["unknown_device"] == 0
