"""containerlab topology: broker, database, twin engine and API nodes plus one node per device."""

from __future__ import annotations

import ipaddress
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dtnlab.inventory.errors import InventoryError, Problem
from dtnlab.inventory.model import Device, Lab, uns_path

from .clab_schema import schema_errors
from .clab_services import (
    BROKER,
    SERVICE_GRAPH_LEVEL,
    SERVICES,
    emulator_settings,
    long_name,
    service_nodes,
)
from .jinja import render_template
from .platforms import (
    NODE_IMAGE,
    STARTUP_TEMPLATES,
    Platform,
    PlatformMap,
    data_interfaces,
    default_platform_map,
    interface_names,
)
from .secrets import LabSecrets
from .yaml_text import to_yaml

TOPOLOGY_FILE = "topology.clab.yml"
STARTUP_DIR = "startup"
# containerlab reads these node names in link endpoints as special endpoints, not as nodes.
RESERVED_NODE_NAMES = frozenset({"host", "mgmt-net", "macvlan"})
SIDECAR_SUFFIX = "-twin"  # emulator node beside a twinned device whose node runs a network OS
MGMT_INTERFACE = "eth0"  # containerlab's management interface of every node
MAX_INTERFACE_NAME = 15  # Linux IFNAMSIZ (16) minus the terminating NUL
MAX_DNS_LABEL = 63
MAX_LONG_NAME = 60  # containerlab: a longer clab-<lab>-<node> does not resolve via DNS
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_LAB_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9-._]*$")  # the schema's `name` pattern
_INTERFACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # no '/', ':' or spaces in a brief link

TopologyRenderer = Callable[[Lab, LabSecrets], dict[str, str]]


class TopologyError(InventoryError):
    """The lab cannot become a containerlab topology; each problem names the object and field."""


@dataclass(frozen=True)
class MgmtPlan:
    """Static management addresses: devices from IPAM, services from the top of the prefix."""

    subnet: str | None = None
    version: int = 4
    gateway: str | None = None  # set only when a device holds the default (first) address
    devices: dict[str, str] = field(default_factory=dict)
    services: dict[str, str] = field(default_factory=dict)


def plan_mgmt(lab: Lab, problems: list[Problem]) -> MgmtPlan:
    """Choose management addresses; devices outside the prefix get theirs from Docker.

    containerlab starts nodes with a static address before those without one, so Docker's
    dynamic allocation never takes an address that a later node asks for.
    """
    prefix = lab.settings.mgmt_prefix
    if not prefix:
        return MgmtPlan()
    try:
        net = ipaddress.ip_network(prefix, strict=False)
    except ValueError:
        problems.append(Problem("dtnlab", "settings", "mgmt_prefix",
                                f"{prefix!r} is not an IP prefix"))
        return MgmtPlan()
    if net.num_addresses < 8:
        problems.append(Problem("dtnlab", "settings", "mgmt_prefix",
                                f"{net} is too small for the gateway and {len(SERVICES)} services"))
        return MgmtPlan()
    # Integers, so IPv4 and IPv6 share one code path.
    first, last = int(net.network_address) + 1, int(net.broadcast_address) - 1
    devices: dict[str, int] = {}
    for device in lab.devices:
        if not device.mgmt_address:
            continue
        ip = ipaddress.ip_interface(device.mgmt_address).ip
        if ip.version == net.version and first <= int(ip) <= last:
            devices[device.id] = int(ip)
    used = set(devices.values())
    services: dict[str, int] = {}
    candidate = last
    for name in SERVICES:
        while candidate in used and candidate > first:
            candidate -= 1
        if candidate <= first:
            problems.append(Problem("dtnlab", "settings", "mgmt_prefix",
                                    f"{net} has no free address left for the {name} node"))
            break
        services[name] = candidate
        used.add(candidate)
        candidate -= 1
    gateway = None
    if first in used:
        # Docker puts the bridge on the first address unless told otherwise.
        gateway = next((ip for ip in range(first, last + 1) if ip not in used), None)
        if gateway is None:
            problems.append(Problem("dtnlab", "settings", "mgmt_prefix",
                                    f"{net} has no free address left for the gateway"))
    address = type(net.network_address)
    return MgmtPlan(
        subnet=str(net),
        version=net.version,
        gateway=str(address(gateway)) if gateway is not None else None,
        devices={k: str(address(v)) for k, v in devices.items()},
        services={k: str(address(v)) for k, v in services.items()},
    )


