"""Where the lab's interface addresses come from when runtime.json does not carry them.

runtime.json's topology nodes may list `interfaces: {name: [cidr, ...]}`; until every lab has
them, the NetBox-shaped inventory file kept in the lab folder (inventory.yaml or .json) is read
for its `ipam.ip-addresses`. Neither present: the planner plans every address.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)

INVENTORY_FILES = ("inventory.json", "inventory.yaml", "inventory.yml")


def _device_name(assigned: Mapping[str, Any]) -> str:
    device = assigned.get("device")
    if isinstance(device, Mapping):
        return str(device.get("name") or "")
    return str(device or "")


def addresses_from_netbox(doc: Mapping[str, Any],
                          nodes: list[Mapping[str, Any]]) -> dict[str, dict[str, list[str]]]:
    """{node id: {interface: [cidr]}} from a NetBox export's `ipam.ip-addresses`.

    Devices are matched by NetBox name (a topology node's `name`) or by id; addresses on
    interfaces of devices that are not nodes of the topology are ignored.
    """
    by_name = {str(n.get("name") or n["id"]): str(n["id"]) for n in nodes}
    by_name.update({str(n["id"]): str(n["id"]) for n in nodes})
    found: dict[str, dict[str, list[str]]] = {}
    for entry in doc.get("ipam.ip-addresses") or []:
        assigned = entry.get("assigned_object") or {}
        if not isinstance(assigned, Mapping) or not entry.get("address"):
            continue
        node_id = by_name.get(_device_name(assigned))
        iface = assigned.get("name")
        if node_id is None or not iface:
            continue
        found.setdefault(node_id, {}).setdefault(str(iface), []).append(str(entry["address"]))
    return found


def lab_addresses(lab_dir: Path, topology: Mapping[str, Any]
                  ) -> tuple[dict[str, dict[str, list[str]]], str]:
    """The addresses to plan with and where they came from (for the log and network.json)."""
    nodes = list(topology.get("nodes") or [])
    if any(n.get("interfaces") for n in nodes):
        return {}, "runtime.json"
    for name in INVENTORY_FILES:
        path = lab_dir / name
        if not path.is_file():
            continue
        try:
            text = path.read_text()
            doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            log.warning("%s: not read for addresses (%s); planning them", path, exc)
            continue
        if isinstance(doc, Mapping):
            found = addresses_from_netbox(doc, nodes)
            if found:
                return found, str(path.name)
    return {}, "planned"
