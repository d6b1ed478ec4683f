"""The netns planner, names and impairments: pure rules, no root needed."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from dtnlab.generators import writer
from dtnlab.generators.pipeline import render_lab
from dtnlab.inventory.source import FileSource
from dtnlab.runtime.netns.addresses import addresses_from_netbox
from dtnlab.runtime.netns.impairment import Impairment, ImpairmentError
from dtnlab.runtime.netns.names import IFNAMSIZ, interface_name, namespace_name
from dtnlab.runtime.netns.plan import PlanError, plan_network
from tests.conftest import DEMO_INVENTORY


def _node(node_id: str, role: str, twinned: bool = True, **extra: Any) -> dict[str, Any]:
    return {"id": node_id, "name": node_id.upper(), "role": role, "twinned": twinned, **extra}


def _link(a: str, a_if: str, b: str, b_if: str, **impairment: str) -> dict[str, Any]:
    return {"a": a, "a_interface": a_if, "b": b, "b_interface": b_if, "label": "",
            "impairment": impairment}


LINE = {
    "nodes": [_node("core", "core-switch", False), _node("gw", "gateway"),
              _node("sw", "access-switch"), _node("plc", "plc"), _node("tt", "sensor")],
    "links": [_link("core", "eth1", "gw", "eth8"), _link("gw", "eth1", "sw", "eth24"),
              _link("plc", "eth1", "sw", "eth1", delay="2ms"), _link("tt", "eth1", "sw", "eth2")],
}


def test_kinds_addresses_and_routes_are_planned_without_netbox_addresses() -> None:
    plan = plan_network("t", LINE)
    kinds = {n.id: n.kind for n in plan.nodes.values()}
    assert kinds == {"core": "router", "gw": "router", "sw": "bridge", "plc": "host",
                     "tt": "host", "svc": "service"}
    gw_lan = plan.nodes["gw"].interface("eth1").addresses[0]
    assert gw_lan == "198.19.0.1/24"  # the router takes .1 of the planned LAN
    plc = plan.nodes["plc"]
    assert plc.routes[0].dst == "default"
    assert plc.routes[0].via == "198.19.0.1"
    assert plan.nodes["sw"].interface("br0").addresses  # the switch's own address
    core_routes = {r.dst: r.via for r in plan.nodes["core"].routes}
    assert core_routes["198.19.0.0/24"] == plan.nodes["gw"].interface("eth8").addresses[0][:-3]
    svc = plan.nodes["svc"]
    assert plan.attach == "core"
    assert svc.routes[0].dst == "default"
    assert plan.broker_address == svc.interface("eth1").addresses[0].split("/")[0]
    p2p = ipaddress.ip_interface(plan.nodes["core"].interface("eth1").addresses[0])
    assert p2p.network.prefixlen == 30
    assert p2p.network.subnet_of(
        ipaddress.ip_network("198.18.0.0/16"))


def test_netbox_addresses_are_used_and_the_rest_filled_in() -> None:
    addresses = {"gw": {"eth1": ["10.1.1.1/24"]}, "plc": {"eth1": ["10.1.1.10/24"]},
                 "core": {"mgmt0": ["172.30.0.10/24"]}}
    plan = plan_network("t", LINE, addresses)
    assert plan.nodes["plc"].interface("eth1").addresses == ["10.1.1.10/24"]
    tt = ipaddress.ip_interface(plan.nodes["tt"].interface("eth1").addresses[0])
    assert tt in ipaddress.ip_network("10.1.1.0/24")
    assert str(tt) not in (
        "10.1.1.1/24", "10.1.1.10/24")
    assert plan.nodes["sw"].kind == "bridge"  # a mgmt0 address does not make it a router
    assert plan.nodes["plc"].routes[0].via == "10.1.1.1"


def test_demo_plant_routes_reach_every_subnet_with_netbox_addresses(tmp_path: Path) -> None:
    runtime = _demo_runtime(tmp_path)
    doc = yaml.safe_load(DEMO_INVENTORY.read_text())
    plan = plan_network("demo-plant", runtime["topology"],
                        addresses_from_netbox(doc, runtime["topology"]["nodes"]))
    assert plan.nodes["aar-l1-c1-plc-01"].interface("eth1").addresses == ["10.1.1.10/24"]
    assert plan.nodes["aar-core-01"].interface("eth24").addresses == ["10.255.0.0/31"]
    subnets = {ipaddress.ip_interface(a).network for n in plan.nodes.values()
               for i in n.interfaces if i.peer for a in i.addresses}
    for router in (n for n in plan.nodes.values() if n.kind == "router"):
        reached = {ipaddress.ip_network(r.dst) for r in router.routes} | {
            ipaddress.ip_interface(a).network for i in router.interfaces for a in i.addresses}
        assert subnets <= reached, router.id
    brno = plan.nodes["brn-core-01"]
    assert any(r.dst == "198.18.0.0/30" and r.via == "10.255.0.0" for r in brno.routes)


def test_names_fit_linux_limits_and_stay_deterministic() -> None:
    taken: set[str] = set()
    long_name = interface_name("GigabitEthernet0/0/1", taken)
    assert long_name.startswith("if-")
    assert len(long_name) <= IFNAMSIZ
    assert interface_name("GigabitEthernet0/0/1", set()) == long_name
    assert interface_name("eth1", taken) == "eth1"
    assert interface_name("eth1", taken) != "eth1"  # a clash is renamed, not reused
    ns = namespace_name("lab", "x" * 200)
    assert len(ns) <= 60
    assert ns == namespace_name("lab", "x" * 200)


@pytest.mark.parametrize(("fields", "expected"), [
    ({"delay": "20ms", "jitter": "2ms"}, ["delay", "20ms", "2ms"]),
    ({"delay": "0.5s", "loss": "1%"}, ["delay", "500ms", "loss", "1%"]),
    ({"jitter": "5ms", "loss": "0.5"}, ["delay", "0ms", "5ms", "loss", "0.5%"]),
], ids=["delay-jitter", "seconds-loss", "bare-number"])
def test_impairments_parse_to_netem_arguments(fields: dict[str, str], expected: list[str]) -> None:
    assert Impairment.from_fields(fields).netem_args() == expected


@pytest.mark.parametrize("fields", [{"delay": "fast"}, {"loss": "150%"}, {"rate": "1mbit"}],
                         ids=["bad-time", "loss-over-100", "unknown-field"])
def test_bad_impairments_are_named(fields: dict[str, str]) -> None:
    with pytest.raises(ImpairmentError, match=next(iter(fields))):
        Impairment.from_fields(fields)


def test_bad_topology_is_reported_with_the_link() -> None:
    topology = {"nodes": [_node("a", "plc")], "links": [_link("a", "eth1", "ghost", "eth1")]}
    with pytest.raises(PlanError, match=r"topology.links\[0\] \(a:eth1 - ghost:eth1\)"):
        plan_network("t", topology)


def _demo_runtime(folder: Path) -> dict[str, Any]:
    """The demo plant's runtime.json, generated by the real generators into `folder`."""
    lab = FileSource(DEMO_INVENTORY).load()
    rendered = render_lab(lab, folder)
    writer.write(folder, rendered.files, rendered.inventory_digest)
    return json.loads((folder / "runtime.json").read_text())  # type: ignore[no-any-return]
