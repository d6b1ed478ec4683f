"""Seeding NetBox from an inventory: idempotent, updates in place, reports what NetBox refuses."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from dtnlab.cli import main
from dtnlab.inventory.build import build_lab
from dtnlab.inventory.model import Lab
from dtnlab.inventory.netbox_seed import SeedReport, seed
from dtnlab.inventory.netbox_source import NetBoxSource
from dtnlab.inventory.netbox_sync import comparable, differences
from dtnlab.inventory.source import FileSource, lab_settings, read_inventory_file
from tests.conftest import REPO

DEMO_SITES = ["plant-aarhus", "plant-brno"]


# -- comparing NetBox's objects with payloads (no NetBox needed) -----------------------------
def test_netbox_values_compare_in_payload_form() -> None:
    assert comparable("site", {"id": 3, "url": "x", "name": "Works"}) == 3
    assert comparable("status", {"value": "active", "label": "Active"}) == "active"
    assert comparable("tags", [{"id": 2, "slug": "b"}, {"id": 1, "slug": "a"}]) == [1, 2]
    assert comparable("data", {"id": 1}) == {"id": 1}  # user data is compared as it is


def test_only_fields_that_differ_are_patched() -> None:
    existing = {"id": 9, "name": "sw", "site": {"id": 3}, "status": {"value": "active"},
                "tags": [{"id": 2}, {"id": 1}], "serial": "A",
                "custom_fields": {"dtn_delay": "2ms", "other": "x"}}
    same = {"name": "sw", "site": 3, "status": "active", "tags": [1, 2],
            "custom_fields": {"dtn_delay": "2ms"}}
    assert differences(same, existing) == {}
    assert differences({**same, "serial": "B", "custom_fields": {"dtn_delay": "5ms"}},
                       existing) == {"serial": "B", "custom_fields": {"dtn_delay": "5ms"}}


# -- the real NetBox -------------------------------------------------------------------------
def total(report: SeedReport) -> dict[str, int]:
    return {what: report.total(what) for what in ("created", "updated", "unchanged")}


@pytest.mark.netbox
def test_first_seed_creates_the_demo_plant(seeded: SeedReport) -> None:
    created = {ep: c["created"] for ep, c in seeded.counts.items()}
    assert created["dcim.devices"] == 60
    assert created["dcim.interfaces"] == 178
    assert created["dcim.cables"] == 59
    assert created["ipam.ip-addresses"] == 117
    assert created["extras.config-contexts"] == 11
    assert created["extras.custom-fields"] == 3  # dtn_delay, dtn_jitter, dtn_loss on cables
    assert seeded.counts["dcim.devices.primary_ip4"]["updated"] == 60
    assert seeded.problems == []


@pytest.mark.netbox
def test_second_seed_changes_nothing(netbox: dict[str, str], seeded: SeedReport,
                                     demo_valid: Path) -> None:
    again = seed(read_inventory_file(demo_valid), netbox["url"], netbox["token"])
    assert again.problems == []
    assert total(again)["created"] == total(again)["updated"] == 0
    primary = seeded.counts["dcim.devices.primary_ip4"]["updated"]
    assert total(again)["unchanged"] == total(seeded)["created"] + primary
    assert again.requests < 30  # reads and compares; writes nothing


@pytest.mark.netbox
def test_seed_updates_what_differs_in_place(netbox: dict[str, str], seeded: SeedReport,
                                            demo_valid: Path) -> None:
    original = read_inventory_file(demo_valid)
    changed = copy.deepcopy(original)
    device = next(d for d in changed["dcim.devices"] if d["name"] == "AAR-CORE-01")
    device["serial"] = "SN-CHANGED"
    cable = next(c for c in changed["dcim.cables"] if c["label"] == "WAN-AAR-BRN")
    cable["custom_fields"] = {**cable["custom_fields"], "dtn_delay": "35ms"}
    try:
        report = seed(changed, netbox["url"], netbox["token"])
        assert report.problems == []
        assert total(report)["created"] == 0
        assert report.counts["dcim.devices"]["updated"] == 1
        assert report.counts["dcim.cables"]["updated"] == 1
        lab = NetBoxSource(netbox["url"], netbox["token"], sites=DEMO_SITES).load()
        assert next(d for d in lab.devices if d.id == "aar-core-01").serial == "SN-CHANGED"
        wan = next(link for link in lab.links if link.label == "WAN-AAR-BRN")
        assert wan.impairment == {"delay": "35ms", "jitter": "2ms"}
    finally:
        restored = seed(original, netbox["url"], netbox["token"])
    assert total(restored)["updated"] == 2
    assert restored.problems == []


def without_netbox_ids(lab: Lab) -> Lab:
    devices = tuple(d.model_copy(update={"netbox_id": None}) for d in lab.devices)
    return lab.model_copy(update={"devices": devices})


@pytest.mark.netbox
@pytest.mark.parametrize("case", ["minimal", "netbox-rendered"])
def test_hand_written_and_dumped_files_round_trip(
    netbox: dict[str, str], seeded: SeedReport, case: str
) -> None:
    """minimal refers by slug and name, without ids; netbox-rendered is a NetBox dump whose
    devices carry their rendered config context but which has no config contexts."""
    path = next((REPO / "tests" / "golden" / case).glob("inventory.*"))
    data = read_inventory_file(path)
    first = seed(data, netbox["url"], netbox["token"])
    assert first.problems == []
    assert total(seed(data, netbox["url"], netbox["token"]))["created"] == 0
    sites = [s.get("slug") for s in data["dcim.sites"]]
    fetched = NetBoxSource(netbox["url"], netbox["token"], sites=sites).fetch()
    fetched["dtnlab"] = data["dtnlab"]  # lab settings live in the file, not in NetBox
    from_netbox = build_lab(fetched, lab_settings(fetched, None, case, "netbox"), "netbox")
    # The file's own ids (if any) are not NetBox's.
    assert without_netbox_ids(from_netbox) == without_netbox_ids(FileSource(path).load())


@pytest.mark.netbox
def test_seed_reports_what_netbox_refuses(
    netbox: dict[str, str], seeded: SeedReport, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    inventory: dict[str, Any] = {
        "dcim.sites": [{"name": "Refusals", "slug": "refusals"}],
        "dcim.device-roles": [{"name": "Refused", "slug": "refused"}],
        "dcim.device-types": [{"model": "R-1", "slug": "r-1",
                               "manufacturer": {"name": "Refuser", "slug": "refuser"}}],
        "dcim.devices": [
            {"name": "REF-AGV", "role": "refused", "device_type": "r-1", "site": "refusals"},
            {"name": "REF-SW", "role": "refused", "device_type": "r-1", "site": "refusals"},
            {"name": "REF-GHOST", "role": "no-such-role", "device_type": "r-1",
             "site": "refusals"},
        ],
        "dcim.interfaces": [
            {"device": "REF-AGV", "name": "wlan0", "type": "ieee802.11ax"},
            {"device": "REF-SW", "name": "eth1", "type": "1000base-t"},
        ],
        "dcim.cables": [{"label": "REF-WIFI",
                         "a_terminations": [{"object": {"device": "REF-AGV", "name": "wlan0"}}],
                         "b_terminations": [{"object": {"device": "REF-SW", "name": "eth1"}}]}],
    }
    path = tmp_path / "refusals.json"
    path.write_text(json.dumps(inventory))
    report = seed(inventory, netbox["url"], netbox["token"])
    assert report.counts["dcim.devices"]["created"] == 2
    assert report.problems == [
        "dcim.devices[REF-GHOST].role: 'no-such-role' is neither seeded from the inventory nor "
        "found in NetBox",
        "dcim.cables[REF-WIFI].a_terminations: ends on REF-AGV:wlan0, a ieee802.11ax interface: "
        "NetBox refuses cables on wireless and virtual interfaces (give it a wired type, or "
        "leave it uncabled)",
    ]
    monkeypatch.setenv("NETBOX_URL", netbox["url"])
    monkeypatch.setenv("NETBOX_TOKEN", netbox["token"])
    assert main(["netbox", "seed", "--inventory", str(path)]) == 3
    captured = capsys.readouterr()
    assert "NetBox did not take 2 object(s)" in captured.err
    assert "0 created" in captured.out


@pytest.mark.netbox
def test_seed_command_prints_the_counts(
    netbox: dict[str, str], seeded: SeedReport, demo_valid: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NETBOX_URL", netbox["url"])
    monkeypatch.setenv("NETBOX_TOKEN", netbox["token"])
    assert main(["netbox", "seed", "--inventory", str(demo_valid)]) == 0
    out = capsys.readouterr().out
    assert "dcim.devices                        0        0         60" in out
    assert "0 created, 0 updated" in out
