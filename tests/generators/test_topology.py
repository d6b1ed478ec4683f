"""containerlab topology: schema-valid, deterministic, within containerlab's limits, runnable."""

from __future__ import annotations

import copy
import ipaddress
from pathlib import Path
from typing import Any

import pytest
import yaml

from dtnlab.generators import clab_schema, topology
from dtnlab.generators.clab_check import check_topology, docker_run_plan
from dtnlab.generators.platforms import NODE_IMAGE, PlatformMap, load_platform_map
from dtnlab.generators.registry import GENERATORS
from dtnlab.generators.secrets import ensure_secrets
from dtnlab.generators.topology import (
    SERVICES,
    TOPOLOGY_FILE,
    TopologyError,
    render_topology,
    topology_document,
)
from dtnlab.inventory.build import build_lab
from dtnlab.inventory.errors import InventoryError
from dtnlab.inventory.model import Lab, Settings
from dtnlab.inventory.source import FileSource, lab_settings
from dtnlab.runtime.providers.clab import prepare
from tests.conftest import DEMO_INVENTORY
from tests.generators.clab_view import build_view, in_view, resolve, runtime_command

TWIN_PROFILE = {"period_s": 5, "heartbeat_s": 15, "metrics": {
    "temperature": {"type": "float", "unit": "degC", "min": -50, "max": 150,
                    "normal": [15, 30], "warning": [10, 35]}}}