def graph_levels(lab: Lab) -> dict[str, int]:
    """Level of each device in a drawing, 1 at the top: leaves are peeled off round by round.

    End devices go first, then the switches they hang off, then gateways, and so on; what is
    left when no leaf remains (a ring, a mesh) is the top. Linear in devices plus links.
    """
    neighbours: dict[str, set[str]] = defaultdict(set)
    for link in lab.links:
        if link.a.device != link.b.device:
            neighbours[link.a.device].add(link.b.device)
            neighbours[link.b.device].add(link.a.device)
    degree = {d.id: len(neighbours[d.id]) for d in lab.devices}
    peeled: dict[str, int] = {}
    frontier = [d for d, n in degree.items() if n <= 1]
    rounds = 0
    while frontier:
        rounds += 1
        for node in frontier:
            peeled[node] = rounds
        following: set[str] = set()
        for node in frontier:
            for other in neighbours[node]:
                if other not in peeled:
                    degree[other] -= 1
                    if degree[other] <= 1:
                        following.add(other)
        frontier = sorted(following)
    top = rounds + 1 if len(peeled) < len(degree) else rounds
    return {d.id: top - peeled.get(d.id, top) + 1 for d in lab.devices}


def device_labels(lab: Lab, device: Device, level: int) -> dict[str, str]:
    """Container labels of a device's node; containerlab wants every value a string."""
    labels = {
        "dtn.lab": lab.name,
        "dtn.device": device.id,
        "dtn.name": device.name,
        "dtn.uns": uns_path(lab, device),
        "dtn.role": device.role,
        "dtn.device-type": device.device_type,
        "dtn.site": device.site,
        "dtn.area": device.area,
        "dtn.line": device.line,
        "dtn.cell": device.cell,
        "dtn.twinned": "true" if device.twinned else "false",
        "graph-level": str(SERVICE_GRAPH_LEVEL + level),  # services on the top row
    }
    if device.platform:
        labels["dtn.platform"] = device.platform
    if device.netbox_id is not None:
        labels["dtn.netbox-id"] = str(device.netbox_id)
    if device.mobile:
        labels["dtn.mobile"] = "true"
    return labels


def node_name_problem(lab: str, node: str) -> str | None:
    """Why `node` cannot name a containerlab node of lab `lab`, or None."""
    if node in RESERVED_NODE_NAMES:
        return f"node name {node!r} is reserved by containerlab for special link endpoints"
    if len(node) > MAX_DNS_LABEL or not _DNS_LABEL.match(node):
        return (f"node name {node!r} is not a DNS label (letters, digits and '-', at most "
                f"{MAX_DNS_LABEL} characters, no '-' at either end)")
    container = long_name(lab, node)
    if len(container) > MAX_LONG_NAME:
        return (f"container name {container!r} has {len(container)} characters; containerlab "
                f"names over {MAX_LONG_NAME} do not resolve via DNS: shorten the device name "
                "or the lab name")
    return None


def interface_name_problem(name: str) -> str | None:
    """Why `name` cannot be a lab interface in a brief `node:iface` link, or None."""
    if name == MGMT_INTERFACE:
        return f"{name!r} is containerlab's management interface, never a link endpoint"
    if len(name) > MAX_INTERFACE_NAME:
        return (f"{name!r} has {len(name)} characters; a Linux interface name has at most "
                f"{MAX_INTERFACE_NAME}")
    if not _INTERFACE.match(name):
        return (f"{name!r} is not a Linux interface name for a brief link (letters, digits, "
                "'-', '_' and '.', no '/', ':' or spaces)")
    return None


