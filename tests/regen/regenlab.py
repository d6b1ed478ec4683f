"""Helpers for regen tests: a small file inventory to edit, and the regen command in-process."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from dtnlab.cli import main
from tests.runtime.emulator.smalllab import small_inventory

MOVED = "aar-l1-c1-tt-01"  # moved from cell AAR-L1-C1 (line 1) to AAR-L3-C1 (line 3)
SENSOR_CONTEXT = "temperature-sensor"  # the config context with temperature thresholds


def write(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def inventory(folder: Path, lab: str = "rg", **options: Any) -> tuple[Path, dict[str, Any]]:
    """The small demo lab (nine devices, free ports) as an inventory file to edit."""
    data = small_inventory(lab=lab, **options)
    return write(folder / "inventory.yaml", data), data


def edited(data: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    copied = copy.deepcopy(data)
    change(copied)
    return copied


def device(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(d for d in data["dcim.devices"] if d["name"] == name)


def move_sensor(data: dict[str, Any]) -> None:
    """AAR-L1-C1-TT-01 goes to the rack (and line) of AAR-L3-C1-TT-01."""
    there = device(data, "AAR-L3-C1-TT-01")
    here = device(data, "AAR-L1-C1-TT-01")
    here["rack"], here["location"] = there["rack"], there["location"]


def add_sensor(data: dict[str, Any], name: str = "AAR-L1-C1-TT-02") -> None:
    new = copy.deepcopy(device(data, "AAR-L1-C1-TT-01"))
    new["id"] = max(d["id"] for d in data["dcim.devices"]) + 1
    new["name"] = name
    new.pop("primary_ip4", None)
    data["dcim.devices"].append(new)


def remove_device(data: dict[str, Any], name: str) -> None:
    gone = device(data, name)["id"]
    data["dcim.devices"] = [d for d in data["dcim.devices"] if d["id"] != gone]
    ports = {i["id"] for i in data["dcim.interfaces"] if i["device"]["id"] == gone}
    data["dcim.interfaces"] = [i for i in data["dcim.interfaces"] if i["id"] not in ports]
    data["dcim.cables"] = [c for c in data["dcim.cables"] if not any(
        t["object_id"] in ports for t in c["a_terminations"] + c["b_terminations"])]
    data["ipam.ip-addresses"] = [a for a in data["ipam.ip-addresses"]
                                 if a.get("assigned_object_id") not in ports]


def set_threshold(data: dict[str, Any], normal: list[float]) -> None:
    context = next(c for c in data["extras.config-contexts"] if c["name"] == SENSOR_CONTEXT)
    context["data"]["dtnlab"]["metrics"]["temperature"]["normal"] = normal


def collide(data: dict[str, Any]) -> None:
    """A device whose name becomes an existing device's id once normalised."""
    add_sensor(data, "aar l1 c1 tt 01")


def regen(inventory_file: Path, labs: Path, *extra: str) -> int:
    return main(["regen", "--inventory", str(inventory_file), "--labs-dir", str(labs),
                 "--wait", "0", *extra])
