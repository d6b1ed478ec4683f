"""Seeding's last stages: cables (matched by the interfaces they join) and primary addresses."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from .netbox_client import NetBoxObject, chunk_ids
from .netbox_seed_spec import (
    FIELDS,
    UNCABLEABLE,
    choice_value,
    in_file_order,
    normal_address,
    object_label,
    termination_set,
)
from .netbox_shape import cables_from_terminations, ref_id
from .netbox_sync import WRITE_CHUNK, EndpointSync, SyncResult, Wanted, differences
from .refs import label

if TYPE_CHECKING:
    from .netbox_seed import Seeder


def seed_cables(seeder: Seeder) -> None:
    """Cables are matched by the interfaces they join: a cable on the same interfaces is
    the same cable (patched if its ends or fields differ); one cable per interface."""
    endpoint = "dcim.cables"
    counts = Counter[str]()
    present = present_cables(seeder)
    on_end = {(t["object_type"], t["object_id"]): cable for cable in present
              for side in ("a_terminations", "b_terminations") for t in cable[side]}
    creates: list[Wanted] = []
    patches: list[tuple[Wanted, dict[str, Any]]] = []
    for position, obj in enumerate(in_file_order(seeder.file[endpoint].objects), 1):
        name = object_label(endpoint, obj, position)
        body = seeder.payload(endpoint, obj, name)
        ends = [cable_ends(seeder, obj, side, name)
                for side in ("a_terminations", "b_terminations")]
        if body is None or ends[0] is None or ends[1] is None:
            continue
        body["a_terminations"], body["b_terminations"] = ends
        wanted = Wanted(name, id(obj), body)
        found: dict[int, NetBoxObject] = {}
        for end in termination_set(ends[0]) | termination_set(ends[1]):
            if end in on_end:
                found[on_end[end]["id"]] = on_end[end]
        if len(found) > 1:
            ids = ", ".join(f"#{c['id']}" for c in found.values())
            seeder.problem(endpoint, name, "terminations", f"its interfaces are cabled by "
                           f"several NetBox cables ({ids}); fix them in NetBox first")
            continue
        if not found:
            creates.append(wanted)
            continue
        cable = next(iter(found.values()))
        changed = differences({k: v for k, v in body.items() if "terminations" not in k},
                              cable)
        have = {frozenset(termination_set(cable["a_terminations"])),
                frozenset(termination_set(cable["b_terminations"]))}
        if have != {frozenset(termination_set(ends[0])), frozenset(termination_set(ends[1]))}:
            changed.update(a_terminations=ends[0], b_terminations=ends[1])
        if changed:
            patches.append((wanted, {"id": cable["id"], **changed}))
        else:
            counts["unchanged"] += 1
    sync = EndpointSync(seeder.client, endpoint, lambda o: id(o))
    result = SyncResult()
    sync.create_all(creates, result, seeder.parallel, cable_lanes(seeder, creates))
    sync.patch_all(patches, result)
    counts.update(result.counts)
    seeder.report.counts[endpoint] = counts
    seeder.report.problems += result.problems


def present_cables(seeder: Seeder) -> list[NetBoxObject]:
    """The NetBox cables on the inventory's interfaces, with all their ends."""
    terms = "id,cable,cable_end,termination_type,termination_id"
    ours = sorted(i for i in seeder.iface_device if i is not None)
    cable_ids: set[int] = set()
    for chunk in chunk_ids("interface_id", ours):
        rows = seeder.client.list_all("dcim.cable-terminations",
                                      {"fields": terms, "interface_id": chunk})
        cable_ids |= {c for c in (ref_id(r.get("cable")) for r in rows) if c is not None}
    ends: list[NetBoxObject] = []
    own: dict[int, NetBoxObject] = {}
    for chunk in chunk_ids("cable_id", sorted(cable_ids)):
        ends += seeder.client.list_all("dcim.cable-terminations",
                                       {"fields": terms, "cable_id": chunk})
        own.update((c["id"], c) for c in seeder.client.list_all("dcim.cables", {
            "fields": "id," + ",".join(FIELDS["dcim.cables"]), "id": chunk}))
    return cables_from_terminations(ends, own, {})


