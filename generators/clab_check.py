"""Check a containerlab topology against containerlab's schema and the rules the schema misses."""

from __future__ import annotations

import ipaddress
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

from dtnlab.runtime.providers.clab_files import bind_parts

from .clab_schema import schema_errors
from .clab_services import long_name
from .topology import (
    RESERVED_NODE_NAMES,
    TOPOLOGY_FILE,
    interface_name_problem,
    node_name_problem,
)

NO_PROXY_DEFAULTS = ("localhost", "127.0.0.1", "::1", "*.local")




def _bind_problem(bind: str) -> str | None:
    host, container, _ = bind_parts(bind)
    if container is None:
        return f"bind {bind!r} has no host path"
    if host.startswith(("/", "~")):
        return f"bind {bind!r}: host path {host!r} is not relative to the lab folder"
    if Path(os.path.normpath(host)).parts[:1] == ("..",):
        return f"bind {bind!r}: host path {host!r} leaves the lab folder"
    if not container.startswith("/"):
        return f"bind {bind!r}: container path {container!r} is not absolute"
    return None


def _label_problems(where: str, labels: object) -> list[str]:
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return [f"{where}: labels must be a mapping"]
    return [f"{where}: label {key!r} is {value!r}; containerlab label values must be "
            "non-empty strings"
            for key, value in labels.items() if not isinstance(value, str) or not value]


def _node_problems(lab: str, name: str, node: dict[str, Any]) -> list[str]:
    where = f"topology/nodes/{name}"
    problems = []
    if name in RESERVED_NODE_NAMES:
        problems.append(f"{where}: {name!r} is reserved by containerlab (special link endpoint)")
    else:
        problem = node_name_problem(lab, name)
        if problem:
            problems.append(f"{where}: {problem}")
    problems.extend(_label_problems(where, node.get("labels")))
    for bind in node.get("binds") or []:
        problem = _bind_problem(str(bind))
        if problem:
            problems.append(f"{where}: {problem}")
    return problems


def _link_problems(doc: dict[str, Any], nodes: dict[str, Any]) -> list[str]:
    problems = []
    seen: Counter[str] = Counter()
    for number, link in enumerate(doc.get("topology", {}).get("links") or []):
        where = f"topology/links/{number}"
        endpoints = link.get("endpoints") if isinstance(link, dict) else None
        if not isinstance(endpoints, list) or not all(isinstance(e, str) for e in endpoints):
            continue  # the extended link forms: the schema checks those
        if len(endpoints) != 2:
            problems.append(f"{where}: a link has 2 endpoints, not {len(endpoints)}")
        for endpoint in endpoints:
            node, sep, iface = endpoint.partition(":")
            if not sep or not node or not iface:
                problems.append(f"{where}: endpoint {endpoint!r} is not `node:interface`")
                continue
            if node not in nodes and node not in RESERVED_NODE_NAMES:
                problems.append(f"{where}: endpoint {endpoint!r} names no node of the topology")
            problem = interface_name_problem(iface)
            if problem:
                problems.append(f"{where}: endpoint {endpoint!r}: {problem}")
            seen[endpoint] += 1
            if seen[endpoint] == 2:
                problems.append(f"{where}: endpoint {endpoint!r} is used by more than one link")
    return problems


def _address_problems(doc: dict[str, Any], nodes: dict[str, Any]) -> list[str]:
    mgmt = doc.get("mgmt") or {}
    problems = []
    owners: dict[str, str] = {}
    for version in (4, 6):
        subnet_text = mgmt.get(f"ipv{version}-subnet")
        try:
            subnet = ipaddress.ip_network(subnet_text) if subnet_text else None
        except ValueError:
            problems.append(f"mgmt: ipv{version}-subnet {subnet_text!r} is not a prefix")
            continue
        gateway = mgmt.get(f"ipv{version}-gw") or (str(subnet[1]) if subnet else None)
        for name, node in nodes.items():
            address = (node or {}).get(f"mgmt-ipv{version}")
            if not address:
                continue
            where = f"topology/nodes/{name}"
            if subnet is None:
                problems.append(f"{where}: mgmt-ipv{version} {address} needs mgmt "
                                f"ipv{version}-subnet")
            elif ipaddress.ip_address(address) not in subnet:
                problems.append(f"{where}: mgmt-ipv{version} {address} is outside {subnet}")
            if address == gateway:
                problems.append(f"{where}: mgmt-ipv{version} {address} is the network's gateway")
            if address in owners:
                problems.append(f"{where}: mgmt-ipv{version} {address} is also {owners[address]}'s")
            owners[address] = name
    return problems


