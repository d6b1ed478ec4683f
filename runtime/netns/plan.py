"""Plan the namespaced network of a lab: node kinds, veths, bridges, addresses and static routes.

Pure: the lab's topology (runtime.json) and the addresses NetBox knows go in, a NetworkPlan
comes out; nothing here touches the system, so every rule is testable without root.

Rules:
- a node whose role is a switch (not a core switch) and that has no address on its cabled
  interfaces is a Linux bridge; every node with two or more cabled interfaces, or whose role is a
  router, gateway, firewall or core, routes (ip_forward); every other node is a host.
- the links through bridges form one L2 segment; every other link is a segment of its own. A
  bridge gets an address of its segment on br0 (a managed switch's own address).
- a segment takes its subnet from the addresses NetBox gives its interfaces; an interface without
  one gets the next free address of it. A segment NetBox gives no address gets a planned /30
  (two ends) from 198.18.0.0/16 or a planned LAN (/24 or larger) from 198.19.0.0/16, the RFC 2544
  benchmarking range, routers taking the lowest addresses.
- the lab's services (broker, engine) get a namespace of their own, attached by a lab-made link to
  the first core (else the first router, else the first bridge); hosts route by default through
  the lowest router address of their segment; routers get a static route to every subnet they do
  not touch, along the fewest router hops.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .impairment import Impairment, ImpairmentError
from .model import HostLink, Interface, Kind, Link, NetworkPlan, Node, PlanError, Route
from .names import BRIDGE, host_link_name, interface_name, lab_prefix, namespace_name

P2P_POOL = ipaddress.IPv4Network("198.18.0.0/16")
LAN_POOL = ipaddress.IPv4Network("198.19.0.0/16")
HOST_LINK_NET = ipaddress.IPv4Network("198.18.255.252/30")  # host <-> services namespace
SERVICE_ID = "svc"
SERVICE_DEV = "eth1"
SERVICE_PEER_DEV = "dtn-svc"
HOST_PEER_DEV = "host0"
_BRIDGE_ROLE = re.compile(r"(^|-)(switch|hub|bridge|access-point)($|-)")
_ROUTER_ROLE = re.compile(r"(^|-)(core|router|gateway|firewall|l3)($|-)")

# address per interface, as NetBox gives it: {node id: {interface name: ["10.1.1.10/24", ...]}}
Addresses = Mapping[str, Mapping[str, list[str]]]


def classify(role: str, cabled: int, has_addresses: bool) -> Kind:
    """Bridge, router or host, from the node's role and its cabling (see the module rules)."""
    if _BRIDGE_ROLE.search(role) and not _ROUTER_ROLE.search(role) and not has_addresses:
        return "bridge"
    if _ROUTER_ROLE.search(role) or cabled >= 2:
        return "router"
    return "host"


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, key: str) -> str:
        self.parent.setdefault(key, key)
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


class _Segment:
    def __init__(self, endpoints: list[tuple[str, str]]) -> None:
        self.endpoints = sorted(endpoints)  # (node id, dev) of every L3 end on the segment
        self.networks: list[ipaddress.IPv4Network] = []


def _allocate(pool: ipaddress.IPv4Network, prefixlen: int, used: list[ipaddress.IPv4Network],
              cursor: dict[int, int]) -> ipaddress.IPv4Network:
    size = 1 << (32 - prefixlen)
    start = cursor.get(id(pool), int(pool.network_address))
    start = (start + size - 1) // size * size
    while start + size <= int(pool.broadcast_address) + 1:
        net = ipaddress.IPv4Network(f"{ipaddress.IPv4Address(start)}/{prefixlen}")
        start += size
        if not any(net.overlaps(u) for u in used):
            cursor[id(pool)] = start
            return net
    raise PlanError(f"planned address pool {pool} is exhausted")


def _topology_links(topology: Mapping[str, Any], node_ids: set[str]) -> list[dict[str, Any]]:
    links: list[dict[str, Any]] = []
    problems: list[str] = []
    for number, raw in enumerate(topology.get("links") or []):
        where = f"topology.links[{number}] ({raw.get('a')}:{raw.get('a_interface')} - " \
                f"{raw.get('b')}:{raw.get('b_interface')})"
        missing = [end for end in ("a", "b") if raw.get(end) not in node_ids]
        if missing:
            problems.append(f"{where}: names no node of the topology")
            continue
        if raw["a"] == raw["b"]:
            problems.append(f"{where}: a node cabled to itself")
            continue
        try:
            impairment = Impairment.from_fields(raw.get("impairment")).to_fields()
        except ImpairmentError as exc:
            problems.append(f"{where}: {exc}")
            continue
        links.append({**raw, "impairment": impairment})
    if problems:
        raise PlanError("\n".join(problems))
    return sorted(links, key=lambda raw: (raw["a"], raw["a_interface"], raw["b"],
                                          raw["b_interface"]))