@dataclass
class _Builder:
    lab: Lab
    platforms: PlatformMap
    problems: list[Problem] = field(default_factory=list)
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    startup: dict[str, str] = field(default_factory=dict)
    iface_maps: dict[str, dict[str, str]] = field(default_factory=dict)
    by_id: dict[str, Device] = field(init=False)

    def __post_init__(self) -> None:
        self.by_id = {d.id: d for d in self.lab.devices}

    def problem(self, device: Device, field_name: str, message: str) -> None:
        self.problems.append(Problem("dcim.devices", device.name, field_name, message))

    def build(self) -> dict[str, Any]:
        lab = self.lab
        if not _LAB_NAME.match(lab.name) or node_name_problem(lab.name, BROKER):
            self.problems.append(Problem("dtnlab", "settings", "lab",
                                         f"lab name {lab.name!r} cannot name a containerlab "
                                         f"topology and its containers (clab-<lab>-<node>, "
                                         f"at most {MAX_LONG_NAME} characters)"))
        mgmt = plan_mgmt(lab, self.problems)
        address_key = "mgmt-ipv6" if mgmt.version == 6 else "mgmt-ipv4"
        self.nodes.update(service_nodes(lab))
        for name, address in mgmt.services.items():
            self.nodes[name][address_key] = address
        levels = graph_levels(lab)
        taken = {d.id for d in lab.devices}
        for device in lab.devices:
            self._device(device, levels[device.id], mgmt.devices.get(device.id), address_key,
                         taken)
        links = self._links()
        if self.problems:
            raise TopologyError(f"{TOPOLOGY_FILE} of lab {lab.name}", self.problems)
        mgmt_section: dict[str, Any] = {"network": f"dtn-{lab.name}"}
        if mgmt.subnet:
            mgmt_section[f"ipv{mgmt.version}-subnet"] = mgmt.subnet
        if mgmt.gateway:
            mgmt_section[f"ipv{mgmt.version}-gw"] = mgmt.gateway
        topology: dict[str, Any] = {"nodes": self.nodes}
        if links:
            topology["links"] = links  # the schema wants at least one link when present
        document = {"name": lab.name, "mgmt": mgmt_section, "topology": topology}
        self._schema(document)
        if self.problems:
            raise TopologyError(f"{TOPOLOGY_FILE} of lab {lab.name}", self.problems)
        return document

    def _schema(self, document: dict[str, Any]) -> None:
        """containerlab's own JSON schema; a device node's errors name the device and platform."""
        for error in schema_errors(document):
            node = error.path[2] if error.path[:2] == ("topology", "nodes") and len(
                error.path) > 2 else None
            device = (self.by_id.get(node) or self.by_id.get(node.removesuffix(SIDECAR_SUFFIX))
                      if node else None)
            if device is None:
                self.problems.append(Problem(TOPOLOGY_FILE, error.where, "schema",
                                             f"containerlab's schema: {error.message}"))
                continue
            inside = "/".join(error.path[3:])
            what = f"its node's {inside!r}" if inside else "its node"
            self.problem(device, "platform", f"{what} breaks containerlab's schema: "
                         f"{error.message} (platform {device.platform or 'default'} of the "
                         "platform map)")

    def _device(self, device: Device, level: int, address: str | None, address_key: str,
                taken: set[str]) -> None:
        node_problem = node_name_problem(self.lab.name, device.id)
        if node_problem:
            self.problem(device, "name", node_problem)
        elif device.id in SERVICES:
            self.problem(device, "name", f"node name {device.id!r} is taken by the lab's "
                                         f"{device.id} service node")
        platform = self.platforms.for_device(device)
        self.iface_maps[device.id] = interface_names(platform, device)
        labels = device_labels(self.lab, device, level)
        node: dict[str, Any] = {"kind": platform.kind, "image": platform.image, "labels": labels}
        if platform.type:
            node["type"] = platform.type
        if address:
            node[address_key] = address
        if platform.startup_config:
            path = f"{STARTUP_DIR}/{device.id}.cfg"
            self.startup[path] = self._startup_config(device, platform, address)
            node["startup-config"] = path
        if device.twinned and platform.inline_emulator:
            node.update(emulator_settings(self.lab, device))
        else:
            if platform.cmd:
                node["cmd"] = platform.cmd
            if device.twinned:
                self._sidecar(device, labels, taken)
        self.nodes[device.id] = node

    def _sidecar(self, device: Device, labels: dict[str, str], taken: set[str]) -> None:
        """An emulator node beside a network OS that cannot run dtnlab itself."""
        name = f"{device.id}{SIDECAR_SUFFIX}"
        problem = node_name_problem(self.lab.name, name)
        if problem:
            self.problem(device, "name", f"emulator sidecar: {problem}")
        elif name in taken or name in SERVICES:
            self.problem(device, "name", f"emulator sidecar node {name!r} collides with a "
                                         "device or service node of the same name")
        node: dict[str, Any] = {"kind": "linux", "image": NODE_IMAGE,
                                "labels": {**labels, "dtn.sidecar-of": device.id}}
        node.update(emulator_settings(self.lab, device))
        self.nodes[name] = node

    def _startup_config(self, device: Device, platform: Platform, address: str | None) -> str:
        names = self.iface_maps[device.id]
        interfaces = [
            {"name": i.name, "lab_name": names[i.name], "index": index, "type": i.type,
             "addresses": list(i.addresses)}
            for index, i in enumerate(data_interfaces(device), start=1)
        ]
        assert platform.startup_config is not None
        return render_template(
            f"{STARTUP_TEMPLATES}/{platform.startup_config}",
            lab=self.lab.name, device=device, platform=platform, interfaces=interfaces,
            uns_path=uns_path(self.lab, device), mgmt_address=device.mgmt_address,
            mgmt_static=address,
        )

    def _endpoint(self, device_id: str, interface: str, used: dict[str, str]) -> str | None:
        device = self.by_id[device_id]
        names = self.iface_maps[device_id]
        where = f"{device.name}:{interface}"
        if interface not in names:
            iface = next((i for i in device.interfaces if i.name == interface), None)
            if iface is not None and iface.mgmt_only:
                why = ("is mgmt-only: it becomes containerlab's management interface "
                       f"({MGMT_INTERFACE}), never a link endpoint")
            else:
                why = f"is not a data interface (type {iface.type if iface else 'unknown'})"
            self.problems.append(Problem("dcim.interfaces", where, "mgmt_only", why))
            return None
        lab_name = names[interface]
        problem = interface_name_problem(lab_name)
        platform = self.platforms.for_device(device)
        if problem:
            self.problems.append(Problem(
                "dcim.interfaces", where, "name",
                f"lab name {problem} (platform {device.platform or 'default'}, interface_name "
                f"{platform.interface_name!r}); use a template with {{index}} in the platform "
                "map"))
            return None
        endpoint = f"{device_id}:{lab_name}"
        if endpoint in used:
            self.problems.append(Problem(
                "dcim.interfaces", where, "name",
                f"lab name {lab_name!r} is also the lab name of {used[endpoint]} "
                f"(interface_name {platform.interface_name!r})"))
            return None
        used[endpoint] = where
        return endpoint

    def _links(self) -> list[dict[str, Any]]:
        links: list[dict[str, Any]] = []
        used: dict[str, str] = {}
        for link in self.lab.links:
            a = self._endpoint(link.a.device, link.a.interface, used)
            b = self._endpoint(link.b.device, link.b.interface, used)
            if a is None or b is None:
                continue
            entry: dict[str, Any] = {"endpoints": [a, b]}
            link_vars: dict[str, Any] = {}
            if link.label:
                link_vars["cable"] = link.label
            if link.impairment:
                # containerlab has no netem field in a topology: the clab provider applies
                # these with `containerlab tools netem set` once the lab is deployed.
                link_vars["impairment"] = dict(sorted(link.impairment.items()))
            if link_vars:
                entry["vars"] = link_vars
            links.append(entry)
        return sorted(links, key=lambda e: tuple(e["endpoints"]))


