"""A small lab cut from the demo plant (two lines of one site) for the netns tests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from dtnlab.generators import writer
from dtnlab.generators.pipeline import render_lab
from dtnlab.inventory.source import FileSource
from tests.broker import free_port, with_free_ports
from tests.conftest import DEMO_INVENTORY

# core -> gateway -> two access switches -> two twinned devices each (the gateway is a twin too)
SMALL_DEVICES = ("AAR-CORE-01", "AAR-PROC-GW-01", "AAR-L1-SW-01", "AAR-L2-SW-01",
                 "AAR-L1-C1-PLC-01", "AAR-L1-C1-TT-01", "AAR-L2-C1-PLC-01", "AAR-L2-C1-TT-01")
LINE1_TWINS = ("aar-l1-c1-plc-01", "aar-l1-c1-tt-01")
LINE2_TWINS = ("aar-l2-c1-plc-01", "aar-l2-c1-tt-01")
UPLINK_L1 = ("aar-l1-sw-01", "aar-proc-gw-01")


def require_root() -> None:
    """netns tests need root: they fail, loudly, rather than skip without it."""
    if os.geteuid() != 0:
        pytest.fail("netns tests need root (network namespaces, veth links): run them as root "
                    "or deselect them with -m 'not netns'", pytrace=False)


def small_inventory(lab: str, period_s: float = 1.0, heartbeat_s: float = 3.0,
                    devices: tuple[str, ...] = SMALL_DEVICES) -> dict[str, Any]:
    """The demo inventory cut down to `devices`, with a short telemetry period and heartbeat."""
    doc: dict[str, Any] = yaml.safe_load(DEMO_INVENTORY.read_text())
    keep = set(devices)
    doc["dtnlab"] = {**doc["dtnlab"], "lab": lab}
    doc["dcim.devices"] = [d for d in doc["dcim.devices"] if d["name"] in keep]
    for device in doc["dcim.devices"]:
        device["local_context_data"] = {"dtnlab": {"period_s": period_s,
                                                   "heartbeat_s": heartbeat_s}}
    ids = {i["id"] for i in doc["dcim.interfaces"] if i["device"]["name"] in keep}
    doc["dcim.interfaces"] = [i for i in doc["dcim.interfaces"] if i["id"] in ids]
    doc["dcim.cables"] = [c for c in doc["dcim.cables"]
                          if all(t["object_id"] in ids
                                 for t in c["a_terminations"] + c["b_terminations"])]
    doc["ipam.ip-addresses"] = [a for a in doc["ipam.ip-addresses"]
                                if a.get("assigned_object", {}).get("device", {}).get("name")
                                in keep]
    return doc


def generate_demo_lab(folder: Path, lab: str) -> Path:
    """The whole demo plant under another lab name (its own namespaces), on free ports."""
    doc: dict[str, Any] = yaml.safe_load(DEMO_INVENTORY.read_text())
    doc["dtnlab"] = {**doc["dtnlab"], "lab": lab}
    return _generate(folder, doc)


def _generate(folder: Path, doc: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "inventory.yaml"  # kept in the lab folder: netns reads its addresses
    doc["dtnlab"] = {**doc["dtnlab"], "api_port": free_port()}  # forwarded to the host
    source.write_text(yaml.safe_dump(doc, sort_keys=False))
    model = with_free_ports(FileSource(source).load())
    rendered = render_lab(model, folder)
    writer.write(folder, rendered.files, rendered.inventory_digest)
    return folder


def generate_small_lab(folder: Path, lab: str, **options: Any) -> Path:
    """Generate the small lab into `folder` (inventory.yaml kept there, free broker ports)."""
    return _generate(folder, small_inventory(lab, **options))


def lab_leftovers(prefix: str, host_dev: str) -> list[str]:
    """Namespaces with the lab's prefix and its host link, as the system lists them now."""
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                           check=False).stdout.split()
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                           check=False).stdout
    return ([n for n in names if n.startswith(prefix)]
            + ([host_dev] if f" {host_dev}@" in links or f" {host_dev}:" in links else []))