def check_topology(doc: dict[str, Any]) -> list[str]:
    """Every problem of a topology: the schema's, then the checks the schema misses.

    Beyond the schema: brief `node:iface` endpoints name existing nodes and valid interface
    names, each endpoint is used once, label values are strings, node and container names are
    within containerlab's and DNS's limits, no node is named `host`, every bind's host path is
    relative to the lab folder, and static management addresses fit the management network.

    Args:
        doc: the parsed topology (e.g. yaml.safe_load of topology.clab.yml).

    Returns:
        One line per problem; empty when the topology is fine.
    """
    problems = [str(e) for e in schema_errors(doc)]
    lab = str(doc.get("name", ""))
    topology: dict[str, Any] = doc.get("topology") or {}
    if not isinstance(topology, dict):
        return problems  # the schema has said what is wrong
    nodes: dict[str, Any] = topology.get("nodes") or {}
    if not isinstance(nodes, dict):
        return problems
    for name, node in sorted(nodes.items()):
        problems.extend(_node_problems(lab, str(name), node or {}))
    for section in ("defaults", "groups", "kinds"):
        entries = topology.get(section) or {}
        if section == "defaults":
            entries = {"": entries}
        for key, entry in entries.items():
            if isinstance(entry, dict):
                where = f"topology/{section}/{key}".rstrip("/")
                problems.extend(_label_problems(where, entry.get("labels")))
    problems.extend(_link_problems(doc, nodes))
    problems.extend(_address_problems(doc, nodes))
    return problems


def to_env_key(label: str) -> str:
    """containerlab's utils.ToEnvKey: how a label's name becomes a CLAB_LABEL_* variable."""
    return re.sub(r"[^a-zA-Z0-9_]+", "", re.sub(r"[-+./]", "_", label)).upper()


def resolve_bind(bind: str, lab_dir: Path) -> str:
    """A bind with its host path made absolute, as containerlab hands it to Docker."""
    host, container, options = bind_parts(bind)
    if container is None:
        return bind
    path = Path(host).expanduser()
    if not path.is_absolute():
        path = Path(os.path.normpath(lab_dir.absolute() / path))
    return ":".join(p for p in (str(path), container, options) if p is not None)


def _env_value(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def docker_run_plan(doc: dict[str, Any], lab_dir: Path) -> list[dict[str, Any]]:
    """What containerlab would ask Docker for, node by node, sorted by node name.

    Only node-level settings are read (dtnlab's topologies use no defaults, kinds or groups).
    Labels that depend on who deploys (clab-owner, git branch) are left out.

    Args:
        doc: the parsed topology.
        lab_dir: the folder holding topology.clab.yml; relative bind paths resolve against it.

    Returns:
        Per node: container name, hostname, image, cmd, binds (absolute host paths), tmpfs,
        ports, labels (with containerlab's own), env (with CLAB_LABEL_*, CLAB_INTFS, no_proxy),
        management network and static addresses.
    """
    lab = str(doc["name"])
    mgmt = doc.get("mgmt") or {}
    topology = doc.get("topology") or {}
    nodes: dict[str, Any] = topology.get("nodes") or {}
    interfaces: Counter[str] = Counter()
    for link in topology.get("links") or []:
        for endpoint in link.get("endpoints") or []:
            name = endpoint.partition(":")[0] if isinstance(endpoint, str) else endpoint["node"]
            interfaces[name] += 1
    no_proxy_hosts = []
    for name, node in nodes.items():
        no_proxy_hosts.append(name)
        no_proxy_hosts.extend(a for a in ((node or {}).get("mgmt-ipv4"),
                                          (node or {}).get("mgmt-ipv6")) if a)
    no_proxy_hosts.extend(s for s in (mgmt.get("ipv4-subnet"), mgmt.get("ipv6-subnet")) if s)
    no_proxy = ",".join(NO_PROXY_DEFAULTS) + "," + ",".join(sorted(no_proxy_hosts))
    plan = []
    for name in sorted(nodes):
        node = nodes[name] or {}
        container = long_name(lab, name)
        labels = {str(k): str(v) for k, v in (node.get("labels") or {}).items()}
        labels.update({
            "containerlab": lab,
            "clab-node-name": name,
            "clab-node-longname": container,
            "clab-node-kind": str(node.get("kind", "")).lower(),
            "clab-node-type": str(node.get("type", "")),
            "clab-node-group": str(node.get("group", "")),
            "clab-node-lab-dir": str(lab_dir.absolute() / f"clab-{lab}" / name),
            "clab-topo-file": str(lab_dir.absolute() / TOPOLOGY_FILE),
        })
        env = {str(k): _env_value(v) for k, v in (node.get("env") or {}).items()}
        env["no_proxy"] = env["NO_PROXY"] = no_proxy
        env.update({f"CLAB_LABEL_{to_env_key(k)}": v for k, v in labels.items()})
        env["CLAB_INTFS"] = str(interfaces[name])
        plan.append({
            "name": container,
            "hostname": name,
            "image": node.get("image"),
            "cmd": node.get("cmd"),
            "binds": [resolve_bind(str(b), lab_dir) for b in node.get("binds") or []],
            "tmpfs": dict(node.get("tmpfs") or {}),
            "ports": [str(p) for p in node.get("ports") or []],
            "labels": dict(sorted(labels.items())),
            "env": dict(sorted(env.items())),
            "network": mgmt.get("network", "clab"),
            "ipv4_address": node.get("mgmt-ipv4"),
            "ipv6_address": node.get("mgmt-ipv6"),
        })
    return plan
