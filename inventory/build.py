"""Map NetBox REST objects (one list per endpoint) onto the ISA-95 Lab model, validating as it goes.

Mapping: enterprise = setting (tenant name when every device shares one tenant), site = Site,
area = top-level Location, line = its child Location, cell = Rack, device = Device.
Missing levels: a device with no location gets area `_area` and line `_line`; a device in a
top-level location gets line `_line`; a device with no rack gets cell `_cell`.
"""

from __future__ import annotations

import ipaddress
from collections import Counter, defaultdict
from typing import Any

import orjson
from pydantic import ValidationError

from .config_context import render_context
from .errors import Problems
from .model import Device, Interface, Lab, Level, Link, LinkEnd, Metric, Settings, TwinProfile
from .names import name_problem, slugify
from .refs import Index, NetBoxObject, key_of, label, ref_label

ENDPOINTS = (
    "tenancy.tenants",
    "dcim.sites",
    "dcim.locations",
    "dcim.racks",
    "dcim.platforms",
    "dcim.device-roles",
    "dcim.device-types",
    "dcim.devices",
    "dcim.interfaces",
    "dcim.cables",
    "ipam.prefixes",
    "ipam.ip-addresses",
    "extras.tags",
    "extras.config-contexts",
)
MISSING = {"area": "_area", "line": "_line", "cell": "_cell"}
# Where NetBox keeps a name unique: the fields that make the scope, per endpoint.
UNIQUE_NAME_SCOPES = {
    "dcim.sites": (),
    "dcim.locations": ("site", "parent"),
    "dcim.racks": ("site", "location"),
}
SCOPE_ENDPOINTS = {"site": "dcim.sites", "parent": "dcim.locations", "location": "dcim.locations"}
NOUNS = {"dcim.sites": "sites", "dcim.locations": "locations", "dcim.racks": "racks"}
IMPAIRMENT_FIELDS = {"dtn_delay": "delay", "dtn_jitter": "jitter", "dtn_loss": "loss"}


