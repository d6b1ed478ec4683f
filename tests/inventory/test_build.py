"""Placement and cable rules of the NetBox -> ISA-95 mapping that have no golden case."""

from __future__ import annotations

import pytest

from dtnlab.inventory.build import build_lab
from dtnlab.inventory.errors import InventoryError
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


def test_a_netbox_shaped_cable_end_outside_the_selection_is_no_link() -> None:
    # Exports and NetBox name the far device by id: it exists in NetBox, outside this lab.
    cable = {"id": 5, "a_terminations": [{"object_type": "dcim.interface",
                                          "object": {"device": "sw1", "name": "eth1"}}],
             "b_terminations": [{"object_type": "dcim.interface", "object_id": 41,
                                 "object": {"id": 41, "name": "eth1",
                                            "device": {"id": 99, "name": "far-away"}}}]}
    lab = build_lab({**BASE, "dcim.cables": [cable]}, Settings(lab="t"), "test")
    assert lab.links == ()


ADDRESSED = {**BASE, "ipam.ip-addresses": [
    {"address": "10.1.0.5/24", "assigned_object": {"device": "sw1", "name": "eth1"}}]}


def test_addresses_need_no_prefix_when_the_inventory_lists_none() -> None:
    lab = build_lab(ADDRESSED, Settings(lab="t"), "test")
    assert lab.devices[0].interfaces[0].addresses == ("10.1.0.5/24",)


@pytest.mark.parametrize("prefixes", [[], [{"prefix": "10.2.0.0/16"}]], ids=["empty", "other"])
def test_listing_prefixes_at_all_puts_every_address_in_one(prefixes: list[object]) -> None:
    with pytest.raises(InventoryError) as info:
        build_lab({**ADDRESSED, "ipam.prefixes": prefixes}, Settings(lab="t"), "test")
    assert [str(p) for p in info.value.problems] == [
        "ipam.ip-addresses[10.1.0.5/24].address: 10.1.0.5 lies outside every prefix in "
        "ipam.prefixes"]
