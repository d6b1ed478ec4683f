"""Fixtures for the twin engine: a generated demo lab, its real broker, devices and an engine."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dtnlab.runtime.engine import Engine
from dtnlab.runtime.labfiles import LabFiles, load_lab
from dtnlab.runtime.storage import SqliteStore
from tests.broker import Broker
from tests.labs import generate_demo, tune_twin
from tests.runtime.engine.twinlab import SENSOR, Device, Listener, RestartableBroker, engine_config
from tests.waiting import wait_for


@pytest.fixture
def lab_dir(tmp_path: Path) -> Path:
    folder = generate_demo(tmp_path / "lab")
    tune_twin(folder, SENSOR, period_s=0.1, heartbeat_s=1.0)
    return folder


@pytest.fixture
def broker(lab_dir: Path) -> Iterator[RestartableBroker]:
    with RestartableBroker(lab_dir) as b:
        yield b


@pytest.fixture
def lab(lab_dir: Path, broker: Broker) -> LabFiles:
    return load_lab(lab_dir)


@pytest.fixture
def make_engine(lab: LabFiles) -> Iterator[Callable[..., Engine]]:
    engines: list[Engine] = []

    def make(**overrides: Any) -> Engine:
        engine = Engine(lab, engine_config(**overrides),
                        store=SqliteStore(lab.run_dir / "test.sqlite3"))
        engine.start()
        engines.append(engine)
        wait_for(engine.client.connected.is_set, what="the engine to connect")
        return engine

    yield make
    for engine in engines:
        engine.stop()


@pytest.fixture
def make_device(lab: LabFiles) -> Iterator[Callable[..., Device]]:
    devices: list[Device] = []

    def make(twin_id: str = SENSOR, **kwargs: Any) -> Device:
        device = Device(lab, twin_id, **kwargs)
        devices.append(device)
        return device

    yield make
    for device in devices:
        device.close()


@pytest.fixture
def make_listener(lab: LabFiles) -> Iterator[Callable[[list[str]], Listener]]:
    listeners: list[Listener] = []

    def make(topics: list[str]) -> Listener:
        listener = Listener(lab, topics)
        listeners.append(listener)
        return listener

    yield make
    for listener in listeners:
        listener.close()