def cable_lanes(seeder: Seeder, creates: list[Wanted]) -> Callable[[Wanted], Hashable]:
    """Cables that touch a common device (by any chain of new cables) share one lane.

    Creating a cable updates its interfaces and traces paths across its devices; cables of
    disjoint device groups (e.g. the cells of a plant) can then be written concurrently.
    """
    parent: dict[int, int] = {}

    def root(node: int) -> int:
        while parent.setdefault(node, node) != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    devices_of = {}
    for item in creates:
        ends = item.payload["a_terminations"] + item.payload["b_terminations"]
        devices = [seeder.iface_device.get(t["object_id"], -t["object_id"]) for t in ends]
        devices_of[id(item)] = devices
        for other in devices[1:]:
            parent[root(other)] = root(devices[0])
    return lambda item: root(devices_of[id(item)][0])


def cable_ends(
    seeder: Seeder, cable: dict[str, Any], side: str, name: str
) -> list[dict[str, Any]] | None:
    """A cable side's terminations as NetBox interface ids; None (reported) when one fails."""
    ends = []
    for term in cable.get(side) or []:
        kind = term.get("object_type", "dcim.interface")
        if kind != "dcim.interface":
            seeder.problem("dcim.cables", name, side, f"ends on {kind}; only interface cables "
                           "can be seeded")
            return None
        ref = term.get("object_id")
        iface = seeder.file_interface(ref, term.get("object"))
        iface_id = seeder.ids.get("dcim.interfaces", {}).get(id(iface)) if iface else None
        if iface_id is None:
            seeder.problem("dcim.cables", name, side, f"interface {ref!r} is not in the "
                           "inventory or was not seeded")
            return None
        kind_of_port = choice_value(iface.get("type")) if iface else None
        if kind_of_port in UNCABLEABLE:
            # Checked here: NetBox refuses it too, but only after rolling back a whole batch.
            where = object_label("dcim.interfaces", iface, 0) if iface else "?"
            seeder.problem("dcim.cables", name, side, f"ends on {where}, a {kind_of_port} "
                           "interface: NetBox refuses cables on wireless and virtual "
                           "interfaces (give it a wired type, or leave it uncabled)")
            return None
        ends.append({"object_type": kind, "object_id": iface_id})
    if not ends:
        seeder.problem("dcim.cables", name, side, "has no terminations")
        return None
    return ends


def seed_primary_ips(seeder: Seeder) -> None:
    """Set each device's primary IPv4 once its addresses exist."""
    device_ids = sorted(seeder.ids.get("dcim.devices", {}).values())
    current: dict[int, int | None] = {}
    for chunk in chunk_ids("id", device_ids):
        for row in seeder.client.list_all("dcim.devices", {"fields": "id,primary_ip4",
                                                           "id": chunk}):
            current[row["id"]] = ref_id(row.get("primary_ip4"))
    patches, counts = [], Counter[str]()
    addresses = {normal_address(a.get("address")): a
                 for a in seeder.file["ipam.ip-addresses"].objects}
    for obj in seeder.file["dcim.devices"].objects:
        dev_id = seeder.ids.get("dcim.devices", {}).get(id(obj))
        ref = obj.get("primary_ip4")
        if dev_id is None or ref is None:
            continue
        ip = seeder.file["ipam.ip-addresses"].get(ref)
        if ip is None or (isinstance(ref, dict) and "address" in ref):
            # A device names its primary address; the file's ids may be absent or stale.
            address = ref.get("address") if isinstance(ref, dict) else ref
            ip = addresses.get(normal_address(address), ip)
        ip_id = seeder.ids.get("ipam.ip-addresses", {}).get(id(ip)) if ip else None
        if ip_id is None:
            shown = label(ref) if isinstance(ref, dict) else ref
            seeder.problem("dcim.devices", obj.get("name", "?"), "primary_ip4",
                           f"{shown!r} is not an address seeded from the inventory")
        elif current.get(dev_id) != ip_id:
            patches.append({"id": dev_id, "primary_ip4": ip_id})
        else:
            counts["unchanged"] += 1
    # Each patch saves one device (and re-caches its components): disjoint rows, so the
    # chunks go out concurrently.
    size = max(1, min(WRITE_CHUNK, -(-len(patches) // seeder.parallel)))
    chunks = [patches[i:i + size] for i in range(0, len(patches), size)]
    with ThreadPoolExecutor(max_workers=seeder.parallel) as pool:
        list(pool.map(lambda chunk: seeder.client.patch("dcim.devices", chunk), chunks))
    counts["updated"] = len(patches)
    seeder.report.counts["dcim.devices.primary_ip4"] = counts