HEADER = """\
# containerlab topology of lab {lab}
# Generated by dtnlab from the lab's inventory; do not edit.
# Deploy from this folder (bind paths are relative to it): containerlab deploy -t {file}
# First, as root: dtnlab clab prepare --lab {lab} (each container's user gets the files it
# reads and writes); `dtnlab up --provider clab` does both.
#
# Devices reach the broker over the management network {network}
# (every node's {mgmt}), by the broker's container name {broker}:
# Docker's DNS resolves it on that network and the broker's certificate names it.
# The links below are the plant's cables (the data plane); they carry no MQTT.
"""


def topology_document(lab: Lab, platforms: PlatformMap) -> tuple[dict[str, Any], dict[str, str]]:
    """The topology as a dict, plus startup-config files by relative path.

    Raises:
        TopologyError: listing every node, interface or address that breaks a containerlab limit.
    """
    builder = _Builder(lab, platforms)
    document = builder.build()
    return document, builder.startup


def render_topology(lab: Lab, platforms: PlatformMap) -> dict[str, str]:
    document, startup = topology_document(lab, platforms)
    header = HEADER.format(lab=lab.name, file=TOPOLOGY_FILE, network=document["mgmt"]["network"],
                           mgmt=MGMT_INTERFACE, broker=long_name(lab.name, BROKER))
    return {TOPOLOGY_FILE: header + to_yaml(document), **startup}


def renderer(platforms: PlatformMap) -> TopologyRenderer:
    """A topology generator bound to a platform map (e.g. one a user merged over the defaults)."""

    def render_with_map(lab: Lab, secrets: LabSecrets) -> dict[str, str]:
        return render_topology(lab, platforms)

    return render_with_map


def render(lab: Lab, secrets: LabSecrets) -> dict[str, str]:
    """The registry's topology generator, with the shipped platform map."""
    return render_topology(lab, default_platform_map())
