"""Fixtures for emulator tests: a small generated lab, its real broker, a watcher, emulators."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dtnlab.runtime.labfiles import LabFiles
from tests.broker import Broker
from tests.runtime.emulator.smalllab import Watcher, generate_small_lab, lab_files, start_emulator
from tests.waiting import stop_process


@pytest.fixture
def lab_dir(tmp_path: Path) -> Path:
    return generate_small_lab(tmp_path)


@pytest.fixture
def broker(lab_dir: Path) -> Iterator[Broker]:
    with Broker(lab_dir) as running:
        yield running


@pytest.fixture
def lab(lab_dir: Path, broker: Broker) -> LabFiles:
    return lab_files(lab_dir)


@pytest.fixture
def watcher(lab: LabFiles) -> Iterator[Watcher]:
    ent = lab.runtime.enterprise
    every = f"{ent}/+/+/+/+/+"
    watching = Watcher(lab, [f"{every}/telemetry", f"{every}/status"])
    yield watching
    watching.close()


@pytest.fixture
def emulator(lab_dir: Path, lab: LabFiles) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(*devices: str) -> subprocess.Popen[bytes]:
        proc = start_emulator(lab_dir, *devices)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        stop_process(proc)