def netbox_data(devices: int, *, per_switch: int = 20, names: dict[int, str] | None = None,
                mgmt_first: int = 10, mgmt_prefix: str = "172.31.0.0/22",
                iface_names: dict[int, str] | None = None,
                extra_cables: list[tuple[int, int]] | None = None) -> dict[str, Any]:
    """NetBox-shaped data: one core router, access switches under it, end devices under those.

    Every object is a dict as NetBox's REST API returns it. Device 1 is the core (not twinned);
    switches and end devices are twinned. `names` renames devices, `iface_names` renames the
    uplink interface (eth1) of end devices, `extra_cables` adds cables between interface ids.
    """
    names = names or {}
    iface_names = iface_names or {}
    switches = -(-(devices - 1) // (per_switch + 1))
    ends = devices - 1 - switches
    data: dict[str, list[dict[str, Any]]] = {
        "dcim.sites": [{"id": 1, "name": "Plant Big", "slug": "plant-big"}],
        "dcim.locations": [], "dcim.racks": [], "dcim.devices": [], "dcim.interfaces": [],
        "dcim.cables": [], "ipam.ip-addresses": [],
        "ipam.prefixes": [{"id": 1, "prefix": mgmt_prefix},
                          {"id": 2, "prefix": "10.0.0.0/8"}],
        "dcim.platforms": [{"id": i, "name": s, "slug": s} for i, s in
                           enumerate(["linux-router", "linux-bridge", "linux-iot"], start=1)],
        "dcim.device-roles": [{"id": i, "name": s, "slug": s} for i, s in
                              enumerate(["core-switch", "access-switch", "sensor"], start=1)],
        "dcim.device-types": [{"id": 1, "model": "Generic", "slug": "generic",
                               "manufacturer": {"slug": "acme", "name": "ACME"}}],
        "extras.tags": [{"id": 1, "name": "dtn-twin", "slug": "dtn-twin"}],
    }
    for area in (1, 2):
        data["dcim.locations"].append({"id": area, "name": f"Area {area}", "slug": f"area-{area}",
                                       "site": {"id": 1}})
        for line in (1, 2):
            loc = 10 * area + line
            data["dcim.locations"].append({"id": loc, "name": f"Line {line}",
                                           "slug": f"line-{line}", "site": {"id": 1},
                                           "parent": {"id": area}})
            data["dcim.racks"].append({"id": loc, "name": f"R{loc}", "site": {"id": 1},
                                       "location": {"id": loc}})
    counters = {"iface": 0, "ip": 0, "cable": 0}
    mgmt_net = ipaddress.ip_network(mgmt_prefix)

    def add_iface(dev: int, name: str, mgmt: bool = False) -> int:
        counters["iface"] += 1
        data["dcim.interfaces"].append({"id": counters["iface"], "device": {"id": dev},
                                        "name": name, "type": {"value": "1000base-t"},
                                        "mgmt_only": mgmt})
        return counters["iface"]

    def add_device(dev: int, role: int, platform: int, twinned: bool, rack: int | None) -> None:
        name = names.get(dev, f"dev-{dev:05d}")
        counters["ip"] += 1
        address = f"{mgmt_net[mgmt_first + dev - 1]}/{mgmt_net.prefixlen}"
        mgmt_iface = add_iface(dev, "mgmt0", mgmt=True)
        data["ipam.ip-addresses"].append({"id": counters["ip"], "address": address,
                                          "assigned_object_type": "dcim.interface",
                                          "assigned_object_id": mgmt_iface})
        obj: dict[str, Any] = {
            "id": dev, "name": name, "role": {"id": role}, "device_type": {"id": 1},
            "platform": {"id": platform}, "site": {"id": 1}, "status": {"value": "active"},
            "tags": [{"id": 1, "slug": "dtn-twin"}] if twinned else [],
            "primary_ip4": {"id": counters["ip"], "address": address},
            "config_context": {"dtnlab": TWIN_PROFILE} if twinned else {},
        }
        if rack is not None:
            obj["rack"] = {"id": rack}
        data["dcim.devices"].append(obj)

    def cable(a: int, b: int) -> None:
        counters["cable"] += 1
        data["dcim.cables"].append({
            "id": counters["cable"], "label": "",
            "a_terminations": [{"object_type": "dcim.interface", "object_id": a}],
            "b_terminations": [{"object_type": "dcim.interface", "object_id": b}]})

    racks = [11, 12, 21, 22]
    add_device(1, 1, 1, twinned=False, rack=None)
    core_ports = [add_iface(1, f"eth{k}") for k in range(1, switches + 1)]
    dev = 1
    remaining = ends
    for s in range(switches):
        dev += 1
        switch = dev
        add_device(switch, 2, 2, twinned=True, rack=racks[s % 4])
        cable(core_ports[s], add_iface(switch, "eth48"))
        for port in range(1, min(per_switch, remaining) + 1):
            dev += 1
            add_device(dev, 3, 3, twinned=True, rack=racks[s % 4])
            cable(add_iface(switch, f"eth{port}"), add_iface(dev, iface_names.get(dev, "eth1")))
        remaining -= min(per_switch, remaining)
    for a, b in extra_cables or []:
        cable(a, b)
    return data


def synthetic_lab(devices: int, *, lab_prefix: str | None = "172.31.0.0/22",
                  **kwargs: Any) -> Lab:
    """A lab built from netbox_data; `lab_prefix` is the lab's mgmt_prefix setting."""
    settings = Settings(lab="big", mgmt_prefix=lab_prefix)
    if lab_prefix:
        kwargs.setdefault("mgmt_prefix", lab_prefix)
    return build_lab(netbox_data(devices, **kwargs), settings, "test")


def parsed(files: dict[str, str]) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(files[TOPOLOGY_FILE])
    return doc


@pytest.fixture(scope="module")
def demo() -> Lab:
    return FileSource(DEMO_INVENTORY).load()


@pytest.fixture(scope="module")
def demo_doc(demo: Lab) -> dict[str, Any]:
    return parsed(topology.render(demo, None))  # type: ignore[arg-type]  # secrets unused


# -- the demo plant ------------------------------------------------------------------------
def test_demo_topology_is_valid(demo_doc: dict[str, Any]) -> None:
    assert check_topology(demo_doc) == []


def test_demo_has_services_and_one_node_per_device(demo: Lab, demo_doc: dict[str, Any]) -> None:
    nodes = demo_doc["topology"]["nodes"]
    assert set(nodes) == set(SERVICES) | {d.id for d in demo.devices}
    assert demo_doc["name"] == "demo-plant"
    assert demo_doc["mgmt"] == {"network": "dtn-demo-plant", "ipv4-subnet": "172.30.0.0/24"}
    assert "host" not in nodes


def test_demo_services(demo_doc: dict[str, Any]) -> None:
    nodes = demo_doc["topology"]["nodes"]
    broker = nodes["broker"]
    assert broker["image"] == "eclipse-mosquitto:2"
    assert "./secrets/server.key:/mosquitto/certs/server.key:ro" in broker["binds"]
    assert "./mosquitto/mosquitto.conf:/mosquitto/config/mosquitto.conf:ro" in broker["binds"]
    assert broker["ports"] == ["11883:11883", "18883:18883"]
    assert nodes["database"]["image"] == "postgres:15"
    assert "POSTGRES_PASSWORD" not in nodes["database"]["env"]  # a file, never the value
    for name, command in (("twin-engine", "engine"), ("api", "api")):
        node = nodes[name]
        assert node["cmd"] == f"python -m dtnlab.runtime {command} --lab /lab"
        assert node["binds"][:2] == [".:/lab:ro", "./run/clab:/lab/run:rw"]
        # other secrets hidden; the node user may enter the folder to reach its own
        assert node["tmpfs"] == {"/lab/secrets": "size=1m,mode=0700,uid=1000,gid=1000"}
        assert node["user"] == "1000:1000"
    assert broker["user"] == "1883:1883"
    assert nodes["database"]["user"] == "999:999"
    assert nodes["database"]["binds"] == [
        "./secrets/database/postgres.password:/run/secrets/postgres.password:ro"]
    assert nodes["api"]["env"]["DTN_API_HOST"] == "0.0.0.0"
    assert "./secrets/devices/dtn-runtime.password:/lab/secrets/devices/dtn-runtime.password:ro" \
        in nodes["twin-engine"]["binds"]
    assert not any("api-jwt" in b for b in nodes["twin-engine"]["binds"])
    # API logins are checked against hashes in runtime.json: no node sees the clear passwords
    assert not any("api-users" in b for node in nodes.values() for b in node.get("binds", []))
    assert nodes["api"]["ports"] == ["8088:8088"]


def test_service_addresses_come_from_the_top_of_the_prefix(demo: Lab,
                                                           demo_doc: dict[str, Any]) -> None:
    nodes = demo_doc["topology"]["nodes"]
    assert [nodes[s]["mgmt-ipv4"] for s in SERVICES] == [
        "172.30.0.254", "172.30.0.253", "172.30.0.252", "172.30.0.251"]
    for device in demo.devices:
        assert device.mgmt_address is not None
        assert nodes[device.id]["mgmt-ipv4"] == device.mgmt_address.split("/")[0]


def test_twinned_device_runs_the_emulator_with_only_its_own_files(
        demo_doc: dict[str, Any]) -> None:
    node = demo_doc["topology"]["nodes"]["aar-l1-c1-plc-01"]
    assert node["cmd"] == ("python -m dtnlab.runtime emulator --lab /lab "
                           "--device aar-l1-c1-plc-01")
    assert node["binds"] == [
        "./twins/aar-l1-c1-plc-01.json:/lab/twins/aar-l1-c1-plc-01.json:ro",
        "./runtime.json:/lab/runtime.json:ro",
        "./mosquitto/certs/ca.crt:/lab/mosquitto/certs/ca.crt:ro",
        "./secrets/devices/aar-l1-c1-plc-01.password:"
        "/lab/secrets/devices/aar-l1-c1-plc-01.password:ro",
    ]
    assert node["env"] == {"DTN_BROKER_HOST": "clab-demo-plant-broker"}
    assert node["user"] == "1000:1000"
    assert node["tmpfs"] == {"/lab/run": "size=4m,mode=0700,uid=1000,gid=1000"}  # its status
    assert node["labels"]["dtn.uns"] == "northwind/plant-aarhus/processing/line-1/aar-l1-c1/" \
                                        "aar-l1-c1-plc-01"
    assert node["labels"]["dtn.twinned"] == "true"


def test_untwinned_core_switch_is_a_plain_node(demo_doc: dict[str, Any]) -> None:
    node = demo_doc["topology"]["nodes"]["aar-core-01"]
    assert node["kind"] == "linux"
    assert node["image"] == NODE_IMAGE
    assert node["cmd"] == "sleep infinity"
    assert "binds" not in node
    assert "env" not in node
    assert node["labels"]["dtn.twinned"] == "false"


def test_labels_are_strings_and_graph_levels_follow_the_network(demo_doc: dict[str, Any]) -> None:
    nodes = demo_doc["topology"]["nodes"]
    for node in nodes.values():
        assert all(isinstance(v, str) and v for v in node["labels"].values())
    levels = {n: int(nodes[n]["labels"]["graph-level"]) for n in (
        "broker", "aar-core-01", "aar-proc-gw-01", "aar-l1-sw-01", "aar-l1-c1-plc-01")}
    assert list(levels.values()) == [1, 2, 3, 4, 5]


def test_links_come_from_cables_sorted_with_impairments(demo: Lab,
                                                       demo_doc: dict[str, Any]) -> None:
    links = demo_doc["topology"]["links"]
    assert len(links) == len(demo.links)
    assert [lk["endpoints"] for lk in links] == sorted(lk["endpoints"] for lk in links)
    wan = next(lk for lk in links if lk["endpoints"] == ["aar-core-01:eth24", "brn-core-01:eth24"])
    assert wan["vars"] == {"cable": "WAN-AAR-BRN",
                           "impairment": {"delay": "20ms", "jitter": "2ms"}}
    assert not any(e.endswith(":eth0") or e.endswith(":mgmt0")
                   for lk in links for e in lk["endpoints"])


def test_output_is_deterministic(demo: Lab) -> None:
    first = topology.render(demo, None)  # type: ignore[arg-type]
    again = topology.render(FileSource(DEMO_INVENTORY).load(), None)  # type: ignore[arg-type]
    assert first == again
    assert first[TOPOLOGY_FILE].encode() == again[TOPOLOGY_FILE].encode()


# -- the checker catches what the schema and containerlab would refuse -------------------
def mutated(doc: dict[str, Any], change: str) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    nodes = doc["topology"]["nodes"]
    if change == "numeric-label":
        nodes["broker"]["labels"]["graph-level"] = 1
    elif change == "unknown-endpoint":
        doc["topology"]["links"][0]["endpoints"][0] = "nowhere:eth1"
    elif change == "node-named-host":
        nodes["host"] = nodes.pop("aar-core-01")
    elif change == "absolute-bind":
        nodes["broker"]["binds"].append("/etc/passwd:/etc/passwd:ro")
    elif change == "escaping-bind":
        nodes["broker"]["binds"].append("../other-lab/secrets:/x:ro")
    elif change == "alias-kind":
        nodes["broker"]["kind"] = "srl"
    elif change == "bad-port":
        nodes["broker"]["ports"] = ["mqtt:1883"]
    elif change == "long-interface":
        doc["topology"]["links"][0]["endpoints"][0] = "aar-agv-01:averyverylongname0"
    elif change == "reused-endpoint":
        doc["topology"]["links"][1]["endpoints"][0] = doc["topology"]["links"][0]["endpoints"][0]
    elif change == "address-outside":
        nodes["broker"]["mgmt-ipv4"] = "10.9.9.9"
    return doc


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("numeric-label", "label 'graph-level' is 1"),
        ("unknown-endpoint", "endpoint 'nowhere:eth1' names no node"),
        ("node-named-host", "topology/nodes/host: 'host' is reserved"),
        ("absolute-bind", "host path '/etc/passwd' is not relative to the lab folder"),
        ("escaping-bind", "host path '../other-lab/secrets' leaves the lab folder"),
        ("alias-kind", 'schema: topology/nodes/broker/kind: "srl" is not one of'),
        ("bad-port", 'schema: topology/nodes/broker/ports/0: "mqtt:1883" does not match'),
        ("long-interface", "a Linux interface name has at most 15"),
        ("reused-endpoint", "is used by more than one link"),
        ("address-outside", "mgmt-ipv4 10.9.9.9 is outside 172.30.0.0/24"),
    ],
    ids=["numeric-label", "unknown-endpoint", "node-named-host", "absolute-bind",
         "escaping-bind", "alias-kind", "bad-port", "long-interface", "reused-endpoint",
         "address-outside"],
)
def test_checker_reports(demo_doc: dict[str, Any], change: str, expected: str) -> None:
    problems = check_topology(mutated(demo_doc, change))
    assert any(expected in p for p in problems), problems


