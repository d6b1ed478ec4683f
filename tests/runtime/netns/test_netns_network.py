"""The netns network layer on its own, as root: namespaces, veths, bridge, routes, impairments.

Every namespace and link is made by the test and removed at its end, even on failure; traffic
only goes to addresses inside those namespaces.
"""

from __future__ import annotations

import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dtnlab.runtime.netns.build import build, teardown
from dtnlab.runtime.netns.iproute import ns_pids
from dtnlab.runtime.netns.links import change_link
from dtnlab.runtime.netns.names import host_link_name, lab_prefix
from dtnlab.runtime.netns.plan import NetworkPlan, plan_network
from tests.runtime.netns.netnslab import lab_leftovers, require_root
from tests.waiting import wait_for

pytestmark = pytest.mark.netns

LAB = "nt-net"
RTT = re.compile(r"= [\d.]+/([\d.]+)/")


def _node(node_id: str, role: str) -> dict[str, Any]:
    return {"id": node_id, "name": node_id.upper(), "role": role, "twinned": True}


def _link(a: str, a_if: str, b: str, b_if: str) -> dict[str, Any]:
    return {"a": a, "a_interface": a_if, "b": b, "b_interface": b_if, "label": "",
            "impairment": {}}


# core - gateway - two access switches, two devices on each; a long NetBox interface name too
TOPOLOGY = {
    "nodes": [_node("core", "core-switch"), _node("gw", "gateway"), _node("sw1", "access-switch"),
              _node("sw2", "access-switch"), _node("plc1", "plc"), _node("tt1", "sensor"),
              _node("plc2", "plc"), _node("tt2", "sensor")],
    "links": [_link("core", "GigabitEthernet0/0/1", "gw", "eth8"),
              _link("gw", "eth1", "sw1", "eth24"), _link("gw", "eth2", "sw2", "eth24"),
              _link("plc1", "eth1", "sw1", "eth1"), _link("tt1", "eth1", "sw1", "eth2"),
              _link("plc2", "eth1", "sw2", "eth1"), _link("tt2", "eth1", "sw2", "eth2")],
}
ADDRESSES = {"gw": {"eth1": ["10.61.1.1/24"], "eth2": ["10.61.2.1/24"]},
             "plc1": {"eth1": ["10.61.1.10/24"]}, "plc2": {"eth1": ["10.61.2.10/24"]}}


def _ping(plan: NetworkPlan, source: str, address: str, count: int = 3,
          interval: float = 0.05) -> tuple[int, float | None]:
    """(replies received, average RTT in ms) of pings from `source`'s namespace."""
    result = subprocess.run(
        ["ip", "netns", "exec", plan.nodes[source].ns, "ping", "-n", "-q", "-c", str(count),
         "-i", str(interval), "-W", "1", address], capture_output=True, text=True, check=False,
        timeout=30)
    received = re.search(r"(\d+) received", result.stdout)
    rtt = RTT.search(result.stdout)
    return (int(received.group(1)) if received else 0, float(rtt.group(1)) if rtt else None)


@pytest.fixture
def network(tmp_path: Path) -> Iterator[tuple[NetworkPlan, Path]]:
    require_root()
    run_dir = tmp_path / "run" / "netns"
    teardown(LAB, run_dir)  # a previous run that was killed
    plan = plan_network(LAB, TOPOLOGY, ADDRESSES)
    try:
        yield build(plan, run_dir), run_dir
    finally:
        teardown(LAB, run_dir)
        assert lab_leftovers(lab_prefix(LAB), host_link_name(LAB)) == []


def test_every_device_reaches_the_broker_over_the_lab_links(
        network: tuple[NetworkPlan, Path]) -> None:
    plan, _run = network
    for device in ("plc1", "tt1", "plc2", "tt2", "sw1", "gw", "core"):
        received, _rtt = _ping(plan, device, plan.broker_address, count=2)
        assert received == 2, device
    assert plan.nodes["plc1"].interface("eth1").addresses == ["10.61.1.10/24"]
    assert _ping(plan, "plc1", "10.61.2.10", count=2)[0] == 2  # line to line, through gw
    core = plan.nodes["core"]
    assert any(i.netbox == "GigabitEthernet0/0/1" and len(i.dev) <= 15 for i in core.interfaces)


