"""Placement and cable rules of the NetBox -> ISA-95 mapping that have no golden case."""

from __future__ import annotations

from dtnlab.inventory.build import build_lab
from dtnlab.inventory.model import Settings

BASE = {
    "dcim.sites": [{"name": "Site", "slug": "site"}],
    "dcim.device-roles": [{"name": "Switch", "slug": "switch"}],
    "dcim.device-types": [{"model": "Box", "slug": "box"}],
    "dcim.devices": [{"name": "sw1", "role": "switch", "device_type": "box", "site": "site"}],
    "dcim.interfaces": [{"device": "sw1", "name": "eth1"}],
}


def test_a_dangling_cable_is_no_link_and_no_error() -> None:
    # NetBox keeps a deleted device's cable with that end empty until someone removes it.
    cable = {"label": "orphan", "b_terminations": [],
             "a_terminations": [{"object_type": "dcim.interface",
                                 "object": {"device": "sw1", "name": "eth1"}}]}
    lab = build_lab({**BASE, "dcim.cables": [cable]}, Settings(lab="t"), "test")
    assert lab.links == ()
    assert [d.id for d in lab.devices] == ["sw1"]


def test_missing_levels_get_placeholders() -> None:
    lab = build_lab(BASE, Settings(lab="t"), "test")
    device = lab.devices[0]
    assert (device.site, device.area, device.line, device.cell) == ("site", "_area", "_line",
                                                                     "_cell")
