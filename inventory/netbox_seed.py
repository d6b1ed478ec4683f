"""Seed NetBox from a NetBox-shaped inventory: create what is missing, update what differs."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from .build import ENDPOINTS
from .config_context import ASSIGNMENTS
from .names import slugify
from .netbox_client import NetBoxClient, NetBoxObject
from .netbox_seed_links import seed_cables, seed_primary_ips
from .netbox_seed_spec import (
    CUSTOM_FIELD_TYPES,
    DEFAULTS,
    FIELDS,
    NATURAL_KEYS,
    OBJECT_TYPES,
    fetch_fields,
    in_file_order,
    location_depth,
    object_label,
    ref_target,
)
from .netbox_shape import CONTEXT_ENDPOINTS
from .netbox_sync import EndpointSync, SyncResult, Wanted
from .refs import Index, label
from .wiring import IMPAIRMENT_FIELDS

log = logging.getLogger(__name__)

# Objects are matched to NetBox's by natural key (slug; site + name for devices; device + name for
# interfaces; address; the interfaces a cable joins; ...), never by the file's ids, which are only
# used to follow the file's own references. Objects are created in the file's id order, so seeding
# a file into an empty NetBox gives its devices the same ids. A second run changes nothing.

# Endpoints written by concurrent requests, and the NetBox row each object's creation updates
# (a device's interface counter), so that no two concurrent requests lock the same row.
LANES: dict[str, Callable[[Seeder, Wanted], Hashable]] = {
    "dcim.interfaces": lambda seeder, item: item.payload.get("device"),
    "ipam.ip-addresses": lambda seeder, item: seeder.iface_device.get(
        item.payload.get("assigned_object_id")),
}


@dataclass
class SeedReport:
    """Per endpoint: created, updated, unchanged; and every object NetBox refused."""

    counts: dict[str, Counter[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    requests: int = 0
    seconds: float = 0.0

    def total(self, what: str) -> int:
        return sum(c[what] for c in self.counts.values())

    @property
    def changed(self) -> bool:
        return bool(self.total("created") or self.total("updated"))


def seed(data: dict[str, Any], url: str, token: str, *, verify: bool = True,
         ca_file: str | None = None, timeout: float = 300.0, parallel: int = 3) -> SeedReport:
    """Load a NetBox-shaped inventory into NetBox (how objects are matched: see above).

    Args:
        data: the inventory, as read_inventory_file returns it.
        url: NetBox base URL.
        token: an API token allowed to write.
        verify: verify NetBox's TLS certificate.
        ca_file: CA bundle for that.
        timeout: seconds per request (bulk writes are slow).
        parallel: concurrent write requests where they touch disjoint rows.

    Returns:
        The counts and the problems (objects NetBox refused or the file cannot place).
    """
    client = NetBoxClient(url, token, verify=verify, ca_file=ca_file, timeout=timeout,
                          workers=parallel)
    return Seeder(client, data, parallel).run()


class Seeder:
    """One seeding run: endpoints in dependency order, the file's objects mapped to NetBox ids
    by identity (`id(obj)`), so hand-written references by slug or name resolve like ids."""

    def __init__(self, client: NetBoxClient, data: dict[str, Any], parallel: int = 3) -> None:
        self.client = client
        self.data = data
        self.file = {ep: Index(ep, data.get(ep) or []) for ep in ENDPOINTS}
        self.file["dcim.manufacturers"] = Index("dcim.manufacturers", self._nested(
            [("dcim.device-types", "manufacturer"), ("dcim.platforms", "manufacturer")]))
        self.file["ipam.roles"] = Index("ipam.roles", self._nested([("ipam.prefixes", "role")]))
        self.ids: dict[str, dict[Hashable, int]] = {}
        self.existing: dict[str, list[NetBoxObject]] = {}
        self.report = SeedReport()
        self.parallel = parallel
        self.iface_device: dict[int | None, int] = {}  # NetBox interface id -> its device's
        self.iface_by_name = {
            (id(self.file["dcim.devices"].get(i.get("device"))), i.get("name")): i
            for i in self.file["dcim.interfaces"].objects}

    def _nested(self, where: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """Objects the file only names inside others (manufacturers, prefix roles), by slug."""
        found: dict[str, dict[str, Any]] = {}
        for endpoint, name in where:
            for obj in self.data.get(endpoint) or []:
                ref = obj.get(name)
                if isinstance(ref, str):
                    ref = {"name": ref, "slug": slugify(ref)}
                if isinstance(ref, dict) and (ref.get("slug") or ref.get("name")):
                    slug = ref.get("slug") or slugify(ref["name"])
                    found.setdefault(slug, {"name": ref.get("name") or slug, "slug": slug})
        return [{"id": slug, **obj} for slug, obj in sorted(found.items())]

    # -- references ----------------------------------------------------------------------------
    def resolve(self, endpoint: str, ref: object) -> int | None:
        """The NetBox id of what a file reference points to (by the file's id, slug or name)."""
        if endpoint in ("dcim.manufacturers", "ipam.roles") and isinstance(ref, (dict, str)):
            # Known only by the slug they are nested under (see _nested).
            ref = ref.get("slug") or slugify(ref.get("name", "")) if isinstance(ref, dict) \
                else slugify(ref)
        target = self.file[endpoint].get(ref)
        if target is not None:
            return self.ids.get(endpoint, {}).get(id(target))
        # Not in the file: an object NetBox already holds, found by slug or name.
        wanted = ref.get("slug") or ref.get("name") if isinstance(ref, dict) else ref
        for obj in self.existing.get(endpoint) or []:
            if wanted is not None and wanted in (obj.get("slug"), obj.get("name")):
                return int(obj["id"])
        return None

    def payload(self, endpoint: str, obj: dict[str, Any], item: str) -> dict[str, Any] | None:
        """The write payload of a file object; None (after reporting) when a reference fails."""
        body: dict[str, Any] = dict(DEFAULTS.get(endpoint, {}))
        for name in FIELDS[endpoint]:
            value = obj.get(name, obj.get("device_role") if name == "role" else None)
            if name not in obj and value is None:
                continue
            target = ref_target(endpoint, name)
            if name == "tags":
                body[name] = self.tag_ids(value or [], endpoint, item)
            elif target is not None:
                body[name] = None if value is None else self.resolve(target, value)
                if value is not None and body[name] is None:
                    shown = label(value) if isinstance(value, dict) else value
                    self.problem(endpoint, item, name, f"{shown!r} is neither seeded from the "
                                 "inventory nor found in NetBox")
                    return None
            elif isinstance(value, dict) and "value" in value and "id" not in value:
                body[name] = value["value"]  # a choice as NetBox renders it
            else:
                body[name] = value
        return body

    def tag_ids(self, refs: list[Any], endpoint: str, item: str) -> list[int]:
        ids = []
        for ref in refs:
            tag = self.resolve("extras.tags", ref)
            if tag is None:
                shown = label(ref) if isinstance(ref, dict) else ref
                self.problem(endpoint, item, "tags", f"tag {shown!r} is neither seeded from the "
                             "inventory nor found in NetBox; left out")
            else:
                ids.append(tag)
        return sorted(ids)

    def file_interface(self, ref: object, obj: object) -> dict[str, Any] | None:
        """The file's interface an address or a cable end names: by id, else by device + name
        (never by name alone, which many devices share)."""
        ids = self.file["dcim.interfaces"]
        found = ids.get(ref) if isinstance(ref, int) else None
        if found is None and isinstance(obj, dict):
            found = ids.get(obj["id"]) if isinstance(obj.get("id"), int) else None
            if found is None:
                device = self.file["dcim.devices"].get(obj.get("device"))
                found = self.iface_by_name.get((id(device), obj.get("name")))
        return found

    def problem(self, endpoint: str, item: str, name: str, message: str) -> None:
        self.report.problems.append(f"{endpoint}[{item}].{name}: {message}")

    # -- the run -------------------------------------------------------------------------------
    def run(self) -> SeedReport:
        start = time.perf_counter()
        before = self.client.requests
        self.client.status()
        self.custom_fields()
        for endpoint in ("extras.tags", "tenancy.tenants", "dcim.sites"):
            self.simple(endpoint)
        self.locations()
        for endpoint in ("dcim.racks", "dcim.manufacturers", "dcim.platforms",
                         "dcim.device-roles", "dcim.device-types", "ipam.roles",
                         "ipam.prefixes", "dcim.devices", "dcim.interfaces"):
            self.simple(endpoint)
        seed_cables(self)
        self.simple("ipam.ip-addresses")
        seed_primary_ips(self)
        self.config_contexts()
        self.report.requests = self.client.requests - before
        self.report.seconds = time.perf_counter() - start
        return self.report

    def fetch(self, endpoint: str, fields: tuple[str, ...], **params: Any) -> list[NetBoxObject]:
        wanted = ",".join(["id", *fields])
        rows = self.client.list_all(endpoint, {"fields": wanted, "ordering": "id", **params})
        self.existing[endpoint] = rows
        return rows

    def apply(self, endpoint: str, wanted: list[Wanted], existing: list[NetBoxObject]) -> None:
        start = time.perf_counter()
        # Devices keep the file's order (and so its ids, in an empty NetBox); nothing refers to
        # the ids of interfaces or addresses, which are written concurrently.
        lane = LANES.get(endpoint)
        result: SyncResult = EndpointSync(self.client, endpoint, NATURAL_KEYS[endpoint]).run(
            wanted, existing, self.parallel if lane else 1,
            (lambda item: lane(self, item)) if lane else None)
        self.ids.setdefault(endpoint, {}).update(result.ids)
        self.report.counts[endpoint] = result.counts
        self.report.problems += result.problems
        log.debug("%s: %d created, %d updated, %d unchanged in %.1f s", endpoint,
                 result.counts["created"], result.counts["updated"], result.counts["unchanged"],
                 time.perf_counter() - start)

    def wanted(self, endpoint: str, objects: list[dict[str, Any]]) -> list[Wanted]:
        items = []
        for position, obj in enumerate(in_file_order(objects), 1):
            name = object_label(endpoint, obj, position)
            body = self.payload(endpoint, obj, name)
            if body is None:
                continue
            if endpoint == "dcim.devices":
                body = self.device_context(obj, body)
            if endpoint == "ipam.ip-addresses" and not self.assign(obj, body, name):
                continue
            items.append(Wanted(name, id(obj), body))
        return items

    def simple(self, endpoint: str) -> None:
        objects = self.file[endpoint].objects
        existing = self.fetch(endpoint, fetch_fields(endpoint))
        wanted = self.wanted(endpoint, objects)
        self.apply(endpoint, wanted, existing)
        if endpoint == "dcim.interfaces":
            ids = self.ids[endpoint]
            self.iface_device.update({ids[w.ref]: w.payload["device"] for w in wanted
                                      if w.ref in ids})

    def locations(self) -> None:
        """Locations parents first: one pass per depth, each able to name the last one's ids."""
        endpoint = "dcim.locations"
        objects = self.file[endpoint].objects
        depth = {id(o): location_depth(o, self.file[endpoint]) for o in objects}
        existing = self.fetch(endpoint, fetch_fields(endpoint))
        for level in sorted(set(depth.values())):
            batch = [o for o in objects if depth[id(o)] == level]
            before = Counter(self.report.counts.get(endpoint, Counter()))
            self.apply(endpoint, self.wanted(endpoint, batch), existing)
            self.report.counts[endpoint] += before

    def device_context(self, obj: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        """A NetBox dump without its config contexts still carries each device's rendered one:
        keep it as local context data, so NetBox renders the same twin profile."""
        if (not self.data.get("extras.config-contexts") and obj.get("config_context")
                and "local_context_data" not in obj):
            body["local_context_data"] = obj["config_context"]
        return body

    def assign(self, obj: dict[str, Any], body: dict[str, Any], name: str) -> bool:
        kind = obj.get("assigned_object_type")
        target = obj.get("assigned_object_id")
        if kind is None and target is None:
            return True
        if kind != "dcim.interface":
            self.problem("ipam.ip-addresses", name, "assigned_object_type",
                         f"{kind!r}: only device interfaces can be seeded")
            return False
        iface = self.file_interface(target, obj.get("assigned_object"))
        iface_id = self.ids.get("dcim.interfaces", {}).get(id(iface)) if iface else None
        if iface_id is None:
            self.problem("ipam.ip-addresses", name, "assigned_object_id",
                         f"interface {target!r} is not in the inventory or was not seeded")
            return False
        body["assigned_object_type"] = kind
        body["assigned_object_id"] = iface_id
        return True

    def custom_fields(self) -> None:
        """dtnlab's cable impairment fields, and any custom field the file's objects carry."""
        wanted: dict[str, dict[str, Any]] = {
            name: {"name": name, "type": "text", "object_types": ["dcim.cable"],
                   "description": f"dtnlab link impairment: {what} (e.g. 2ms, 1%)"}
            for name, what in IMPAIRMENT_FIELDS.items()}
        for endpoint, object_type in OBJECT_TYPES.items():
            for obj in self.data.get(endpoint) or []:
                for name, value in (obj.get("custom_fields") or {}).items():
                    spec = wanted.setdefault(name, {"name": name, "object_types": []})
                    if value is not None and "type" not in spec:
                        spec["type"] = CUSTOM_FIELD_TYPES.get(type(value), "text")
                    if object_type not in spec["object_types"]:
                        spec["object_types"].append(object_type)
        existing = {c["name"]: c for c in self.fetch(
            "extras.custom-fields", ("name", "type", "object_types"))}
        creates, patches, counts = [], [], Counter[str]()
        for name, spec in sorted(wanted.items()):
            spec.setdefault("type", "text")
            have = existing.get(name)
            if have is None:
                creates.append(spec)
            elif set(spec["object_types"]) - set(have.get("object_types") or []):
                types = sorted(set(spec["object_types"]) | set(have.get("object_types") or []))
                patches.append({"id": have["id"], "object_types": types})
            else:
                counts["unchanged"] += 1
        if creates:
            self.client.post("extras.custom-fields", creates)
            counts["created"] += len(creates)
        if patches:
            self.client.patch("extras.custom-fields", patches)
            counts["updated"] += len(patches)
        self.report.counts["extras.custom-fields"] = counts

    def config_contexts(self) -> None:
        endpoint = "extras.config-contexts"
        wanted = []
        for position, obj in enumerate(in_file_order(self.file[endpoint].objects), 1):
            name = object_label(endpoint, obj, position)
            body = self.payload(endpoint, obj, name)
            if body is None:
                continue
            for assignment in ASSIGNMENTS:
                refs = obj.get(assignment) or []
                if assignment == "tags":
                    # A config context names its tags by slug (NetBox's REST form).
                    slugs = {r if isinstance(r, str) else r.get("slug") for r in refs}
                    body["tags"] = sorted(s for s in slugs if isinstance(s, str))
                    continue
                ids = [self.resolve(CONTEXT_ENDPOINTS[assignment], r) for r in refs]
                if None in ids:
                    self.problem(endpoint, name, assignment, "names an object that is neither in "
                                 "the inventory nor in NetBox")
                body[assignment] = sorted(i for i in ids if i is not None)
            wanted.append(Wanted(name, id(obj), body))
        existing = self.fetch(endpoint, (*FIELDS[endpoint], *ASSIGNMENTS))
        self.apply(endpoint, wanted, existing)