def test_delay_and_loss_show_in_pings_and_clear_again(network: tuple[NetworkPlan, Path]) -> None:
    plan, run_dir = network
    _received, baseline = _ping(plan, "svc", "10.61.1.10", count=5)
    assert baseline is not None
    change = change_link(run_dir, "sw1", "gw", "delay", "40ms")
    assert "delay 40ms" in change.after
    _received, delayed = _ping(plan, "svc", "10.61.1.10", count=5, interval=0.1)
    assert delayed is not None
    # the cable delays each direction: a round trip crosses it twice
    assert 75 <= delayed - baseline <= 130, (baseline, delayed, plan.shaper)
    _received, other_line = _ping(plan, "svc", "10.61.2.10", count=3)
    assert other_line is not None
    assert other_line < 20

    change_link(run_dir, "sw1", "gw", "clear")
    change_link(run_dir, "sw1", "gw", "loss", "30%")
    received, _rtt = _ping(plan, "svc", "10.61.1.10", count=60, interval=0.01)
    assert 5 <= received <= 55, received  # ~49% of round trips survive 30% each way
    change_link(run_dir, "sw1", "gw", "clear")
    _received, cleared = _ping(plan, "svc", "10.61.1.10", count=5)
    assert cleared is not None
    assert cleared < 20


def test_link_down_cuts_a_line_off_and_up_restores_it(network: tuple[NetworkPlan, Path]) -> None:
    plan, run_dir = network
    change_link(run_dir, "gw", "core", "down")
    assert _ping(plan, "plc1", plan.broker_address, count=2, interval=0.2)[0] == 0
    change_link(run_dir, "gw", "core", "up")  # the gateway's routes via core come back
    assert _ping(plan, "plc1", plan.broker_address, count=2, interval=0.2)[0] == 2
    change_link(run_dir, "sw1", "gw", "down")
    assert _ping(plan, "plc1", plan.broker_address, count=2, interval=0.2)[0] == 0
    assert _ping(plan, "plc2", plan.broker_address, count=2, interval=0.2)[0] == 2
    change_link(run_dir, "sw1", "gw", "up")
    assert _ping(plan, "plc1", plan.broker_address, count=2, interval=0.2)[0] == 2


def test_teardown_by_prefix_after_a_crash_spares_other_labs(tmp_path: Path) -> None:
    require_root()
    tiny = {"nodes": [_node("a", "gateway"), _node("b", "plc")],
            "links": [_link("a", "eth1", "b", "eth1")]}
    other = "nt-net-x"  # starts with LAB's prefix: must survive LAB's teardown
    teardown(LAB)
    teardown(other)
    sleeper: subprocess.Popen[bytes] | None = None
    try:
        plan = build(plan_network(LAB, tiny), tmp_path / "a")
        build(plan_network(other, tiny), tmp_path / "b")
        sleeper = subprocess.Popen(["ip", "netns", "exec", plan.nodes["b"].ns, "sleep", "300"])
        wait_for(lambda: ns_pids(plan.nodes["b"].ns), 5, "the process to enter the namespace")
        (tmp_path / "a" / "network.json").unlink()  # the crash lost the plan too
        removed = teardown(LAB)  # by prefix alone
        assert sorted(removed.namespaces) == sorted(n.ns for n in plan.nodes.values())
        assert sleeper.wait(timeout=10) == -signal.SIGTERM  # the process inside was stopped
        left = lab_leftovers(lab_prefix(LAB), host_link_name(LAB))
        assert not set(left) & {n.ns for n in plan.nodes.values()}
        assert len(lab_leftovers(lab_prefix(other), host_link_name(other))) == 4  # 3 ns + host
    finally:
        if sleeper is not None and sleeper.poll() is None:
            sleeper.kill()
        teardown(LAB)
        teardown(other)
    assert lab_leftovers(lab_prefix(LAB), host_link_name(LAB)) == []
    assert lab_leftovers(lab_prefix(other), host_link_name(other)) == []
