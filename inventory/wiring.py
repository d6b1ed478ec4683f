"""Interfaces, addresses and cables of the lab's devices: which links the lab gets, and why not."""

from __future__ import annotations

import ipaddress
from collections import defaultdict

from .errors import Problems
from .model import Link, LinkEnd
from .names import slugify
from .refs import Index, NetBoxObject, label, ref_label

IMPAIRMENT_FIELDS = {"dtn_delay": "delay", "dtn_jitter": "jitter", "dtn_loss": "loss"}
# Interface id, and (device id, interface name), -> (device id, interface).
Interfaces = dict[object, tuple[str, NetBoxObject]]


class Wiring:
    """Reads interfaces, addresses and cables against the devices placed in the lab.

    Args:
        idx: the inventory's endpoints, indexed.
        problems: where every problem found goes.
        checks_prefixes: whether every address must lie in one of ipam.prefixes.
    """

    def __init__(self, idx: dict[str, Index], problems: Problems, checks_prefixes: bool) -> None:
        self.idx = idx
        self.problems = problems
        self.checks_prefixes = checks_prefixes

    def interfaces(
        self, devices_by_id: dict[int, str], device_ids: dict[str, str]
    ) -> Interfaces:
        """Map interface id and (device, name) to (device id, interface)."""
        found: dict[object, tuple[str, NetBoxObject]] = {}
        by_name = {name: dev_id for dev_id, name in device_ids.items()}
        for iface in self.idx["dcim.interfaces"].objects:
            dev_ref = iface.get("device")
            dev_id = None
            if isinstance(dev_ref, dict) and dev_ref.get("id") in devices_by_id:
                dev_id = devices_by_id[dev_ref["id"]]
            elif isinstance(dev_ref, int):
                dev_id = devices_by_id.get(dev_ref)
            else:
                dev_name = dev_ref.get("name") if isinstance(dev_ref, dict) else dev_ref
                dev_id = by_name.get(dev_name) if isinstance(dev_name, str) else None
            if dev_id is None:
                if not _netbox_ref(dev_ref) and self.idx["dcim.devices"].get(dev_ref) is None:
                    owner = ref_label(dev_ref)
                    self.problems.add("dcim.interfaces", f"{owner}:{iface.get('name')}",
                                      "device", f"device {owner!r} does not exist")
                continue  # an interface of a device outside the lab (or not placed in it)
            key = (dev_id, iface.get("name"))
            if key in found:
                self.problems.add("dcim.interfaces", f"{device_ids[dev_id]}:{iface.get('name')}",
                                  "name", "two interfaces share this name on one device")
                continue
            found[key] = (dev_id, iface)
            if "id" in iface:
                found[iface["id"]] = (dev_id, iface)
        return found

    def addresses(
        self, interfaces: Interfaces
    ) -> dict[tuple[str, str], list[str]]:
        prefixes = []
        for p in self.idx["ipam.prefixes"].objects:
            try:
                prefixes.append(ipaddress.ip_network(p["prefix"], strict=False))
            except (KeyError, ValueError):
                self.problems.add("ipam.prefixes", label(p), "prefix",
                                  f"{p.get('prefix')!r} is not a prefix")
        by_iface: dict[tuple[str, str], list[str]] = defaultdict(list)
        used: dict[object, str] = {}
        for addr in self.idx["ipam.ip-addresses"].objects:
            text = addr.get("address", "")
            try:
                iface_addr = ipaddress.ip_interface(text)
            except ValueError:
                self.problems.add("ipam.ip-addresses", label(addr), "address",
                                  f"{text!r} is not an address with a prefix length")
                continue
            target = self._assigned_interface(addr, interfaces)
            if target is None:
                continue  # not assigned to an interface of the lab
            if iface_addr.ip in used:
                self.problems.add("ipam.ip-addresses", text, "address",
                                  f"{iface_addr.ip} is used twice ({used[iface_addr.ip]} and "
                                  f"{target[0]}:{target[1]})")
                continue
            used[iface_addr.ip] = f"{target[0]}:{target[1]}"
            if self.checks_prefixes and not any(iface_addr.ip in net for net in prefixes):
                self.problems.add("ipam.ip-addresses", text, "address",
                                  f"{iface_addr.ip} lies outside every prefix in ipam.prefixes")
            by_iface[target].append(str(iface_addr))
        return by_iface

    def _assigned_interface(
        self, addr: NetBoxObject, interfaces: Interfaces
    ) -> tuple[str, str] | None:
        """The lab interface an address is assigned to; None when it is outside the lab.

        A hand-written assignment (device and interface by name) to an interface that does not
        exist is reported: only NetBox's own references (ids) may point outside the selection.
        """
        if addr.get("assigned_object_type", "dcim.interface") != "dcim.interface":
            return None
        hit = interfaces.get(addr.get("assigned_object_id"))
        obj = addr.get("assigned_object")
        if hit is None and isinstance(obj, dict):
            hit = interfaces.get(obj.get("id"))
            if hit is None:
                dev = obj.get("device")
                dev_name = dev.get("name") if isinstance(dev, dict) else dev
                hit = interfaces.get((slugify(str(dev_name)), obj.get("name")))
                if hit is None and not _netbox_ref(obj) and not _netbox_ref(dev):
                    self.problems.add("ipam.ip-addresses", label(addr), "assigned_object",
                                      f"interface {dev_name}:{obj.get('name')} does not exist")
        return (hit[0], hit[1]["name"]) if hit else None

    def links(self, interfaces: Interfaces) -> list[Link]:
        links = []
        cabled: dict[tuple[str, str], str] = {}
        for cable in self.idx["dcim.cables"].objects:
            cable_name = cable.get("label") or f"#{cable.get('id', '?')}"
            ends = []
            for side in ("a_terminations", "b_terminations"):
                end = self._cable_end(cable_name, side, cable.get(side) or [], interfaces)
                ends.append(end)
            if None in ends:
                continue
            (a_dev, a_if), (b_dev, b_if) = ends  # type: ignore[misc]
            if "__outside__" in (a_dev, b_dev):
                continue
            for side, key in (("a_terminations", (a_dev, a_if)), ("b_terminations", (b_dev, b_if))):
                if key in cabled:
                    self.problems.add("dcim.cables", cable_name, side,
                                      f"interface {key[0]}:{key[1]} is already cabled by "
                                      f"{cabled[key]}")
                    ends = []
                cabled[key] = cable_name
            if not ends:
                continue
            a, b = sorted([LinkEnd(device=a_dev, interface=a_if),
                           LinkEnd(device=b_dev, interface=b_if)],
                          key=lambda e: (e.device, e.interface))
            custom = cable.get("custom_fields") or {}
            impairment = {IMPAIRMENT_FIELDS[k]: str(v) for k, v in sorted(custom.items())
                          if k in IMPAIRMENT_FIELDS and v not in (None, "")}
            links.append(Link(a=a, b=b, label=str(cable.get("label") or ""),
                              impairment=impairment))
        return links

    def _cable_end(
        self,
        cable: str,
        side: str,
        terms: list[NetBoxObject],
        interfaces: Interfaces,
    ) -> tuple[str, str] | None:
        if not terms:
            return ("__outside__", "")  # a dangling cable (its far device was deleted): no link
        if len(terms) != 1:
            self.problems.add("dcim.cables", cable, side,
                              f"has {len(terms)} terminations; a lab link needs exactly one "
                              "interface at each end")
            return None
        term = terms[0]
        kind = term.get("object_type", "dcim.interface")
        if kind != "dcim.interface":
            what = {"circuits.circuittermination": "a circuit", "dcim.frontport": "a patch panel",
                    "dcim.rearport": "a patch panel"}.get(kind, kind)
            self.problems.add("dcim.cables", cable, side,
                              f"ends on {what} ({kind}); only interface-to-interface cables "
                              "can become lab links")
            return None
        nested = term.get("object")
        obj: NetBoxObject = nested if isinstance(nested, dict) else term
        hit = interfaces.get(term.get("object_id")) if "object_id" in term else None
        if hit is None:
            dev = obj.get("device")
            dev_name = dev.get("name") if isinstance(dev, dict) else dev
            iface = obj.get("name") or obj.get("interface")
            hit = interfaces.get((slugify(str(dev_name)), iface)) if dev_name else None
            if hit is None:
                where = (f"interface {dev_name}:{iface}" if dev_name
                         else f"interface #{term.get('object_id')}")
                if dev_name and not self._device_known(dev):
                    if _netbox_ref(dev):
                        # NetBox's own shape: a device that exists there, outside the selection.
                        return ("__outside__", "")
                    where = f"interface {dev_name}:{iface}: device {dev_name!r}"
                self.problems.add("dcim.cables", cable, side, f"{where} does not exist")
                return None
        return hit[0], hit[1]["name"]

    def _device_known(self, ref: object) -> bool:
        return self.idx["dcim.devices"].get(ref) is not None


def _netbox_ref(ref: object) -> bool:
    """A reference as NetBox writes it (an id, or a nested object with one), not by hand."""
    if isinstance(ref, dict):
        ref = ref.get("id")
    return isinstance(ref, int) and not isinstance(ref, bool)
