"""What seeding writes per endpoint: fields, references, natural keys, and NetBox's own rules."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Hashable
from typing import Any

from .refs import Index, label

# Writable fields copied from the file, per endpoint (references are mapped to NetBox ids).
FIELDS: dict[str, tuple[str, ...]] = {
    "extras.tags": ("name", "slug", "color", "description"),
    "tenancy.tenants": ("name", "slug", "description"),
    "dcim.sites": ("name", "slug", "status", "tenant", "time_zone", "facility", "description"),
    "dcim.locations": ("name", "slug", "site", "parent", "status", "tenant", "description"),
    "dcim.racks": ("name", "site", "location", "status", "tenant", "u_height", "facility_id",
                   "serial", "asset_tag", "description"),
    "dcim.manufacturers": ("name", "slug"),
    "dcim.platforms": ("name", "slug", "manufacturer", "description"),
    "dcim.device-roles": ("name", "slug", "color", "description"),
    "dcim.device-types": ("model", "slug", "manufacturer", "u_height", "part_number",
                          "description"),
    "ipam.roles": ("name", "slug"),
    "ipam.prefixes": ("prefix", "status", "role", "tenant", "is_pool", "description"),
    "dcim.devices": ("name", "role", "device_type", "platform", "tenant", "site", "location",
                     "rack", "position", "face", "status", "serial", "asset_tag", "description",
                     "comments", "tags", "local_context_data", "custom_fields"),
    "dcim.interfaces": ("device", "name", "label", "type", "enabled", "mgmt_only", "mtu",
                        "description", "tags"),
    "dcim.cables": ("label", "status", "type", "color", "length", "length_unit", "description",
                    "tags", "custom_fields"),
    "ipam.ip-addresses": ("address", "status", "tenant", "dns_name", "description", "tags"),
    "extras.config-contexts": ("name", "weight", "description", "is_active", "data"),
}
# Reference field -> the endpoint it points into.
REFS = {
    "tenant": "tenancy.tenants", "site": "dcim.sites", "location": "dcim.locations",
    "rack": "dcim.racks", "manufacturer": "dcim.manufacturers", "platform": "dcim.platforms",
    "role": "dcim.device-roles", "device_type": "dcim.device-types", "device": "dcim.devices",
}
NATURAL_KEYS: dict[str, Callable[[dict[str, Any]], Hashable]] = {
    "extras.custom-fields": lambda o: o.get("name"),
    "extras.tags": lambda o: o.get("slug"),
    "tenancy.tenants": lambda o: o.get("slug"),
    "dcim.sites": lambda o: o.get("slug"),
    "dcim.locations": lambda o: (o.get("site"), o.get("parent"), o.get("slug")),
    "dcim.racks": lambda o: (o.get("site"), o.get("location"), o.get("name")),
    "dcim.manufacturers": lambda o: o.get("slug"),
    "dcim.platforms": lambda o: o.get("slug"),
    "dcim.device-roles": lambda o: o.get("slug"),
    "dcim.device-types": lambda o: (o.get("manufacturer"), o.get("slug")),
    "ipam.roles": lambda o: o.get("slug"),
    "ipam.prefixes": lambda o: normal_address(o.get("prefix")),
    "dcim.devices": lambda o: (o.get("site"), o.get("name")),
    "dcim.interfaces": lambda o: (o.get("device"), o.get("name")),
    "ipam.ip-addresses": lambda o: normal_address(o.get("address")),
    "extras.config-contexts": lambda o: o.get("name"),
}
# NetBox's NONCONNECTABLE_IFACE_TYPES (dcim/constants.py): virtual, wireless and channel types.
UNCABLEABLE = frozenset({
    "virtual", "lag", "bridge", "channel", "ieee802.11a", "ieee802.11g", "ieee802.11n",
    "ieee802.11ac", "ieee802.11ad", "ieee802.11ax", "ieee802.11ay", "ieee802.11be",
    "ieee802.15.1", "ieee802.15.4", "other-wireless", "gsm", "cdma", "lte", "4g", "5g"})
DEFAULTS = {"dcim.device-roles": {"color": "9e9e9e"}, "dcim.interfaces": {"type": "other"}}
CUSTOM_FIELD_TYPES = {bool: "boolean", int: "integer", float: "decimal", str: "text",
                      dict: "json", list: "json"}
OBJECT_TYPES = {"dcim.cables": "dcim.cable", "dcim.devices": "dcim.device",
                "dcim.interfaces": "dcim.interface", "dcim.sites": "dcim.site",
                "dcim.racks": "dcim.rack", "dcim.locations": "dcim.location",
                "ipam.prefixes": "ipam.prefix", "ipam.ip-addresses": "ipam.ipaddress"}


def ref_target(endpoint: str, name: str) -> str | None:
    """The endpoint a field of `endpoint` refers into, or None for a plain field."""
    if name == "parent":
        return endpoint
    if endpoint == "ipam.prefixes" and name == "role":
        return "ipam.roles"
    return REFS.get(name)


def fetch_fields(endpoint: str) -> tuple[str, ...]:
    fields = FIELDS[endpoint]
    if endpoint == "ipam.ip-addresses":
        fields = (*fields, "assigned_object_type", "assigned_object_id")
    if endpoint == "dcim.devices":
        fields = (*fields, "primary_ip4")
    return fields


def in_file_order(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The file's order by id, so an empty NetBox hands out the same ids."""
    return sorted(objects, key=lambda o: (0, o["id"]) if isinstance(o.get("id"), int) else (1, 0))


def object_label(endpoint: str, obj: dict[str, Any], position: int) -> str:
    if endpoint == "dcim.interfaces":
        dev = obj.get("device")
        dev_name = dev.get("name") if isinstance(dev, dict) else dev
        return f"{dev_name}:{obj.get('name')}"
    return label(obj, position)


def location_depth(obj: dict[str, Any], index: Index) -> int:
    depth, parent = 0, index.get(obj.get("parent"))
    while parent is not None and depth < 32:
        depth, parent = depth + 1, index.get(parent.get("parent"))
    return depth


def choice_value(value: object) -> object:
    return value.get("value") if isinstance(value, dict) else value


def termination_set(terms: list[dict[str, Any]]) -> set[tuple[str, int]]:
    return {(t["object_type"], t["object_id"]) for t in terms}


def normal_address(value: object) -> str | None:
    try:
        return str(ipaddress.ip_interface(str(value)))
    except ValueError:
        return None if value is None else str(value)