def test_schema_location_can_be_overridden(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    monkeypatch.setenv(clab_schema.SCHEMA_ENV, str(tmp_path / "missing.json"))
    with pytest.raises(FileNotFoundError, match="DTN_CLAB_SCHEMA"):
        check_topology({"name": "x", "topology": {"nodes": {}}})
    monkeypatch.delenv(clab_schema.SCHEMA_ENV)
    assert clab_schema.schema_path() == clab_schema.DEFAULT_SCHEMA
    assert check_topology({"name": "x", "topology": {"nodes": {}}}) == []


# -- a large synthetic plant -----------------------------------------------------------------
@pytest.fixture(scope="module")
def big() -> Lab:
    return synthetic_lab(500)


def test_synthetic_500_device_lab_is_valid(big: Lab) -> None:
    files = render_topology(big, load_platform_map(None))
    doc = parsed(files)
    assert len(big.devices) == 500
    assert len(doc["topology"]["nodes"]) == 500 + len(SERVICES)
    assert len(doc["topology"]["links"]) == 499
    assert check_topology(doc) == []
    assert doc["topology"]["nodes"]["broker"]["mgmt-ipv4"] == "172.31.3.254"


def test_timescaledb_is_the_database_node_when_chosen(demo: Lab) -> None:
    settings = demo.settings.model_copy(update={"database": "timescaledb"})
    doc = parsed(topology.render(demo.model_copy(update={"settings": settings}),
                                 None))  # type: ignore[arg-type]
    assert check_topology(doc) == []
    database = doc["topology"]["nodes"]["database"]
    assert database["image"] == "timescale/timescaledb:latest-pg15"
    assert database["user"] == "70:70"  # postgres in the Alpine-based image
    assert database["env"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres.password"


def test_database_setting_is_checked() -> None:
    data = netbox_data(5)
    data["dtnlab"] = {"database": "mysql"}
    with pytest.raises(InventoryError, match="database"):
        lab_settings(data, "x", "x", "inventory.yaml")


def test_synthetic_lab_without_mgmt_prefix_leaves_addresses_to_docker() -> None:
    doc, _ = topology_document(synthetic_lab(30, lab_prefix=None), load_platform_map(None))
    assert doc["mgmt"] == {"network": "dtn-big"}
    assert not any("mgmt-ipv4" in n for n in doc["topology"]["nodes"].values())
    assert check_topology(doc) == []


def test_gateway_moves_off_a_device_address() -> None:
    lab = synthetic_lab(30, mgmt_first=1)  # the first device holds 172.31.0.1
    doc, _ = topology_document(lab, load_platform_map(None))
    assert doc["topology"]["nodes"]["dev-00001"]["mgmt-ipv4"] == "172.31.0.1"
    assert doc["mgmt"]["ipv4-gw"] == "172.31.0.31"
    assert check_topology(doc) == []


# -- names that break containerlab's limits ----------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"names": {1: "host"}},
         "dcim.devices[host].name: node name 'host' is reserved by containerlab"),
        ({"names": {2: "API"}},
         "dcim.devices[API].name: node name 'api' is taken by the lab's api service node"),
        ({"names": {3: "sensor-" + "x" * 50}},
         "dcim.devices[sensor-" + "x" * 50 + "].name: container name 'clab-big-sensor-"),
        ({"iface_names": {3: "eth1.averylongsubif"}},
         "dcim.interfaces[dev-00003:eth1.averylongsubif].name: lab name 'eth1.averylongsubif' "
         "has 19 characters; a Linux interface name has at most 15"),
        ({"iface_names": {3: "Gi0/1"}},
         "dcim.interfaces[dev-00003:Gi0/1].name: lab name 'Gi0/1' is not a Linux interface "
         "name for a brief link"),
        ({"iface_names": {3: "eth0"}},
         "dcim.interfaces[dev-00003:eth0].name: lab name 'eth0' is containerlab's management "
         "interface"),
        ({"extra_cables": [(4, 9)]},  # interface 4 is dev-00002's mgmt0
         "dcim.interfaces[dev-00002:mgmt0].mgmt_only: is mgmt-only"),
    ],
    ids=["host", "service-name", "long-name", "long-interface", "slash", "eth0", "mgmt-cable"],
)
def test_bad_names_raise_a_clear_error(kwargs: dict[str, Any], expected: str) -> None:
    lab = synthetic_lab(12, per_switch=5, **kwargs)
    with pytest.raises(TopologyError) as info:
        topology_document(lab, load_platform_map(None))
    assert expected in str(info.value), str(info.value)
    assert str(info.value).startswith("topology.clab.yml of lab big: ")


