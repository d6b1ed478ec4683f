"""The network a plan describes: namespaces (nodes), their interfaces and routes, and the links."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .impairment import Impairment

Kind = Literal["bridge", "router", "host", "service"]


class PlanError(ValueError):
    """The topology cannot be turned into a network; the message names the node or link."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Interface(_Model):
    dev: str  # its name inside the node's namespace
    netbox: str = ""  # the NetBox interface name; empty for interfaces the lab makes
    peer: str  # the node at the other end
    peer_dev: str
    addresses: list[str] = Field(default_factory=list)  # CIDR, e.g. 10.1.1.10/24


class Route(_Model):
    dst: str  # a subnet, or "default"
    via: str
    dev: str


class Node(_Model):
    id: str
    ns: str
    kind: Kind
    role: str = ""
    twinned: bool = False
    interfaces: list[Interface] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)

    @property
    def forwards(self) -> bool:
        return self.kind == "router"

    def interface(self, dev: str) -> Interface:
        for iface in self.interfaces:
            if iface.dev == dev:
                return iface
        raise PlanError(f"node {self.id}: no interface {dev}")

    @property
    def address(self) -> str | None:
        """Its first address (without prefix length), to reach it for tests and tools."""
        for iface in self.interfaces:
            if iface.addresses:
                return iface.addresses[0].split("/")[0]
        return None


class Link(_Model):
    a: str
    a_dev: str
    b: str
    b_dev: str
    label: str = ""
    a_netbox: str = ""
    b_netbox: str = ""
    impairment: dict[str, str] = Field(default_factory=dict)  # cable-field form: delay, jitter..
    down: bool = False  # taken down at run time (`dtnlab link A B down`)

    @property
    def impaired(self) -> Impairment:
        return Impairment.from_fields(self.impairment)

    def joins(self, x: str, y: str) -> bool:
        return {self.a, self.b} == {x, y}


class HostLink(_Model):
    dev: str  # in the host's namespace
    address: str
    peer_address: str  # the services namespace's end


class NetworkPlan(_Model):
    lab: str
    prefix: str
    nodes: dict[str, Node]
    links: list[Link]
    service: str  # id of the services node
    attach: str  # the node the services namespace hangs off
    broker_address: str
    host_link: HostLink | None = None
    addresses_from: str = "planned"
    shaper: str = ""  # how impairments are applied: netem | nfqueue | none (set by build)

    def node(self, node_id: str) -> Node:
        try:
            return self.nodes[node_id]
        except KeyError:
            known = ", ".join(sorted(self.nodes)[:12])
            raise PlanError(f"unknown node {node_id!r}; nodes are {known} ...") from None

    def links_between(self, a: str, b: str) -> list[Link]:
        self.node(a)
        self.node(b)
        return [link for link in self.links if link.joins(a, b)]