def plan_network(lab: str, topology: Mapping[str, Any], addresses: Addresses | None = None,
                 attach: str | None = None, host_link: bool = True) -> NetworkPlan:
    """The network of a lab from its runtime.json topology.

    Args:
        lab: the lab's name (namespace prefix).
        topology: runtime.json's `topology` ({nodes: [...], links: [...]}).
        addresses: NetBox's addresses per node and interface; a node's `interfaces` in the
            topology, when present, add to them. Missing ones are planned.
        attach: the node the services namespace hangs off (default: see module rules).
        host_link: also give the host's namespace a link to the services namespace.

    Raises:
        PlanError: naming every bad node, link or address.
    """
    raw_nodes = sorted(topology.get("nodes") or [], key=lambda n: str(n.get("id")))
    if not raw_nodes:
        raise PlanError("the topology has no nodes (generate the lab first)")
    node_ids = {str(n["id"]) for n in raw_nodes}
    known = _collect_addresses(raw_nodes, addresses or {})
    links = _topology_links(topology, node_ids)
    cabled: dict[str, set[str]] = {}
    for raw in links:
        cabled.setdefault(raw["a"], set()).add(raw["a_interface"])
        cabled.setdefault(raw["b"], set()).add(raw["b_interface"])

    nodes: dict[str, Node] = {}
    for raw in raw_nodes:
        node_id = str(raw["id"])
        role = str(raw.get("role") or "")
        nodes[node_id] = Node(id=node_id, ns=namespace_name(lab, node_id),
                              kind=classify(role, len(cabled.get(node_id, ())),
                                            _addressed(known.get(node_id), cabled.get(node_id))),
                              role=role, twinned=bool(raw.get("twinned")))

    service_id = SERVICE_ID
    while service_id in nodes:
        service_id += "-dtn"
    attach_id = _attach_point(nodes, attach)
    nodes[service_id] = Node(id=service_id, ns=namespace_name(lab, service_id), kind="service",
                             role="dtnlab-services")
    if nodes[attach_id].kind == "host":
        nodes[attach_id].kind = "router"  # it now has the services behind it

    taken: dict[str, set[str]] = {node_id: set() for node_id in nodes}
    plan_links: list[Link] = []
    for raw in links:
        a_dev = interface_name(raw["a_interface"], taken[raw["a"]])
        b_dev = interface_name(raw["b_interface"], taken[raw["b"]])
        plan_links.append(Link(a=raw["a"], a_dev=a_dev, b=raw["b"], b_dev=b_dev,
                               label=raw.get("label") or "", a_netbox=raw["a_interface"],
                               b_netbox=raw["b_interface"], impairment=raw["impairment"]))
    plan_links.append(Link(a=service_id, a_dev=interface_name(SERVICE_DEV, taken[service_id]),
                           b=attach_id, b_dev=interface_name(SERVICE_PEER_DEV, taken[attach_id]),
                           label="dtnlab services"))
    for node in nodes.values():
        if node.kind == "bridge":  # the switch's own address (management, its emulator)
            node.interfaces.append(Interface(dev=BRIDGE, peer="", peer_dev=""))
    for link in plan_links:
        nodes[link.a].interfaces.append(Interface(dev=link.a_dev, netbox=link.a_netbox,
                                                  peer=link.b, peer_dev=link.b_dev))
        nodes[link.b].interfaces.append(Interface(dev=link.b_dev, netbox=link.b_netbox,
                                                  peer=link.a, peer_dev=link.a_dev))

    segments = _segments(nodes, plan_links)
    _address(nodes, segments, known)
    _route(nodes, segments)

    host: HostLink | None = None
    if host_link:
        svc_end, host_end = list(HOST_LINK_NET.hosts())
        nodes[service_id].interfaces.append(Interface(
            dev=interface_name(HOST_PEER_DEV, taken[service_id]), peer="", peer_dev="",
            addresses=[f"{svc_end}/{HOST_LINK_NET.prefixlen}"]))
        host = HostLink(dev=host_link_name(lab), address=f"{host_end}/{HOST_LINK_NET.prefixlen}",
                        peer_address=str(svc_end))
    for node in nodes.values():
        node.interfaces.sort(key=lambda i: _natural(i.dev))
    broker = nodes[service_id].address
    assert broker is not None
    return NetworkPlan(lab=lab, prefix=lab_prefix(lab), nodes=nodes, links=plan_links,
                       service=service_id, attach=attach_id, broker_address=broker,
                       host_link=host,
                       addresses_from="netbox" if known else "planned")


