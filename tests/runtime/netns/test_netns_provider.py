"""The netns provider end to end, as root: real Mosquitto, engine and emulators in namespaces.

Each test generates its lab into a temporary folder under its own lab name, so its namespaces
(`dtn-nt-...`) are its own; `down` runs even when the test fails, and nothing may be left.
"""

from __future__ import annotations

import sqlite3
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dtnlab.cli import main as dtnlab
from dtnlab.runtime.netns.names import host_link_name, lab_prefix
from dtnlab.runtime.netns.state import load_plan, netns_dir
from dtnlab.runtime.providers.netns import NetnsProvider
from dtnlab.runtime.providers.states import engine_status
from tests.runtime.netns.netnslab import (
    LINE1_TWINS,
    LINE2_TWINS,
    UPLINK_L1,
    generate_demo_lab,
    generate_small_lab,
    lab_leftovers,
    require_root,
)
from tests.waiting import wait_for

pytestmark = [pytest.mark.netns, pytest.mark.mosquitto]


def _running(provider: NetnsProvider, lab: str) -> Iterator[NetnsProvider]:
    require_root()
    provider.down()  # what a killed earlier run left behind
    try:
        yield provider
    finally:
        provider.down()
        assert lab_leftovers(lab_prefix(lab), host_link_name(lab)) == []
        veths = subprocess.run(["ip", "-o", "link", "show", "type", "veth"], capture_output=True,
                               text=True, check=False).stdout
        assert host_link_name(lab) not in veths


@pytest.fixture
def small_lab(tmp_path: Path) -> Iterator[NetnsProvider]:
    folder = generate_small_lab(tmp_path / "labs" / "nt-small", "nt-small")
    yield from _running(NetnsProvider(folder), "nt-small")


@pytest.fixture
def demo_lab(tmp_path: Path) -> Iterator[NetnsProvider]:
    folder = generate_demo_lab(tmp_path / "labs" / "nt-demo", "nt-demo")
    yield from _running(NetnsProvider(folder), "nt-demo")


def _stored_devices(lab_dir: Path) -> set[str]:
    path = lab_dir / "run" / "dtnlab.sqlite3"
    if not path.exists():
        return set()
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT DISTINCT device FROM telemetry")}


def _states(provider: NetnsProvider) -> dict[str, str]:
    return provider.status(wait_s=1.0).twins.states


def test_demo_plant_telemetry_crosses_the_veths_into_stored_twin_state(
        demo_lab: NetnsProvider) -> None:
    status = demo_lab.up(timeout=120)
    twins = set(status.twins.states)
    assert len(twins) >= 40
    assert set(status.twins.states.values()) == {"healthy"}
    wait_for(lambda: _stored_devices(demo_lab.lab_dir) >= twins, 20, "telemetry of every twin")
    plan = load_plan(netns_dir(demo_lab.lab_dir))
    assert plan.addresses_from == "runtime.json"  # NetBox's addresses, as generated
    plc = plan.nodes["aar-l1-c1-plc-01"]
    assert plc.address == "10.1.1.10"  # the PLC's eth1 address in the demo inventory
    pids = subprocess.run(["ip", "netns", "pids", plc.ns], capture_output=True, text=True,
                          check=True).stdout.split()
    assert pids, "the PLC's emulator runs inside the PLC's namespace"
    broker_log = (demo_lab.lab_dir / "run" / "mosquitto" / "mosquitto.log").read_text()
    assert f"from {plc.address}:" in broker_log  # it reached the broker from its NetBox address
    brno = plan.nodes["brn-l1-c1-plc-01"]
    assert f"from {brno.address}:" in broker_log  # across the WAN link, 20 ms each way


def _lag_samples(lab_dir: Path, count: int) -> list[float]:
    """The engine's publish -> state lag, once per status write (every second)."""
    samples: list[float] = []
    last_ts = 0.0
    deadline = time.monotonic() + count * 2 + 5
    while len(samples) < count and time.monotonic() < deadline:
        status = engine_status(lab_dir)
        if status and status["ts"] != last_ts:
            last_ts = status["ts"]
            samples.append(float(status["lag_s"]) * 1000)
        time.sleep(0.2)
    return samples


def test_link_down_takes_a_line_offline_and_delay_shows_in_latency(
        small_lab: NetnsProvider) -> None:
    status = small_lab.up(timeout=60)
    assert set(status.twins.states.values()) == {"healthy"}
    lab_args = ["--lab", "nt-small", "--labs-dir", str(small_lab.lab_dir.parent)]

    # 40 ms on the services link: every message crosses it once on its way to the twin
    baseline = statistics.median(_lag_samples(small_lab.lab_dir, 5))
    assert dtnlab(["link", "svc", "aar-core-01", "delay", "40ms", *lab_args]) == 0
    time.sleep(1.5)
    delayed = statistics.median(_lag_samples(small_lab.lab_dir, 5))
    print(f"publish -> state lag, median: {baseline:.1f} ms, with 40 ms: {delayed:.1f} ms")
    assert 35 <= delayed - baseline <= 90, (baseline, delayed)
    assert dtnlab(["link", "svc", "aar-core-01", "clear", *lab_args]) == 0

    # unplug line 1's uplink: its switch and devices go offline, line 2 stays healthy
    line1 = (*LINE1_TWINS, UPLINK_L1[0])
    assert dtnlab(["link", *UPLINK_L1, "down", *lab_args]) == 0
    cut = time.monotonic()
    states = wait_for(lambda: (s := _states(small_lab)) and all(
        s.get(t) == "offline" for t in line1) and s, 20, "line 1 twins to go offline")
    assert all(states[t] == "healthy" for t in LINE2_TWINS), states
    offline_s = time.monotonic() - cut
    assert dtnlab(["link", *UPLINK_L1, "up", *lab_args]) == 0
    plugged = time.monotonic()
    wait_for(lambda: (s := _states(small_lab)) and all(
        s.get(t) == "healthy" for t in line1), 40, "line 1 twins to recover")
    print(f"line 1 offline {offline_s:.1f} s after the cut (heartbeat 3 s), healthy again "
          f"{time.monotonic() - plugged:.1f} s after the link came back")