def test_every_bad_name_is_reported_at_once() -> None:
    lab = synthetic_lab(12, per_switch=5, names={1: "host"}, iface_names={3: "Gi0/1", 4: "Gi0/2"})
    with pytest.raises(TopologyError) as info:
        topology_document(lab, load_platform_map(None))
    assert len(info.value.problems) == 3


# -- user platform maps ------------------------------------------------------------------------
@pytest.fixture
def network_os_map(tmp_path: Path) -> PlatformMap:
    path = tmp_path / "platforms.yml"
    path.write_text("""
platforms:
  linux-router: {kind: arista_ceos, image: "ceos:4.32.0F", interface_name: "eth{index}",
                 startup_config: arista_ceos.cfg.j2, cmd: null}
  linux-bridge: {kind: nokia_srlinux, image: "ghcr.io/nokia/srlinux:24.10.1",
                 interface_name: "e1-{index}", cmd: null}
""")
    return load_platform_map(path)


def test_user_platform_map_changes_kinds_and_interface_names(
        demo: Lab, network_os_map: PlatformMap) -> None:
    files = topology.renderer(network_os_map)(demo, None)  # type: ignore[arg-type]
    doc = parsed(files)
    nodes = doc["topology"]["nodes"]
    assert check_topology(doc) == []
    core = nodes["aar-core-01"]
    assert (core["kind"], core["image"], core["startup-config"]) == (
        "arista_ceos", "ceos:4.32.0F", "startup/aar-core-01.cfg")
    assert "cmd" not in core
    assert "binds" not in core
    config = files["startup/aar-core-01.cfg"]
    assert "hostname aar-core-01" in config
    assert "interface Ethernet3\n   description eth24\n   no switchport\n" \
           "   ip address 10.255.0.0/31\n" in config
    assert "interface Management0\n   ip address 172.30.0.10/24\n" in config
    # eth1..eth8 then eth24: the uplink is the switch's ninth data interface.
    endpoints = {e for lk in doc["topology"]["links"] for e in lk["endpoints"]}
    assert {"aar-l1-sw-01:e1-9", "aar-proc-gw-01:eth2", "aar-core-01:eth3",
            "brn-core-01:eth2"} <= endpoints
    # Twinned devices on a network OS get an emulator sidecar on the management network.
    switch, sidecar = nodes["aar-l1-sw-01"], nodes["aar-l1-sw-01-twin"]
    assert switch["kind"] == "nokia_srlinux"
    assert "cmd" not in switch
    assert sidecar["kind"] == "linux"
    assert sidecar["image"] == NODE_IMAGE
    assert sidecar["cmd"].endswith("--device aar-l1-sw-01")
    assert sidecar["labels"]["dtn.sidecar-of"] == "aar-l1-sw-01"
    assert "nokia" not in nodes["aar-l1-c1-plc-01"]["image"]


