"""What the API knows of the lab's shape: twins by id and UNS path, levels, topology."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from ..labfiles import TWINS_DIR, LabFiles, MetricSpec, TwinConfig

log = logging.getLogger(__name__)


def under(path: str, prefix: str) -> bool:
    """Whether a UNS path is `prefix` or below it (whole segments: a/b is not under a/bc)."""
    prefix = prefix.strip("/")
    return not prefix or path == prefix or path.startswith(prefix + "/")


@dataclass(frozen=True)
class TwinInfo:
    """A twin's static description: its config plus the display fields of twins/<id>.json."""

    cfg: TwinConfig
    name: str
    role: str
    device_type: str
    platform: str

    @property
    def id(self) -> str:
        return self.cfg.id

    @property
    def uns_path(self) -> str:
        return self.cfg.uns_path

    @property
    def metrics(self) -> dict[str, MetricSpec]:
        return self.cfg.metrics


class LabIndex:
    """Twins in UNS-path order, the hierarchy levels and the topology of a loaded lab."""

    def __init__(self, lab: LabFiles) -> None:
        self.lab = lab
        self.name = lab.runtime.lab
        self.enterprise = lab.runtime.enterprise
        twins: dict[str, TwinInfo] = {}
        for twin_id, cfg in lab.twins.items():
            raw = self._raw(twin_id)
            twins[twin_id] = TwinInfo(cfg, str(raw.get("name") or cfg.name or twin_id),
                                      str(raw.get("role") or ""),
                                      str(raw.get("device_type") or ""),
                                      str(raw.get("platform") or ""))
        self.twins = dict(sorted(twins.items(), key=lambda kv: kv[1].uns_path))
        self.levels = [{"level": lv.level, "path": lv.path, "name": lv.name}
                       for lv in lab.runtime.levels]
        topology = lab.runtime.topology
        self.nodes: list[dict[str, Any]] = list(topology.get("nodes", []))
        self.links: list[dict[str, Any]] = list(topology.get("links", []))
        self.api_config: dict[str, Any] = self._api_config()

    def _raw(self, twin_id: str) -> dict[str, Any]:
        try:
            raw = json.loads((self.lab.root / TWINS_DIR / f"{twin_id}.json").read_text())
        except (OSError, ValueError):
            return {}
        return raw if isinstance(raw, dict) else {}

    def _api_config(self) -> dict[str, Any]:
        """runtime.json's `api` section (port, users), untyped by labfiles."""
        try:
            raw = json.loads((self.lab.root / "runtime.json").read_text()).get("api") or {}
        except (OSError, ValueError, AttributeError):
            return {}
        return raw if isinstance(raw, dict) else {}

    def get(self, twin_id: str) -> TwinInfo | None:
        return self.twins.get(twin_id)

    def path_of(self, twin_id: str) -> str:
        info = self.twins.get(twin_id)
        return info.uns_path if info else ""

    def under(self, prefix: str) -> list[TwinInfo]:
        return [t for t in self.twins.values() if under(t.uns_path, prefix)]
