"""Inventory sources: each loads one Lab. The file source reads NetBox-shaped YAML or JSON."""

from __future__ import annotations

import difflib
import logging
from pathlib import Path
from typing import Any, Protocol

import orjson
import yaml
from pydantic import ValidationError

from .build import ENDPOINTS, build_lab
from .errors import InventoryError, Problem
from .model import Lab, Settings
from .names import slugify

log = logging.getLogger(__name__)
SETTINGS_KEY = "dtnlab"


class InventorySource(Protocol):
    def load(self) -> Lab: ...


def read_inventory_file(path: Path) -> dict[str, Any]:
    """Read a NetBox-shaped inventory: JSON when the name ends in .json, YAML otherwise."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        problem = Problem("file", path.name, "path", exc.strerror or str(exc))
        raise InventoryError(str(path), [problem]) from None
    try:
        if path.suffix == ".json":
            data = orjson.loads(raw)
        else:
            loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
            data = yaml.load(raw, Loader=loader)  # noqa: S506 - a safe loader
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise InventoryError(str(path), [Problem("file", path.name, "syntax", str(exc))]) from None
    if not isinstance(data, dict):
        raise InventoryError(
            str(path), [Problem("file", path.name, "top level", "must be a mapping of endpoints")]
        )
    problems = shape_problems(data, path.name)
    if problems:
        raise InventoryError(str(path), problems)
    return data


def shape_problems(data: dict[str, Any], name: str) -> list[Problem]:
    """What keeps a file's top level from being read; other endpoints of a dump are ignored.

    A dump of a real NetBox holds endpoints dtnlab does not read (dcim.manufacturers,
    dcim.regions, ...): they are logged and left alone, so the dump loads unchanged.
    """
    problems = []
    unknown = sorted(str(k) for k in data if k not in ENDPOINTS and k != SETTINGS_KEY)
    for key in unknown:
        close = difflib.get_close_matches(key, ENDPOINTS, n=1, cutoff=0.9)
        if close:
            log.warning("%s: ignoring %s, which dtnlab does not read; did you mean %s?",
                        name, key, close[0])
    if unknown:
        log.info("%s: ignoring endpoints dtnlab does not read: %s", name, ", ".join(unknown))
    settings = data.get(SETTINGS_KEY)
    if settings is not None and not isinstance(settings, dict):
        problems.append(Problem("file", name, SETTINGS_KEY, "must be a mapping of settings"))
    for endpoint in ENDPOINTS:
        objects = data.get(endpoint)
        if objects is None:
            continue
        if not isinstance(objects, list):
            problems.append(Problem("file", name, endpoint,
                                    f"must be a list of objects, not a {_kind(objects)}"))
            continue
        problems.extend(
            Problem("file", name, f"{endpoint}[{position}]",
                    f"must be an object (a mapping), not a {_kind(obj)}")
            for position, obj in enumerate(objects, 1) if not isinstance(obj, dict))
    return problems


def _kind(value: object) -> str:
    names: dict[type, str] = {dict: "mapping", list: "list", str: "string"}
    return names.get(type(value), type(value).__name__)


def lab_settings(
    data: dict[str, Any], lab: str | None, default_lab: str, source: str
) -> Settings:
    """Settings from the file's `dtnlab` key; `lab` from the command line wins."""
    raw = dict(data.get("dtnlab") or {})
    raw["lab"] = slugify(lab or raw.get("lab") or default_lab)
    tenants = data.get("tenancy.tenants") or []
    if "enterprise_name" not in raw and len(tenants) == 1:
        raw["enterprise_name"] = tenants[0].get("name", "Enterprise")
    raw.setdefault("enterprise", slugify(raw.get("enterprise_name", "enterprise")))
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        problems = [Problem("dtnlab", "settings", ".".join(map(str, e["loc"])), e["msg"])
                    for e in exc.errors()]
        raise InventoryError(source, problems) from None


class FileSource:
    """A NetBox-shaped inventory file (a dump of NetBox's REST API, or written by hand)."""

    def __init__(self, path: Path, lab: str | None = None) -> None:
        self.path = path
        self.lab = lab

    def load(self) -> Lab:
        data = read_inventory_file(self.path)
        default = self.path.parent.name if self.path.stem == "inventory" else self.path.stem
        settings = lab_settings(data, self.lab, default, str(self.path))
        return build_lab(data, settings, str(self.path))