def _natural(name: str) -> tuple[Any, ...]:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def _collect_addresses(raw_nodes: Iterable[Mapping[str, Any]],
                       addresses: Addresses) -> dict[str, dict[str, list[str]]]:
    """Every known address per node and NetBox interface, checked to be IPv4 CIDR."""
    known: dict[str, dict[str, list[str]]] = {}
    problems: list[str] = []

    def add(node_id: str, iface: str, values: Iterable[str]) -> None:
        for value in values:
            try:
                address = ipaddress.ip_interface(str(value))
            except ValueError:
                problems.append(f"node {node_id} interface {iface}: bad address {value!r}")
                continue
            if address.version != 4:
                continue  # the lab network is IPv4; IPv6 addresses are left to NetBox
            slot = known.setdefault(node_id, {}).setdefault(iface, [])
            if str(address) not in slot:
                slot.append(str(address))

    for raw in raw_nodes:
        node_id = str(raw["id"])
        ifaces = raw.get("interfaces") or {}
        if isinstance(ifaces, list):  # [{name, addresses}] form
            ifaces = {str(i.get("name")): i.get("addresses") or [] for i in ifaces}
        for iface, values in ifaces.items():
            add(node_id, iface, values)
        for iface, values in (addresses.get(node_id) or {}).items():
            add(node_id, iface, values)
    if problems:
        raise PlanError("\n".join(problems))
    return known


def _addressed(known: Mapping[str, list[str]] | None, cabled: set[str] | None) -> bool:
    """Whether NetBox gives an address to one of the node's cabled interfaces (not mgmt)."""
    return bool(known and cabled and any(known.get(iface) for iface in cabled))


def _attach_point(nodes: dict[str, Node], attach: str | None) -> str:
    if attach is not None:
        if attach not in nodes:
            raise PlanError(f"attach point {attach!r} is not a node of the topology")
        return attach
    order = sorted(nodes.values(), key=lambda n: n.id)
    preferences: list[Callable[[Node], bool]] = [
        lambda n: n.kind == "router" and "core" in n.role, lambda n: n.kind == "router",
        lambda n: n.kind == "bridge", lambda n: True]
    for wanted in preferences:
        for node in order:
            if wanted(node):
                return node.id
    raise PlanError("the topology has no nodes")


def _segments(nodes: dict[str, Node], links: list[Link]) -> list[_Segment]:
    uf = _UnionFind()

    def key(node_id: str, dev: str) -> str:
        return f"B:{node_id}" if nodes[node_id].kind == "bridge" else f"E:{node_id}\0{dev}"

    for link in links:
        uf.union(key(link.a, link.a_dev), key(link.b, link.b_dev))
    groups: dict[str, list[tuple[str, str]]] = {}
    for node in nodes.values():
        if node.kind == "bridge" and any(node.id in (link.a, link.b) for link in links):
            groups.setdefault(uf.find(f"B:{node.id}"), []).append((node.id, BRIDGE))
    for link in links:
        for node_id, dev in ((link.a, link.a_dev), (link.b, link.b_dev)):
            k = key(node_id, dev)
            members = groups.setdefault(uf.find(k), [])
            if k.startswith("E:") and (node_id, dev) not in members:
                members.append((node_id, dev))
    segments = [_Segment(members) for members in groups.values() if members]
    return sorted(segments, key=lambda s: s.endpoints)


