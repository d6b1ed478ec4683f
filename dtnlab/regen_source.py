"""How a lab regenerates: the source `up` records, and the settings a command line overrides."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from dtnlab.generators.secret_files import write_file
from dtnlab.inventory.errors import InventoryError, Problem
from dtnlab.inventory.model import Lab, Settings
from dtnlab.runtime.labfiles import read_json
from dtnlab.runtime.regen_record import SOURCE_FILE

# Settings the command line may override: none of them changes how the inventory is read.
# Every lab setting but its name (that is --lab); a NetBox lab has no file to hold them.
OVERRIDABLE = tuple(name for name in Settings.model_fields if name != "lab")


def _write(path: Path, doc: dict[str, Any]) -> None:
    write_file(path, json.dumps(doc, indent=1, sort_keys=True) + "\n", 0o644)


def record_devices(folder: Path, lab: Lab) -> None:
    """Keep run/regen-source.json's device list current: the webhook filter reads it."""
    path = folder / SOURCE_FILE
    doc = read_json(path)
    if doc is None:
        return
    devices = {str(d.netbox_id): d.id for d in lab.devices if d.netbox_id is not None}
    names = sorted(d.name for d in lab.devices)
    if doc.get("devices") != devices or doc.get("device_names") != names:
        _write(path, {**doc, "devices": devices, "device_names": names})


def recorded_platform_map(folder: Path) -> Path | None:
    """The platform map the lab was brought up with: `--platform-map` in run/regen-source.json."""
    argv = [str(a) for a in (read_json(folder / SOURCE_FILE) or {}).get("argv") or []]
    if "--platform-map" in argv[:-1]:
        return Path(argv[argv.index("--platform-map") + 1])
    return None


def record_source(folder: Path, argv: list[str], selection: dict[str, Any], lab: Lab,
                  netbox: bool) -> None:
    """Record at `up` how this lab regenerates (the runtime re-runs `dtnlab regen ARGV`).

    Args:
        folder: the lab folder.
        argv: inventory arguments of `dtnlab regen`, with absolute paths and `--lab`.
        selection: {"sites": [...], "tenant": ..., "tags": [...]}: what the webhook filter keeps.
        lab: the lab as generated now (its devices' NetBox ids).
        netbox: whether the lab is read from NetBox.
    """
    _write(folder / SOURCE_FILE, {"argv": argv, "cwd": str(Path.cwd()), "selection": selection,
                                  "netbox": netbox, "lab": lab.name, "devices": {},
                                  "device_names": [], "ts": time.time()})
    record_devices(folder, lab)


def _setting_value(key: str, text: str) -> Any:
    """A --set value: text for text settings, else YAML (`1`, `{alice: operator}`)."""
    if Settings.model_fields[key].annotation in (str, str | None):
        return text  # `enterprise_name=Yes` stays the text Yes, not YAML's true
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text  # validation names the key and what it expected


def override_settings(lab: Lab, pairs: list[str]) -> Lab:
    """The lab with `KEY=VALUE` settings from the command line (ports of a NetBox lab).

    Raises:
        InventoryError: naming each unknown key or invalid value.
    """
    if not pairs:
        return lab
    raw = lab.settings.model_dump()
    problems = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in OVERRIDABLE:
            problems.append(Problem("--set", pair, key or pair, "expected KEY=VALUE with KEY "
                                    "one of " + ", ".join(OVERRIDABLE)))
            continue
        raw[key] = _setting_value(key, value)
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        problems += [Problem("--set", ".".join(map(str, e["loc"])), "value", e["msg"])
                     for e in exc.errors()]
    if problems:
        raise InventoryError("--set", problems)
    return lab.model_copy(update={"settings": settings})
