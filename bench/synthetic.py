"""Synthetic NetBox-shaped inventories of any size, in NetBox's own REST form (ids, nested refs)."""

from __future__ import annotations

import ipaddress
from typing import Any

DEVICES_PER_CELL = 10  # one access switch and nine sensors
CELLS_PER_LINE = 10
LINES_PER_AREA = 5
AREAS_PER_SITE = 4


def _brief(obj: dict[str, Any], key: str = "slug") -> dict[str, Any]:
    return {"id": obj["id"], key: obj[key], "name": obj.get("name", obj.get("model"))}


def synthetic_inventory(devices: int) -> dict[str, list[dict[str, Any]]]:
    """A plant of about `devices` devices: every sensor cabled to its cell's access switch."""
    data: dict[str, list[dict[str, Any]]] = {}

    def add(endpoint: str, **fields: Any) -> dict[str, Any]:
        items = data.setdefault(endpoint, [])
        obj = {"id": len(items) + 1, **fields}
        items.append(obj)
        return obj

    twin = add("extras.tags", name="dtn-twin", slug="dtn-twin")
    roles = {r: add("dcim.device-roles", name=r.title(), slug=r) for r in ("switch", "sensor")}
    dtype = add("dcim.device-types", model="Probe", slug="probe",
                manufacturer={"id": 1, "name": "Acme", "slug": "acme"})
    platform = add("dcim.platforms", name="Linux IoT", slug="linux-iot")
    mgmt = ipaddress.ip_network("10.0.0.0/8")
    add("ipam.prefixes", prefix=str(mgmt))
    hosts = mgmt.hosts()
    add("extras.config-contexts", name="sensor", weight=1000, roles=[_brief(roles["sensor"])],
        data={"dtnlab": {"period_s": 5, "metrics": {
            "temperature": {"type": "float", "unit": "degC", "min": -50, "max": 150,
                            "normal": [15, 30], "warning": [10, 35]},
            "ok": {"type": "bool"}}}})
    add("extras.config-contexts", name="switch", weight=1000, roles=[_brief(roles["switch"])],
        data={"dtnlab": {"period_s": 10, "metrics": {
            "cpu_load": {"type": "float", "unit": "%", "min": 0, "max": 100,
                         "normal": [0, 70], "warning": [0, 90]}}}})
    cells_needed = max(1, devices // DEVICES_PER_CELL)
    cell = 0
    while cell < cells_needed:
        number = len(data.get("dcim.sites", [])) + 1
        site = add("dcim.sites", name=f"Site {number}", slug=f"site-{number}")
        for a in range(AREAS_PER_SITE):
            area = add("dcim.locations", name=f"Area {a}", slug=f"area-{a}", site=_brief(site))
            for li in range(LINES_PER_AREA):
                line = add("dcim.locations", name=f"Line {a}.{li}", slug=f"line-{a}-{li}",
                           site=_brief(site), parent=_brief(area))
                for _ in range(CELLS_PER_LINE):
                    if cell >= cells_needed:
                        return data
                    cell += 1
                    rack = add("dcim.racks", name=f"Cell {cell}", site=_brief(site),
                               location=_brief(line))
                    switch = None
                    for n in range(DEVICES_PER_CELL):
                        role = roles["switch"] if n == 0 else roles["sensor"]
                        dev = add("dcim.devices", name=f"dev-{cell}-{n}", role=_brief(role),
                                  device_type=_brief(dtype), platform=_brief(platform),
                                  site=_brief(site), location=_brief(line),
                                  rack={"id": rack["id"], "name": rack["name"]},
                                  tags=[_brief(twin)])
                        ref = {"id": dev["id"], "name": dev["name"]}
                        m = add("dcim.interfaces", device=ref, name="mgmt0", mgmt_only=True,
                                type={"value": "1000base-t"})
                        ip = add("ipam.ip-addresses", address=f"{next(hosts)}/8",
                                 assigned_object_type="dcim.interface", assigned_object_id=m["id"])
                        dev["primary_ip4"] = {"id": ip["id"], "address": ip["address"]}
                        e = add("dcim.interfaces", device=ref, name=f"eth{n or 1}",
                                type={"value": "1000base-t"})
                        if switch is None:
                            switch = dev
                            continue
                        port = add("dcim.interfaces", device={"id": switch["id"],
                                   "name": switch["name"]}, name=f"eth{n + 1}",
                                   type={"value": "1000base-t"})
                        end_a = {"object_type": "dcim.interface", "object_id": e["id"]}
                        end_b = {"object_type": "dcim.interface", "object_id": port["id"]}
                        add("dcim.cables", a_terminations=[end_a], b_terminations=[end_b])
    return data
