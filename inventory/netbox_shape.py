"""Shape raw NetBox reads into inventory form: cables from their terminations, only what is used."""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from typing import Any

from .config_context import ASSIGNMENTS
from .netbox_client import NetBoxObject
from .refs import Index

# Fields whose values are user data: never cleaned, whatever keys they hold.
DATA_FIELDS = frozenset({"data", "config_context", "local_context_data", "custom_fields"})
# Written by NetBox for browsers and clients, not part of the inventory.
NOISE_KEYS = frozenset({"url", "display", "display_url", "_occupied"})
CONTEXT_ENDPOINTS = {
    "sites": "dcim.sites", "locations": "dcim.locations", "roles": "dcim.device-roles",
    "platforms": "dcim.platforms", "device_types": "dcim.device-types",
    "tenants": "tenancy.tenants",
}


def clean(value: Any, key: str | None = None) -> Any:
    """Drop NetBox's presentation keys (url, display) everywhere but inside user data."""
    if key in DATA_FIELDS:
        return value
    if isinstance(value, dict):
        return {k: clean(v, k) for k, v in value.items() if k not in NOISE_KEYS}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


def ref_id(ref: object) -> int | None:
    if isinstance(ref, dict):
        value = ref.get("id")
        return value if isinstance(value, int) else None
    return ref if isinstance(ref, int) and not isinstance(ref, bool) else None


def cables_from_terminations(
    terminations: list[NetBoxObject], cable_rows: dict[int, NetBoxObject],
    interfaces: dict[int, NetBoxObject],
) -> list[NetBoxObject]:
    """Cables with their ends, from cable-termination rows (cable, cable_end, type, id).

    Interface ends carry the interface (name and device) when it was read, so that an end on
    a device outside the selection is known as such rather than as a missing interface.
    """
    sides: dict[int, dict[str, list[NetBoxObject]]] = defaultdict(lambda: {"A": [], "B": []})
    for term in terminations:
        cable_id = ref_id(term.get("cable"))
        if cable_id is not None and term.get("cable_end") in ("A", "B"):
            sides[cable_id][term["cable_end"]].append(term)
    cables = []
    for cable_id in sorted(sides):
        row = dict(cable_rows.get(cable_id) or {"id": cable_id, "label": ""})
        for end, field in (("A", "a_terminations"), ("B", "b_terminations")):
            ends = []
            for term in sorted(sides[cable_id][end],
                               key=lambda t: (t["termination_type"], t["termination_id"])):
                end_row = {"object_type": term["termination_type"],
                           "object_id": term["termination_id"]}
                iface = interfaces.get(term["termination_id"])
                if term["termination_type"] == "dcim.interface" and iface is not None:
                    end_row["object"] = {k: iface.get(k) for k in ("id", "name", "device")}
                ends.append(clean(end_row))
            row[field] = ends
        cables.append(row)
    return cables


def referenced(objects: list[NetBoxObject], *fields: str) -> set[int]:
    """Ids referenced by `fields` of `objects` (single references or lists of them)."""
    ids: set[int] = set()
    for obj in objects:
        for name in fields:
            value = obj.get(name)
            for ref in value if isinstance(value, list) else [value]:
                found = ref_id(ref)
                if found is not None:
                    ids.add(found)
    return ids


def keep(objects: list[NetBoxObject], ids: set[int]) -> list[NetBoxObject]:
    return [obj for obj in objects if obj.get("id") in ids]


def location_ancestors(locations: list[NetBoxObject], ids: set[int]) -> set[int]:
    by_id = {loc["id"]: loc for loc in locations}
    found: set[int] = set()
    todo = list(ids)
    while todo:
        loc = by_id.get(todo.pop())
        if loc is None or loc["id"] in found:
            continue
        found.add(loc["id"])
        parent = ref_id(loc.get("parent"))
        if parent is not None:
            todo.append(parent)
    return found


def addresses_in_lab(
    addresses: list[NetBoxObject], interface_ids: set[int]
) -> list[NetBoxObject]:
    return [a for a in addresses if a.get("assigned_object_type") == "dcim.interface"
            and a.get("assigned_object_id") in interface_ids]


def prefixes_in_use(
    prefixes: list[NetBoxObject], addresses: list[NetBoxObject]
) -> list[NetBoxObject]:
    """The prefixes that hold at least one of the lab's addresses."""
    ips = []
    for addr in addresses:
        try:
            ips.append(ipaddress.ip_interface(addr.get("address", "")).ip)
        except ValueError:
            continue
    kept = []
    for prefix in prefixes:
        try:
            net = ipaddress.ip_network(prefix.get("prefix", ""), strict=False)
        except ValueError:
            continue
        if any(ip in net for ip in ips):
            kept.append(prefix)
    return kept


def contexts_in_scope(
    contexts: list[NetBoxObject], data: dict[str, list[NetBoxObject]], tag_slugs: set[str]
) -> list[NetBoxObject]:
    """Config contexts that may apply to the lab, with assignments trimmed to the lab's objects.

    A context assigned only to objects outside the lab cannot apply to its devices; dropping it
    (and foreign references from the others) keeps an export loadable on its own.
    """
    indexes = {ep: Index(ep, data.get(ep) or []) for ep in CONTEXT_ENDPOINTS.values()}
    kept = []
    for context in contexts:
        row = dict(context)
        applies = True
        for field in ASSIGNMENTS:
            refs = context.get(field) or []
            if not refs:
                continue
            if field == "tags":
                inside = [t for t in refs if (t.get("slug") if isinstance(t, dict) else t)
                          in tag_slugs]
            else:
                index = indexes[CONTEXT_ENDPOINTS[field]]
                inside = [r for r in refs if index.get(r) is not None]
            if not inside:
                applies = False
                break
            row[field] = inside
        if applies:
            kept.append(row)
    return kept


def tag_slugs_of(objects: list[NetBoxObject]) -> set[str]:
    slugs = set()
    for obj in objects:
        for tag in obj.get("tags") or []:
            slug = tag.get("slug") if isinstance(tag, dict) else tag
            if isinstance(slug, str):
                slugs.add(slug)
    return slugs


def lab_defaults(
    data: dict[str, list[NetBoxObject]], lab: str | None, sites: list[str]
) -> dict[str, Any]:
    """Lab settings NetBox implies: the lab name, the enterprise (the one tenant), mgmt prefix.

    lab: the given name, else the one selected site's slug, else the one tenant's, else "netbox".
    enterprise: the slug of the lab's only tenant (settings fall back to "enterprise").
    mgmt_prefix: the lab's only prefix with the IPAM role `management`.
    """
    tenants = data.get("tenancy.tenants") or []
    settings: dict[str, Any] = {}
    site_rows = data.get("dcim.sites") or []
    if lab:
        settings["lab"] = lab
    elif len(site_rows) == 1 or len(sites) == 1:
        settings["lab"] = site_rows[0]["slug"] if site_rows else sites[0]
    elif len(tenants) == 1:
        settings["lab"] = tenants[0]["slug"]
    else:
        settings["lab"] = "netbox"
    if len(tenants) == 1:
        settings["enterprise_name"] = tenants[0]["name"]
        settings["enterprise"] = tenants[0]["slug"]
    mgmt = [p["prefix"] for p in data.get("ipam.prefixes") or []
            if isinstance(p.get("role"), dict) and p["role"].get("slug") == "management"]
    if len(mgmt) == 1:
        settings["mgmt_prefix"] = mgmt[0]
    return settings