def test_user_platform_map_is_deterministic(demo: Lab, network_os_map: PlatformMap) -> None:
    render = topology.renderer(network_os_map)
    assert render(demo, None) == render(demo, None)  # type: ignore[arg-type]


# -- what Docker would get --------------------------------------------------------------------
def generate(lab: Lab, lab_dir: Path) -> dict[str, str]:
    """Write every generator's output and the lab's secrets, as `dtnlab generate` would."""
    secrets = ensure_secrets(lab, lab_dir / "secrets")
    files: dict[str, str] = {}
    for render in GENERATORS.values():
        files.update(render(lab, secrets))
    for rel, text in files.items():
        (lab_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (lab_dir / rel).write_text(text)
    return files


def test_docker_run_plan_binds_exist_in_a_generated_lab(
        demo: Lab, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    files = generate(demo, tmp_path)
    doc = parsed(files)
    prepare(tmp_path)  # as `dtnlab up --provider clab` does: run/clab/ exists from here on
    plan = docker_run_plan(doc, tmp_path)
    assert [p["name"] for p in plan] == sorted(f"clab-demo-plant-{n}"
                                               for n in doc["topology"]["nodes"])
    for container in plan:
        for bind in container["binds"]:
            host = Path(bind.split(":")[0])
            assert host.is_absolute(), f"{container['name']}: {bind}"
            assert host.exists(), f"{container['name']}: {bind}"
            assert host == tmp_path or tmp_path in host.parents
    by_name = {p["hostname"]: p for p in plan}
    plc = by_name["aar-l1-c1-plc-01"]
    assert plc["labels"]["clab-node-name"] == "aar-l1-c1-plc-01"
    assert plc["labels"]["clab-node-kind"] == "linux"
    assert plc["labels"]["containerlab"] == "demo-plant"
    assert plc["env"]["CLAB_LABEL_DTN_UNS"] == plc["labels"]["dtn.uns"]
    assert plc["env"]["CLAB_INTFS"] == "1"
    assert by_name["aar-l1-sw-01"]["env"]["CLAB_INTFS"] == "9"
    assert plc["ipv4_address"] == "172.30.0.13"
    assert plc["network"] == "dtn-demo-plant"
    # An emulator sees its own twin, password and the public CA only.
    hosts = {Path(b.split(":")[0]).relative_to(tmp_path).as_posix() for b in plc["binds"]}
    assert hosts == {"twins/aar-l1-c1-plc-01.json", "runtime.json", "mosquitto/certs/ca.crt",
                     "secrets/devices/aar-l1-c1-plc-01.password"}
    # Every variable the topology sets on a dtnlab node is one the runtime reads: without it,
    # the runtime's own loaders resolve something else in that node.
    nodes = doc["topology"]["nodes"]
    checked = set()
    views = tmp_path_factory.mktemp("views")  # outside the lab: a view copies all of it
    for container in plan:
        node = nodes[container["hostname"]]
        if node.get("image") != NODE_IMAGE or not node.get("env"):
            continue
        subcommand, lab_path = runtime_command(node)
        root = build_view(container, views / container["hostname"])
        lab = root / lab_path.lstrip("/")
        env = in_view(node["env"], root)
        assert env.keys() <= container["env"].keys()  # what containerlab hands Docker
        with_all = resolve(subcommand, lab, env)
        for key in node["env"]:
            without = {k: v for k, v in env.items() if k != key}
            assert resolve(subcommand, lab, without) != with_all, \
                f"{container['hostname']}: the runtime ignores {key}"
            checked.add(key)
    assert checked == {"DTN_BROKER_HOST", "DTN_DATABASE_URL", "DTN_DATABASE_PASSWORD_FILE",
                       "DTN_API_HOST"}


def test_docker_run_plan_of_a_sidecar_lab(demo: Lab, network_os_map: PlatformMap,
                                          tmp_path: Path) -> None:
    generate(demo, tmp_path)
    files = topology.renderer(network_os_map)(demo, None)  # type: ignore[arg-type]
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    prepare(tmp_path)
    plan = docker_run_plan(parsed(files), tmp_path)
    for container in plan:
        for bind in container["binds"]:
            assert Path(bind.split(":")[0]).exists(), f"{container['name']}: {bind}"
    assert (tmp_path / "startup" / "aar-core-01.cfg").exists()


# -- the YAML writer -----------------------------------------------------------------------------
TRICKY = ["22:22", "true", "yes", "No", "null", "~", "1e3", "0o17", "0x1F", ".inf", "1_000",
          "12:30:00", "2024-01-01", "", " x", "x ", "a: b", "a #b", "x:", "#x", "-x", "- a", "@x",
          "*x", "&a", "!t", "%x", "[a]", "{b}", "=", "<<", '"q"', "'s'", "tab\there", "x\n y",
          "\u2028", "Kühlraum 2", "a:b", "a,b", "50%", "python -m x --lab /lab", "é"]


def test_yaml_writer_round_trips_tricky_scalars() -> None:
    doc = {"plain": TRICKY, "keys": {t: t for t in TRICKY}, "empty": {}, "none": [],
           "values": [None, False, 0, 1.5, float("inf")], "nested": [[1, 2], {"x": [{"y": 1}]}]}
    assert yaml.safe_load(topology.to_yaml(doc)) == doc


def test_yaml_writer_matches_pyyaml_data_for_the_demo(demo: Lab) -> None:
    doc, _ = topology_document(demo, load_platform_map(None))
    text = topology.to_yaml(doc)
    assert yaml.safe_load(text) == doc
    assert text.replace('"', "'") == yaml.safe_dump(doc, sort_keys=True, width=1000)