class LabBuilder:
    """Builds one Lab from NetBox-shaped data, collecting every problem on the way."""

    def __init__(self, data: dict[str, list[NetBoxObject]], settings: Settings) -> None:
        self.settings = settings
        self.idx = {ep: Index(ep, data.get(ep) or []) for ep in ENDPOINTS}
        # An inventory that lists prefixes at all (even none) plans its addresses: every lab
        # address must lie in one of them. NetBox's source lists them when NetBox has any.
        self.checks_prefixes = "ipam.prefixes" in data
        self.problems = Problems()
        self.levels: dict[str, Level] = {}
        self.slug_owner: dict[tuple[str, str], NetBoxObject] = {}
        self.duplicates: set[int] = set()  # id() of objects already reported as duplicates
        # Thousands of devices share racks, locations and config contexts: work each out once.
        self._slugs: dict[tuple[int, str], str | None] = {}
        self._contexts: dict[object, dict[str, Any]] = {}
        self._profiles: dict[bytes, TwinProfile] = {}

    # -- hierarchy -------------------------------------------------------------------------
    def _check_unique_names(self) -> None:
        """Two sites, two locations under one parent, two racks in one location: one name each.

        NetBox refuses such twins; in a file they would merge into one level of the lab, and a
        reference by name would pick one of them silently.
        """
        for endpoint, scope_fields in UNIQUE_NAME_SCOPES.items():
            first: dict[tuple[object, ...], NetBoxObject] = {}
            for obj in self.idx[endpoint].objects:
                name = obj.get("name")
                if not isinstance(name, str) or not name:
                    continue  # reported as a bad name where the object is used
                scope = [(f, self.idx[SCOPE_ENDPOINTS[f]].get(obj.get(f)), obj.get(f))
                         for f in scope_fields]
                key = (name, *(id(found) if found else ref_label(ref) for _, found, ref in scope))
                other = first.setdefault(key, obj)
                if other is obj:
                    continue
                where = " of ".join(f"{'site' if f == 'site' else 'location'} "
                                    f"{label(found) if found else ref_label(ref)!r}"
                                    for f, found, ref in reversed(scope) if ref is not None)
                where = f" in {where}" if where else ""
                self.problems.add(endpoint, name, "name",
                                  f"two {NOUNS[endpoint]} are named {name!r}{where} "
                                  f"({self._who(endpoint, other)} and {self._who(endpoint, obj)})")
                self.duplicates.update((id(other), id(obj)))

    def _who(self, endpoint: str, obj: NetBoxObject) -> str:
        """An object in a message: its id, else its position in the endpoint's list."""
        if obj.get("id") is not None:
            return f"id {obj['id']}"
        position = next(i for i, o in enumerate(self.idx[endpoint].objects, 1) if o is obj)
        return f"item {position}"

    def _slug(self, endpoint: str, obj: NetBoxObject, scope: str, where: str) -> str | None:
        """Slug of a named object, checked for bad names and collisions inside `scope`.

        Args:
            endpoint: the object's endpoint, for messages.
            obj: the site, location or rack.
            scope: the lab path the slug must be unique under.
            where: how the scope is named in messages.
        """
        memo = (id(obj), scope)
        if memo not in self._slugs:
            self._slugs[memo] = self._check_slug(endpoint, obj, scope, where)
        return self._slugs[memo]

    def _check_slug(self, endpoint: str, obj: NetBoxObject, scope: str,
                    where: str) -> str | None:
        name = obj.get("name")
        problem = name_problem(name)
        if problem:
            self.problems.add(endpoint, label(obj), "name", problem)
            return None
        slug = slugify(str(name))
        owner = self.slug_owner.setdefault((scope, slug), obj)
        if owner is obj:
            return slug
        if owner.get("name") != name:
            self.problems.add(
                endpoint, name, "name",
                f"collides with {owner.get('name')!r} after normalising (both become {slug!r} "
                f"in {where})",
            )
        elif not {id(owner), id(obj)} <= self.duplicates:
            # Twins NetBox allows (e.g. racks of two sub-locations that fold into one line).
            self.problems.add(endpoint, name, "name",
                              f"two {NOUNS[endpoint]} are named {name!r} in {where} "
                              f"({self._who(endpoint, owner)} and {self._who(endpoint, obj)})")
        return None

    def _level(self, kind: str, path: str, name: str) -> None:
        if path not in self.levels:
            self.levels[path] = Level(level=kind, path=path, name=name)  # type: ignore[arg-type]

    def _location_chain(self, location: NetBoxObject | None) -> list[NetBoxObject]:
        chain: list[NetBoxObject] = []
        while location is not None and len(chain) < 32:
            chain.insert(0, location)
            location = self.idx["dcim.locations"].get(location.get("parent"))
        return chain

    def _place(self, device: NetBoxObject, name: str) -> tuple[str, str, str, str] | None:
        """Return (site, area, line, cell) slugs of a device, or None after reporting why not."""
        site = self.idx["dcim.sites"].get(device.get("site"))
        if site is None:
            why = "device has no site" if not device.get("site") else (
                f"site {ref_label(device['site'])!r} does not exist")
            self.problems.add("dcim.devices", name, "site", why)
            return None
        site_slug = self._slug("dcim.sites", site, "", "the lab")
        rack = self.idx["dcim.racks"].get(device.get("rack"))
        if device.get("rack") and rack is None:
            self.problems.add("dcim.devices", name, "rack",
                              f"rack {ref_label(device['rack'])!r} does not exist")
            return None
        location = self.idx["dcim.locations"].get(device.get("location"))
        if location is None and rack is not None:
            location = self.idx["dcim.locations"].get(rack.get("location"))
        chain = self._location_chain(location)
        if site_slug is None:
            return None
        ent = self.settings.enterprise
        site_path = f"{ent}/{site_slug}"
        self._level("site", site_path, site["name"])
        area, line = MISSING["area"], MISSING["line"]
        if chain:
            area = self._slug("dcim.locations", chain[0], site_path,
                              f"site {site['name']}") or ""
        if len(chain) > 1 and area:
            line = self._slug("dcim.locations", chain[1], f"{site_path}/{area}",
                              f"location {chain[0]['name']}") or ""
        if not area or not line:
            return None
        self._level("area", f"{site_path}/{area}", chain[0]["name"] if chain else area)
        line_path = f"{site_path}/{area}/{line}"
        self._level("line", line_path, chain[1]["name"] if len(chain) > 1 else line)
        cell = MISSING["cell"]
        if rack is not None:
            cell = self._slug("dcim.racks", rack, line_path, f"line {line_path}") or ""
            if not cell:
                return None
        self._level("cell", f"{line_path}/{cell}", rack["name"] if rack else cell)
        return site_slug, area, line, cell

    # -- devices ---------------------------------------------------------------------------
    def _device_facts(self, device: NetBoxObject) -> dict[str, set[Any]]:
        facts: dict[str, set[Any]] = defaultdict(set)
        for field, endpoint in (
            ("sites", "dcim.sites"), ("roles", "dcim.device-roles"),
            ("platforms", "dcim.platforms"), ("device_types", "dcim.device-types"),
            ("tenants", "tenancy.tenants"),
        ):
            source = {"sites": "site", "roles": "role", "platforms": "platform",
                      "device_types": "device_type", "tenants": "tenant"}[field]
            ref = device.get(source) or (device.get("device_role") if source == "role" else None)
            obj = self.idx[endpoint].get(ref)
            if obj is not None:
                facts[field].add(key_of(obj))
        location = self.idx["dcim.locations"].get(device.get("location"))
        if location is None:
            rack = self.idx["dcim.racks"].get(device.get("rack"))
            location = self.idx["dcim.locations"].get(rack.get("location")) if rack else None
        facts["locations"] = {key_of(loc) for loc in self._location_chain(location)}
        facts["tags"] = set(self._tags(device))
        return facts

    def _tags(self, obj: NetBoxObject) -> list[str]:
        slugs = []
        for ref in obj.get("tags") or []:
            tag = self.idx["extras.tags"].get(ref)
            if tag is not None:
                slugs.append(tag.get("slug") or slugify(tag["name"]))
            elif isinstance(ref, dict):
                slugs.append(ref.get("slug") or slugify(ref.get("name", "")))
            else:
                slugs.append(str(ref))
        return sorted(set(slugs))

    def _twin_profile(self, device: NetBoxObject, name: str) -> TwinProfile | None | bool:
        """The device's twin profile; None when it has none, False when it is invalid."""
        context = device.get("config_context")
        if context is None:
            context = self.merged_context(device)
        raw = context.get("dtnlab")
        if raw is None:
            return None
        try:
            cache_key = orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            cache_key = b""
        if cache_key in self._profiles:
            return self._profiles[cache_key]
        profile = self._validate_profile(raw, name)
        if isinstance(profile, TwinProfile) and cache_key:
            self._profiles[cache_key] = profile
        return profile

    def merged_context(self, device: NetBoxObject) -> dict[str, Any]:
        """The device's config context merged from the inventory's config contexts, as NetBox
        renders it (used when the device has no rendered `config_context` of its own)."""
        local = device.get("local_context_data")
        key = (
            tuple(_ref_key(device.get(f)) for f in (
                "site", "role", "device_role", "platform", "device_type", "tenant",
                "location", "rack")),
            tuple(_ref_key(t) for t in device.get("tags") or []),
            orjson.dumps(local, option=orjson.OPT_SORT_KEYS) if local else b"",
        )
        if key not in self._contexts:
            self._contexts[key] = render_context(
                self._device_facts(device),
                self.idx["extras.config-contexts"].objects,
                self.idx,
                local,
            )
        return self._contexts[key]

    def _validate_profile(self, raw: object, name: str) -> TwinProfile | bool:
        where = "config_context.dtnlab"
        if not isinstance(raw, dict):
            self.problems.add("dcim.devices", name, where, "must be a mapping")
            return False
        metrics_raw = raw.get("metrics") or {}
        if not isinstance(metrics_raw, dict):
            self.problems.add("dcim.devices", name, f"{where}.metrics", "must be a mapping")
            return False
        metrics: dict[str, Metric] = {}
        valid = True
        for metric_name, spec in sorted(metrics_raw.items()):
            try:
                metrics[metric_name] = Metric.model_validate(spec or {})
            except ValidationError as exc:
                valid = False
                self._report(exc, name, f"{where}.metrics.{metric_name}")
        problem = name_problem(next((m for m in metrics if name_problem(m)), "ok"))
        if problem:
            self.problems.add("dcim.devices", name, f"{where}.metrics", f"metric name {problem}")
            valid = False
        valid = self._check_metrics(metrics, name) and valid
        try:
            profile = TwinProfile.model_validate({**raw, "metrics": {}})
        except ValidationError as exc:
            self._report(exc, name, where)
            return False
        return profile.model_copy(update={"metrics": metrics}) if valid else False

    def _report(self, exc: ValidationError, name: str, where: str) -> None:
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            self.problems.add("dcim.devices", name, f"{where}.{loc}" if loc else where,
                              err["msg"])

    def _check_metrics(self, metrics: dict[str, Metric], name: str) -> bool:
        """Report contradicting ranges and thresholds; True when there are none."""
        before = len(self.problems.items)
        for metric_name, m in metrics.items():
            field = f"config_context.dtnlab.metrics.{metric_name}"
            if m.min is not None and m.max is not None and m.min > m.max:
                self.problems.add("dcim.devices", name, f"{field}.min",
                                  f"min {m.min:g} is greater than max {m.max:g}")
                continue
            for band_name in ("normal", "warning"):
                band = getattr(m, band_name)
                if band is None:
                    continue
                low, high = band
                if low > high:
                    self.problems.add("dcim.devices", name, f"{field}.{band_name}",
                                      f"[{low:g}, {high:g}] is not an interval (low > high)")
                elif (m.min is not None and low < m.min) or (m.max is not None and high > m.max):
                    self.problems.add(
                        "dcim.devices", name, f"{field}.{band_name}",
                        f"[{low:g}, {high:g}] lies outside the metric's range "
                        f"[{_fmt(m.min)}, {_fmt(m.max)}]")
            if m.normal and m.warning and not (
                m.warning[0] <= m.normal[0] and m.normal[1] <= m.warning[1]
            ):
                self.problems.add("dcim.devices", name, f"{field}.normal",
                                  f"{_band(m.normal)} is not inside warning {_band(m.warning)}")
        return len(self.problems.items) == before

    def build(self, source: str) -> Lab:
        """Return the Lab, or raise InventoryError listing every problem found."""
        self._check_unique_names()
        devices_by_id: dict[int, str] = {}
        device_ids: dict[str, str] = {}
        first_site: dict[str, str] = {}
        device_rows: list[tuple[NetBoxObject, str, tuple[str, str, str, str]]] = []
        seen_names: Counter[tuple[str, str]] = Counter()
        for position, device in enumerate(self.idx["dcim.devices"].objects, 1):
            name = device.get("name")
            problem = name_problem(name)
            if problem or not isinstance(name, str):
                self.problems.add("dcim.devices", label(device, position), "name",
                                  problem or "is not a string")
                continue
            site_ref = ref_label(device.get("site"))
            seen_names[(site_ref, name)] += 1
            if seen_names[(site_ref, name)] == 2:
                self.problems.add("dcim.devices", name, "name",
                                  f"two devices are named {name!r} in site {site_ref!r}")
                continue
            dev_id = slugify(name)
            if dev_id in device_ids and device_ids[dev_id] != name:
                self.problems.add("dcim.devices", name, "name",
                                  f"collides with {device_ids[dev_id]!r} after normalising "
                                  f"(both become {dev_id!r})")
                continue
            if dev_id in device_ids:
                self.problems.add("dcim.devices", name, "name",
                                  f"devices named {name!r} in sites {first_site[dev_id]!r} and "
                                  f"{site_ref!r} would share one lab id; names must be unique "
                                  "across the lab")
                continue
            device_ids[dev_id] = name
            first_site[dev_id] = site_ref
            place = self._place(device, name)
            if place is None:
                continue
            if "id" in device:
                devices_by_id[device["id"]] = dev_id
            device_rows.append((device, dev_id, place))

        interfaces = self._interfaces(devices_by_id, device_ids)
        per_device: dict[str, list[NetBoxObject]] = defaultdict(list)
        for key, (dev_id, iface) in interfaces.items():
            if isinstance(key, tuple):
                per_device[dev_id].append(iface)
        addresses = self._addresses(interfaces)
        links = self._links(interfaces)
        devices = [self._device(row, per_device[row[1]], addresses) for row in device_rows]
        self.problems.raise_if_any(source)
        return Lab(
            settings=self.settings,
            levels=tuple(sorted(self.levels.values(), key=lambda lv: lv.path)),
            devices=tuple(sorted((d for d in devices if d is not None), key=lambda d: d.id)),
            links=tuple(sorted(links, key=lambda lk: (lk.a.device, lk.a.interface))),
        )

    def _device(
        self,
        row: tuple[NetBoxObject, str, tuple[str, str, str, str]],
        own_interfaces: list[NetBoxObject],
        addresses: dict[tuple[str, str], list[str]],
    ) -> Device | None:
        device, dev_id, (site, area, line, cell) = row
        name = device["name"]
        tags = self._tags(device)
        own = sorted(own_interfaces, key=lambda o: o["name"])
        ifaces = tuple(
            Interface.model_construct(
                name=i["name"],
                type=_choice(i.get("type")) or "other",
                mgmt_only=bool(i.get("mgmt_only")),
                addresses=tuple(sorted(addresses.get((dev_id, i["name"]), []))),
            )
            for i in own
        )
        mgmt = _address(device.get("primary_ip4")) or next(
            (a for i in ifaces if i.mgmt_only for a in i.addresses), None)
        profile = self._twin_profile(device, name)
        twin = profile if isinstance(profile, TwinProfile) else None
        twinned = self.settings.twin_tag in tags
        if twinned and profile is None:
            self.problems.add("dcim.devices", name, "config_context.dtnlab",
                              f"device is tagged {self.settings.twin_tag!r} but its config "
                              "context has no `dtnlab` twin profile")
        ref = self.idx["dcim.device-types"].get(device.get("device_type"))
        manufacturer = ref.get("manufacturer") if ref else None
        role = self.idx["dcim.device-roles"].get(device.get("role") or device.get("device_role"))
        if role is None:
            self.problems.add("dcim.devices", name, "role",
                              f"role {ref_label(device.get('role'))!r} does not exist")
            return None
        platform = self.idx["dcim.platforms"].get(device.get("platform"))
        return Device.model_construct(
            id=dev_id,
            name=name,
            netbox_id=device.get("id"),
            role=role.get("slug") or slugify(role["name"]),
            platform=(platform.get("slug") or slugify(platform["name"])) if platform else None,
            manufacturer=_slug_of(manufacturer),
            device_type=(ref.get("slug") or slugify(ref.get("model", ""))) if ref else "unknown",
            serial=str(device.get("serial") or ""),
            tags=tuple(tags),
            site=site, area=area, line=line, cell=cell,
            interfaces=ifaces,
            mgmt_address=mgmt,
            twinned=twinned,
            mobile=self.settings.mobile_tag in tags,
            twin=twin,
        )

    # -- interfaces, addresses, cables ----------------------------------------------------
    def _interfaces(
        self, devices_by_id: dict[int, str], device_ids: dict[str, str]
    ) -> dict[object, tuple[str, NetBoxObject]]:
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

    def _addresses(
        self, interfaces: dict[object, tuple[str, NetBoxObject]]
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

    @staticmethod
    def _assigned_interface(
        addr: NetBoxObject, interfaces: dict[object, tuple[str, NetBoxObject]]
    ) -> tuple[str, str] | None:
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
        return (hit[0], hit[1]["name"]) if hit else None

    def _links(self, interfaces: dict[object, tuple[str, NetBoxObject]]) -> list[Link]:
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
        interfaces: dict[object, tuple[str, NetBoxObject]],
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


def _ref_key(ref: object) -> object:
    if isinstance(ref, dict):
        return (ref.get("id"), ref.get("slug"), ref.get("name"))
    return ref


def _choice(value: object) -> str | None:
    if isinstance(value, dict):
        return str(value.get("value")) if value.get("value") is not None else None
    return str(value) if value is not None else None


def _address(ref: object) -> str | None:
    if isinstance(ref, dict):
        return ref.get("address")
    return ref if isinstance(ref, str) else None


def _slug_of(ref: object) -> str | None:
    if isinstance(ref, dict):
        return ref.get("slug") or (slugify(ref["name"]) if ref.get("name") else None)
    return slugify(ref) if isinstance(ref, str) else None


def _band(band: tuple[float, float]) -> str:
    return f"[{band[0]:g}, {band[1]:g}]"


def _fmt(value: float | None) -> str:
    return "-inf" if value is None else f"{value:g}"


def build_lab(data: dict[str, list[NetBoxObject]], settings: Settings, source: str) -> Lab:
    """Build and validate a Lab from NetBox-shaped data; raises InventoryError on problems."""
    return LabBuilder(data, settings).build(source)
