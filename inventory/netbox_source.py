"""The NetBox inventory source: few concurrent, filtered, paged REST reads -> the Lab model."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .build import ENDPOINTS, build_lab
from .model import Lab
from .netbox_client import (
    PAGE_SIZE,
    NetBoxClient,
    NetBoxError,
    NetBoxObject,
    chunk_ids,
    id_ranges,
)
from .netbox_reader import PagedReader, Query
from .netbox_shape import (
    addresses_in_lab,
    cables_from_terminations,
    clean,
    contexts_in_scope,
    keep,
    lab_defaults,
    location_ancestors,
    prefixes_in_use,
    ref_id,
    referenced,
    tag_slugs_of,
)
from .source import lab_settings

log = logging.getLogger(__name__)

# What it reads (one query each unless paged; never one request per device):
#   status; sites, tenants, tags of the selection (to report a selection that names nothing);
#   platforms, device roles, device types, config contexts, prefixes (small catalogues);
#   devices (filtered by site/tenant/tag server-side, with NetBox's rendered `config_context`);
#   interfaces (with their `cable`); cables (own fields only: label, status, custom fields);
#   locations and racks; then the interfaces' IP addresses (by ranges of interface ids) and
#   the cables' ends from cable-terminations (by chunks of cable ids), and the far-end
#   interfaces outside the selection (usually none).
# With a site selection interfaces, cables, locations and racks are read in parallel with the
# devices; with a tenant or tag selection they follow the devices, by chunks of device ids.
# Measured on a 500-device site: interfaces with `link_peers` cost NetBox 6.1 s against 1.7 s
# without, and the cables endpoint with its terminations 6.8 s against 1.8 s, while the
# cable-terminations rows cost 0.5 s (bench/netbox_bench.py --probe).
# `fields=` keeps NetBox from rendering (and prefetching for) what the lab never reads.
FIELDS = {
    "tenancy.tenants": "id,name,slug,description",
    "dcim.sites": "id,name,slug,status,tenant,time_zone,description",
    "dcim.locations": "id,name,slug,site,parent,status,tenant,description",
    "dcim.racks": "id,name,site,location,status,tenant,u_height,description",
    "dcim.platforms": "id,name,slug,description",
    "dcim.device-roles": "id,name,slug,color,description",
    "dcim.device-types": "id,model,slug,manufacturer,u_height,description",
    "dcim.devices": "id,name,role,device_type,platform,tenant,site,location,rack,position,face,"
                    "status,serial,asset_tag,description,tags,primary_ip4,custom_fields,"
                    "local_context_data,config_context",
    "dcim.interfaces": "id,device,name,label,type,enabled,mgmt_only,description,tags,cable",
    "dcim.cable-terminations": "id,cable,cable_end,termination_type,termination_id",
    "dcim.cables": "id,label,status,type,description,custom_fields",
    "ipam.prefixes": "id,prefix,status,role,description",
    "ipam.ip-addresses": "id,address,status,dns_name,description,assigned_object_type,"
                         "assigned_object_id,assigned_object",
    "extras.tags": "id,name,slug,color,description",
    "extras.config-contexts": "id,name,weight,description,is_active,data,sites,locations,roles,"
                              "platforms,device_types,tenants,tags",
}
CATALOGUES = ("tenancy.tenants", "extras.tags", "dcim.platforms", "dcim.device-roles",
              "dcim.device-types", "extras.config-contexts", "ipam.prefixes")


@dataclass
class FetchStats:
    """What a fetch cost: requests over the wire and seconds."""

    requests: int = 0
    seconds: float = 0.0
    objects: dict[str, int] = field(default_factory=dict)


class NetBoxSource:
    """Loads a Lab from NetBox's REST API; the same data a NetBox-shaped file holds.

    Args:
        url: NetBox base URL.
        token: API token.
        sites: site slugs to select (any of them).
        tenant: tenant slug to select.
        tags: device tag slugs to select (any of them).
        interface_tags: when given, only interfaces with one of these tags join the lab.
        ca_file: CA bundle to verify NetBox's TLS certificate with.
        verify: verify the certificate at all (keep it on outside a lab).
        timeout: seconds per request.
        lab: the lab name (default: the one site's slug, else the one tenant's, else "netbox").
        workers: concurrent requests.
        page_size: objects per page (NetBox caps it at its MAX_PAGE_SIZE, 1000 by default).
    """

    def __init__(
        self,
        url: str,
        token: str,
        sites: list[str] | None = None,
        tenant: str | None = None,
        tags: list[str] | None = None,
        interface_tags: list[str] | None = None,
        ca_file: str | None = None,
        verify: bool = True,
        timeout: float = 60.0,
        lab: str | None = None,
        workers: int = 4,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.client = NetBoxClient(url, token, verify=verify, ca_file=ca_file, timeout=timeout,
                                   workers=workers)
        self.sites = sorted(set(sites or []))
        self.tenant = tenant
        self.tags = sorted(set(tags or []))
        self.interface_tags = sorted(set(interface_tags or []))
        self.lab = lab
        self.workers = workers
        self.page_size = page_size
        self.stats = FetchStats()

    @property
    def name(self) -> str:
        """How the source is named in messages."""
        return self.client.url

    def load(self) -> Lab:
        """Fetch the selection and build the Lab; InventoryError lists what cannot be mapped."""
        data = self.fetch()
        settings = lab_settings(data, self.lab, "netbox", self.name)
        return build_lab(data, settings, self.name)

    # -- fetching ----------------------------------------------------------------------------
    def _device_filters(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.sites:
            params["site"] = self.sites
        if self.tenant:
            params["tenant"] = self.tenant
        if self.tags:
            params["tag"] = self.tags
        return params

    def _q(self, endpoint: str, params: dict[str, Any] | None = None,
           bucket: str | None = None) -> Query:
        query = Query(bucket or endpoint, endpoint, {"fields": FIELDS[endpoint], **(params or {})})
        self._pending[query.bucket] += 1
        return query

    def fetch(self) -> dict[str, Any]:
        """Read the selection: {endpoint: [objects]} plus the `dtnlab` settings NetBox implies."""
        start = time.perf_counter()
        before = self.client.requests
        self._pending: Counter[str] = Counter()
        self.client.status()
        by_device = bool(self.tenant or self.tags)  # else a site filter reaches every endpoint
        iface_filter = {"tag": self.interface_tags} if self.interface_tags else {}
        site_filter = {"site": self.sites} if self.sites else {}
        # The sites endpoint filters by `slug` (an unknown `site` parameter would be ignored).
        checks = [self._q("dcim.sites", {"slug": self.sites} if self.sites else {},
                          "selected.sites")]
        if self.tenant:
            checks.append(self._q("tenancy.tenants", {"slug": self.tenant}, "selected.tenant"))
        if self.tags:
            checks.append(self._q("extras.tags", {"slug": self.tags}, "selected.tags"))
        catalogues = [self._q(ep) for ep in CATALOGUES]
        waiting = {id(q) for q in checks}

        def on_done(query: Query, seen: dict[str, list[NetBoxObject]]) -> list[Query]:
            self._pending[query.bucket] -= 1
            if self._pending[query.bucket] == 0:
                if query.bucket == "dcim.interfaces":
                    return self._termination_queries(seen) + self._address_queries(seen)
                if query.bucket == "dcim.cable-terminations":
                    return self._far_end_queries(seen)
            if id(query) in waiting:
                waiting.discard(id(query))
                if waiting:
                    return []
                self._check_selection(seen)
                follow = [self._q("dcim.devices", self._device_filters())]
                if not by_device:
                    follow += [self._q("dcim.interfaces", {**site_filter, **iface_filter}),
                               self._q("dcim.cables", site_filter),
                               self._q("dcim.locations", site_filter),
                               self._q("dcim.racks", site_filter)]
                return follow
            if query.endpoint != "dcim.devices":
                return []
            devices = seen.get("dcim.devices") or []
            if not devices:
                raise NetBoxError(f"the selection ({self.describe()}) matches no device in "
                                  f"NetBox at {self.client.url}")
            if not by_device:
                return []
            ids = sorted(d["id"] for d in devices)
            site_ids = sorted(referenced(devices, "site"))
            return ([self._q("dcim.interfaces", {"device_id": chunk, **iface_filter})
                     for chunk in chunk_ids("device_id", ids)]
                    + [self._q("dcim.cables", {"device_id": chunk})
                       for chunk in chunk_ids("device_id", ids)]
                    + [self._q(ep, {"site_id": chunk})
                       for ep in ("dcim.locations", "dcim.racks")
                       for chunk in chunk_ids("site_id", site_ids)])

        reader = PagedReader(self.client, workers=self.workers, page_size=self.page_size)
        rows = reader.read(checks + catalogues, on_done)
        data = self._shape(rows)
        self.stats = FetchStats(
            requests=self.client.requests - before, seconds=time.perf_counter() - start,
            objects={ep: len(data.get(ep) or []) for ep in ENDPOINTS})
        log.info("read %d devices from %s in %.2f s with %d requests",
                 self.stats.objects["dcim.devices"], self.client.url, self.stats.seconds,
                 self.stats.requests)
        return data

    def _termination_queries(self, seen: dict[str, list[NetBoxObject]]) -> list[Query]:
        """The ends of the lab's cables, from the cheap cable-terminations rows (the cables
        endpoint and interfaces' link peers render every end as a nested object)."""
        cable_ids = sorted(referenced(seen.get("dcim.interfaces") or [], "cable"))
        return [self._q("dcim.cable-terminations", {"cable_id": chunk})
                for chunk in chunk_ids("cable_id", cable_ids)]

    def _address_queries(self, seen: dict[str, list[NetBoxObject]]) -> list[Query]:
        """The addresses on the lab's interfaces, by ranges of interface ids. (A device_id
        filter makes NetBox run a query per device: ~1 s per 120 devices on this machine.)"""
        iface_ids = [i["id"] for i in seen.get("dcim.interfaces") or []]
        return [self._q("ipam.ip-addresses", {"assigned_object_type": "dcim.interface",
                                              "assigned_object_id__gte": first,
                                              "assigned_object_id__lte": last})
                for first, last in id_ranges(iface_ids)]

    def _far_end_queries(self, seen: dict[str, list[NetBoxObject]]) -> list[Query]:
        """Interfaces at the far end of a cable that the selection left out: their devices tell
        a device outside the lab from a missing interface. Usually none."""
        known = {i["id"] for i in seen.get("dcim.interfaces") or []}
        far = sorted({t["termination_id"] for t in seen.get("dcim.cable-terminations") or []
                      if t.get("termination_type") == "dcim.interface"
                      and t["termination_id"] not in known})
        return [self._q("dcim.interfaces", {"id": chunk}, "far.interfaces")
                for chunk in chunk_ids("id", far)]

    def describe(self) -> str:
        parts = []
        if self.sites:
            parts.append("site " + ", ".join(self.sites))
        if self.tenant:
            parts.append(f"tenant {self.tenant}")
        if self.tags:
            parts.append("tag " + ", ".join(self.tags))
        return "; ".join(parts) or "every device"

    def _check_selection(self, seen: dict[str, list[NetBoxObject]]) -> None:
        """A selection naming a site, tenant or tag NetBox lacks is an error, not an empty lab."""
        missing = []
        found_sites = {s.get("slug") for s in seen.get("selected.sites") or []}
        missing += [f"site {s!r}" for s in self.sites if s not in found_sites]
        if self.tenant and not seen.get("selected.tenant"):
            missing.append(f"tenant {self.tenant!r}")
        found_tags = {t.get("slug") for t in seen.get("selected.tags") or []}
        missing += [f"tag {t!r}" for t in self.tags if t not in found_tags]
        if missing:
            raise NetBoxError(f"NetBox at {self.client.url} has no {', '.join(missing)} "
                              "(selection is by slug)")

    def _shape(self, rows: dict[str, list[NetBoxObject]]) -> dict[str, Any]:
        """Keep what the selected devices use, rebuild cables, add the implied lab settings."""
        devices = [clean(d) for d in rows.get("dcim.devices") or []]
        device_ids = {d["id"] for d in devices}
        interfaces = [i for i in rows.get("dcim.interfaces") or []
                      if ref_id(i.get("device")) in device_ids]
        cable_rows = {c["id"]: clean(c) for c in rows.get("dcim.cables") or []}
        ends = {i["id"]: i for i in interfaces + (rows.get("far.interfaces") or [])}
        cables = cables_from_terminations(rows.get("dcim.cable-terminations") or [],
                                          cable_rows, ends)
        if self.interface_tags:
            # An interface the tag selection left out is outside the lab, even on a lab device:
            # a cable to it is no link, as a cable to a device outside the selection is none.
            kept = {i["id"] for i in interfaces}
            left_out = {i["id"] for i in rows.get("far.interfaces") or []
                        if ref_id(i.get("device")) in device_ids} - kept
            cables = [c for c in cables if not any(
                t.get("object_id") in left_out for t in c["a_terminations"] + c["b_terminations"]
                if t.get("object_type") == "dcim.interface")]
        # The interface's `cable` only served to find the cables' ends.
        interfaces = [clean({k: v for k, v in i.items() if k != "cable"}) for i in interfaces]
        addresses = [clean(a) for a in addresses_in_lab(rows.get("ipam.ip-addresses") or [],
                                                        {i["id"] for i in interfaces})]
        racks = keep(rows.get("dcim.racks") or [], referenced(devices, "rack"))
        locations = rows.get("dcim.locations") or []
        location_ids = location_ancestors(
            locations, referenced(devices, "location") | referenced(racks, "location"))
        locations = keep(locations, location_ids)
        # Every selected site, even one without devices yet; else the sites devices are in.
        sites = rows.get("selected.sites") or []
        if not self.sites:
            sites = keep(sites, referenced(devices, "site"))
        tenant_ids = referenced(devices + sites + locations + racks, "tenant")
        data: dict[str, Any] = {
            "tenancy.tenants": keep(rows.get("tenancy.tenants") or [], tenant_ids),
            "dcim.sites": sites,
            "dcim.locations": locations,
            "dcim.racks": racks,
            "dcim.platforms": keep(rows.get("dcim.platforms") or [],
                                   referenced(devices, "platform")),
            "dcim.device-roles": keep(rows.get("dcim.device-roles") or [],
                                      referenced(devices, "role")),
            "dcim.device-types": keep(rows.get("dcim.device-types") or [],
                                      referenced(devices, "device_type")),
            "dcim.devices": devices,
            "dcim.interfaces": interfaces,
            "dcim.cables": cables,
            "ipam.ip-addresses": addresses,
        }
        if rows.get("ipam.prefixes"):
            # NetBox plans addresses with prefixes: the lab lists those its addresses are in,
            # and an address in none of them is an error (build.py), as with a full dump.
            data["ipam.prefixes"] = prefixes_in_use(rows["ipam.prefixes"], addresses)
        slugs = (tag_slugs_of(devices) | tag_slugs_of(interfaces) | tag_slugs_of(cables)
                 | set(self.tags))
        data["extras.config-contexts"] = contexts_in_scope(
            [c for c in rows.get("extras.config-contexts") or [] if c.get("is_active", True)],
            data, set(slugs))
        for context in data["extras.config-contexts"]:
            slugs |= {str(t.get("slug") if isinstance(t, dict) else t)
                      for t in context.get("tags") or []}
        data["extras.tags"] = [t for t in rows.get("extras.tags") or [] if t.get("slug") in slugs]
        shaped = {ep: [clean(o) for o in data[ep]] for ep in ENDPOINTS if ep in data}
        return {"dtnlab": lab_defaults(shaped, self.lab, self.sites), **shaped}
