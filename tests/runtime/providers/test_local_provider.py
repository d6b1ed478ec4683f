"""The local provider with real processes: up, status, a crashed node restarted, down cleanly."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from dtnlab.runtime.providers import LocalProvider, ProviderError, provider_class
from dtnlab.runtime.providers.process import pid_files
from tests.runtime.emulator.smalllab import generate_small_lab, lab_processes
from tests.waiting import wait_for

pytestmark = pytest.mark.mosquitto


def connected(lab_dir: Path) -> int:
    total = 0
    for path in (lab_dir / "run" / "emulator").glob("*.json"):
        total += json.loads(path.read_text())["connected"]
    return total


@pytest.fixture
def lab_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.delenv("DTN_DATABASE_URL", raising=False)  # the engine stores in run/ (SQLite)
    folder = generate_small_lab(tmp_path)
    yield folder
    LocalProvider(folder).down()  # whatever a failed test left running


def test_up_reports_every_twin_then_down_leaves_no_process(lab_dir: Path) -> None:
    provider = LocalProvider(lab_dir, shards=2)
    status = provider.up(timeout=60)
    nodes = {n.name: n for n in status.nodes}
    assert set(nodes) >= {"supervisor", "broker", "engine", "emulator-0", "emulator-1"}
    assert all(n.alive and n.state == "running" for n in nodes.values())
    twins = json.loads((lab_dir / "runtime.json").read_text())["twins"]
    assert status.twins.source == "twin state topics"
    assert set(status.twins.states) == set(twins)
    assert set(status.twins.devices.values()) == {"online"}
    assert connected(lab_dir) == len(twins)
    # the broker runs unprivileged from its staged copy, persisting into run/mosquitto/
    broker = pid_files(lab_dir)["broker"]
    if os.geteuid() == 0:
        assert Path(f"/proc/{broker.pid}").stat().st_uid != 0
    assert (lab_dir / "run" / "mosquitto" / "mosquitto.log").exists()
    again = provider.up(timeout=10)  # a second up finds the lab running and starts nothing
    assert [(n.name, n.pid) for n in again.nodes] == [(n.name, n.pid) for n in status.nodes]

    stopped = provider.down()
    assert stopped[0] == "supervisor"
    assert lab_processes(lab_dir) == []
    assert pid_files(lab_dir) == {}
    after = provider.status()
    assert not after.running
    assert after.twins.states == {}
    assert provider.down() == []


def test_a_crashed_node_is_restarted_and_its_devices_reconnect(lab_dir: Path) -> None:
    provider = LocalProvider(lab_dir, shards=1)
    provider.up(timeout=60)
    twins = len(json.loads((lab_dir / "runtime.json").read_text())["twins"])
    crashed = pid_files(lab_dir)["emulator-0"]
    os.kill(crashed.pid, signal.SIGKILL)
    emulator = wait_for(lambda: next((n for n in provider.nodes() if n.name == "emulator-0"
                                      and n.alive and n.pid != crashed.pid
                                      and n.restarts >= 1), None),
                        timeout=10, what="the supervisor to restart emulator-0")
    assert emulator.restarts == 1
    assert emulator.last_exit == -signal.SIGKILL
    wait_for(lambda: json.loads((lab_dir / "run/emulator/emulator-0.json").read_text())["pid"]
             == emulator.pid and connected(lab_dir) == twins, timeout=10,
             what="the restarted emulator's devices to reconnect")
    provider.down()
    assert lab_processes(lab_dir) == []


def test_down_after_the_supervisor_crashed_stops_its_orphans(lab_dir: Path) -> None:
    provider = LocalProvider(lab_dir)
    nodes = {n.name for n in provider.up(timeout=60).nodes} - {"supervisor"}
    before = lab_processes(lab_dir)
    supervisor = pid_files(lab_dir)["supervisor"]
    os.kill(supervisor.pid, signal.SIGKILL)
    wait_for(lambda: not supervisor.alive(), what="the supervisor to die")
    orphans = [p for p in before if p != supervisor.pid]
    assert set(orphans) <= set(lab_processes(lab_dir)), "the nodes outlive their supervisor"
    assert {"broker", "engine", "emulator-0"} <= nodes
    assert {n.name for n in provider.nodes() if n.alive} == nodes
    assert set(provider.down()) == nodes
    assert lab_processes(lab_dir) == []


def test_up_explains_a_missing_lab_and_the_registry_lists_providers(tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match="generate the lab first"):
        LocalProvider(tmp_path).up(timeout=1)
    with pytest.raises(ProviderError, match="supported providers are local"):
        provider_class("kubernetes")