def _address(nodes: dict[str, Node], segments: list[_Segment],
             known: dict[str, dict[str, list[str]]]) -> None:
    by_dev = {(node.id, iface.dev): iface for node in nodes.values() for iface in node.interfaces}
    used = [ipaddress.IPv4Interface(a).network for ifaces in known.values()
            for values in ifaces.values() for a in values]
    for pool in (P2P_POOL, LAN_POOL):
        clash = [str(net) for net in used if net.overlaps(pool)]
        if clash:
            raise PlanError(f"NetBox addresses {', '.join(sorted(set(clash)))} overlap the "
                            f"planned pool {pool}; the netns provider needs it free")
    cursor: dict[int, int] = {}
    for segment in segments:
        given: list[ipaddress.IPv4Interface] = []
        for node_id, dev in segment.endpoints:
            iface = by_dev[(node_id, dev)]
            values = known.get(node_id, {}).get(iface.netbox, [])
            iface.addresses = list(values)
            given += [ipaddress.IPv4Interface(v) for v in values]
        if given:
            networks = sorted({a.network for a in given}, key=lambda n: (n.network_address, n))
            subnet = max(networks, key=lambda n: sum(a.network == n for a in given))
        else:
            count = len(segment.endpoints)
            if count == 2:
                subnet = _allocate(P2P_POOL, 30, used, cursor)
            else:
                prefixlen = min(24, 32 - math.ceil(math.log2(count + 2)))
                subnet = _allocate(LAN_POOL, prefixlen, used, cursor)
            used.append(subnet)
        segment.networks = [subnet] + sorted({a.network for a in given} - {subnet},
                                             key=lambda n: n.network_address)
        taken = {a.ip for a in given}
        free = (h for h in subnet.hosts() if h not in taken)
        # routers first so that on planned segments the gateway gets .1
        order = sorted(segment.endpoints, key=lambda e: (nodes[e[0]].kind != "router", e))
        for node_id, dev in order:
            iface = by_dev[(node_id, dev)]
            if iface.addresses:
                continue
            host = next(free, None)
            if host is None:
                raise PlanError(f"subnet {subnet} of node {node_id} interface "
                                f"{iface.netbox or dev} has no free address left")
            iface.addresses = [f"{host}/{subnet.prefixlen}"]


def _route(nodes: dict[str, Node], segments: list[_Segment]) -> None:
    def address_on(node_id: str, dev: str, net: ipaddress.IPv4Network) -> str | None:
        for value in nodes[node_id].interface(dev).addresses:
            if ipaddress.IPv4Interface(value).ip in net:
                return value.split("/")[0]
        return None

    routers_on: list[list[tuple[str, str]]] = [
        [(n, d) for n, d in s.endpoints if nodes[n].kind == "router"] for s in segments]
    segments_of: dict[str, list[int]] = {}
    for index, segment in enumerate(segments):
        for node_id, _dev in segment.endpoints:
            segments_of.setdefault(node_id, []).append(index)

    for index, segment in enumerate(segments):
        subnet = segment.networks[0]
        candidates = sorted(
            (ipaddress.ip_address(a), n, d) for n, d in routers_on[index]
            if (a := address_on(n, d, subnet)) is not None)
        for node_id, dev in segment.endpoints:
            node = nodes[node_id]
            if node.kind in ("host", "service", "bridge"):
                gateway = next(((ip, n) for ip, n, _d in candidates if n != node_id), None)
                if gateway is not None and not any(r.dst == "default" for r in node.routes):
                    node.routes.append(Route(dst="default", via=str(gateway[0]), dev=dev))

    for node in sorted(nodes.values(), key=lambda n: n.id):
        if node.kind != "router":
            continue
        direct = set(segments_of.get(node.id, []))
        routed: set[int] = set(direct)
        seen = {node.id}
        # BFS over routers; each entry carries the first hop (next-hop address, our device)
        queue: deque[tuple[str, tuple[str, str]]] = deque()
        for index in sorted(direct):
            subnet = segments[index].networks[0]
            own_dev = next(d for n, d in segments[index].endpoints if n == node.id)
            for peer, peer_dev in routers_on[index]:
                if peer in seen:
                    continue
                via = address_on(peer, peer_dev, subnet)
                if via is not None:
                    seen.add(peer)
                    queue.append((peer, (via, own_dev)))
        while queue:
            current, first_hop = queue.popleft()
            for index in segments_of.get(current, []):
                if index not in routed:
                    routed.add(index)
                    for net in segments[index].networks:
                        node.routes.append(Route(dst=str(net), via=first_hop[0],
                                                 dev=first_hop[1]))
                for peer, _dev in routers_on[index]:
                    if peer not in seen:
                        seen.add(peer)
                        queue.append((peer, first_hop))


__all__ = ["HostLink", "Interface", "Kind", "Link", "NetworkPlan", "Node", "PlanError", "Route",
           "classify", "plan_network"]
