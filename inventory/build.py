"""Map NetBox REST objects (one list per endpoint) onto the ISA-95 Lab model, validating as it goes.

Mapping: enterprise = setting (tenant name when every device shares one tenant), site = Site,
area = top-level Location, line = its child Location, cell = Rack, device = Device.
Missing levels: a device with no location gets area `_area` and line `_line`; a device in a
top-level location gets line `_line`; a device with no rack gets cell `_cell`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from .errors import Problems
from .model import Device, Interface, Lab, Level, Settings, TwinProfile
from .names import name_problem, slugify
from .profiles import TwinProfiles
from .refs import Index, NetBoxObject, label, location_chain, ref_label, tag_slugs
from .wiring import Wiring

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
        self.profiles = TwinProfiles(self.idx, self.problems)

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
        chain = location_chain(location, self.idx["dcim.locations"])
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
    def merged_context(self, device: NetBoxObject) -> dict[str, Any]:
        """The device's config context merged from the inventory's config contexts, as NetBox
        renders it (used when the device has no rendered `config_context` of its own)."""
        return self.profiles.merged_context(device)

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

        wiring = Wiring(self.idx, self.problems, self.checks_prefixes)
        interfaces = wiring.interfaces(devices_by_id, device_ids)
        per_device: dict[str, list[NetBoxObject]] = defaultdict(list)
        for key, (dev_id, iface) in interfaces.items():
            if isinstance(key, tuple):
                per_device[dev_id].append(iface)
        addresses = wiring.addresses(interfaces)
        links = wiring.links(interfaces)
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
        tags = tag_slugs(device, self.idx["extras.tags"])
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
        profile = self.profiles.of(device, name)
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


def build_lab(data: dict[str, list[NetBoxObject]], settings: Settings, source: str) -> Lab:
    """Build and validate a Lab from NetBox-shaped data; raises InventoryError on problems."""
    return LabBuilder(data, settings).build(source)
