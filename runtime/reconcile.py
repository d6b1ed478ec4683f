"""Compare the twins a running process has loaded with the lab folder now: what to reconcile."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .labfiles import TwinConfig

# Where a twin sits: a change here is a move (new UNS path and topics, same device id).
PLACEMENT_FIELDS = ("uns_path", "hierarchy", "topics", "twin_state_topic")
# The files the broker reads on SIGHUP; the local provider stages them into run/broker/.
BROKER_FILES = ("mosquitto/acl", "mosquitto/passwd")
BROKER_STAGE = Path("run/broker")
MANIFEST = "manifest.json"
T = TypeVar("T")


def _placement(cfg: TwinConfig) -> dict[str, Any]:
    return cfg.model_dump(include=set(PLACEMENT_FIELDS))


def _behaviour(cfg: TwinConfig) -> dict[str, Any]:
    return cfg.model_dump(exclude=set(PLACEMENT_FIELDS), by_alias=True)


@dataclass(frozen=True)
class ReconcilePlan:
    """What a running process must do to match the lab folder; twins not listed stay as they are.

    A twin may be both moved and reconfigured (a new rack and new thresholds in one edit).
    """

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    moved: tuple[str, ...] = ()
    reconfigured: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    broker_reload: bool = False
    details: dict[str, list[str]] = field(default_factory=dict)  # twin id -> fields changed

    @property
    def touched(self) -> tuple[str, ...]:
        """Every twin the plan changes, sorted."""
        return tuple(sorted({*self.added, *self.removed, *self.moved, *self.reconfigured}))

    @property
    def empty(self) -> bool:
        return not self.touched and not self.broker_reload

    def summary(self) -> dict[str, Any]:
        """JSON-ready: lists per kind, counts of unchanged, and the broker reload flag."""
        return {"added": list(self.added), "removed": list(self.removed),
                "moved": list(self.moved), "reconfigured": list(self.reconfigured),
                "unchanged": len(self.unchanged), "broker_reload": self.broker_reload,
                "details": self.details}

    def lines(self) -> list[str]:
        """Human-readable, one line per touched object, then the broker."""
        out = [f"+ twin {t} (new device: credentials, ACL, twin, emulator)" for t in self.added]
        out += [f"- twin {t} (twin and emulator stop, credentials and ACL go)"
                for t in self.removed]
        out += [f"> twin {t} moved ({', '.join(self.details.get(t, []))})" for t in self.moved
                if t not in self.reconfigured]
        out += [f"~ twin {t} {'moved and ' if t in self.moved else ''}reconfigured "
                f"({', '.join(self.details.get(t, []))})" for t in self.reconfigured]
        if self.broker_reload:
            out.append("* broker: reload ACL and passwords (SIGHUP, other clients stay)")
        return out


def changed_fields(old: TwinConfig, new: TwinConfig) -> list[str]:
    """Top-level fields of twins/<id>.json that differ between two configs, sorted."""
    a, b = old.model_dump(by_alias=True), new.model_dump(by_alias=True)
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def plan_changes(loaded: Mapping[str, T], current: Mapping[str, T],
                 placement: Callable[[T], object], behaviour: Callable[[T], object],
                 differing: Callable[[T, T], list[str]], broker_reload: bool = False,
                 ) -> ReconcilePlan:
    """The plan for any per-twin objects: twin configs (engine), device profiles (emulators).

    Args:
        loaded: twin id -> what the process runs now.
        current: twin id -> what the lab folder says now.
        placement: the part whose change is a move (UNS path, topics).
        behaviour: the part whose change is a reconfiguration (metrics, thresholds, period).
        differing: names of the fields that differ, for the plan's details.
        broker_reload: whether the broker's ACL or password file changed.
    """
    moved: list[str] = []
    reconfigured: list[str] = []
    unchanged: list[str] = []
    details: dict[str, list[str]] = {}
    for twin_id in sorted(set(loaded) & set(current)):
        old, new = loaded[twin_id], current[twin_id]
        is_moved = placement(old) != placement(new)
        is_reconfigured = behaviour(old) != behaviour(new)
        if not (is_moved or is_reconfigured):
            unchanged.append(twin_id)
            continue
        details[twin_id] = differing(old, new)
        if is_moved:
            moved.append(twin_id)
        if is_reconfigured:
            reconfigured.append(twin_id)
    return ReconcilePlan(tuple(sorted(set(current) - set(loaded))),
                         tuple(sorted(set(loaded) - set(current))), tuple(moved),
                         tuple(reconfigured), tuple(unchanged), broker_reload, details)


def plan_twins(loaded: Mapping[str, TwinConfig], current: Mapping[str, TwinConfig],
               broker_reload: bool = False) -> ReconcilePlan:
    """Compare the twins a process runs (`loaded`) with those of the lab folder (`current`).

    Args:
        loaded: twin id -> config the process loaded when it started or last reloaded.
        current: twin id -> config in the lab folder now.
        broker_reload: whether the broker's ACL or password file changed (see broker_changed).

    Returns:
        The plan; twins in none of its lists of changes are unchanged and must not be touched.
    """
    return plan_changes(loaded, current, _placement, _behaviour, changed_fields, broker_reload)


def digest(text: str | bytes | None) -> str | None:
    if text is None:
        return None
    raw = text.encode() if isinstance(text, str) else text
    return hashlib.sha256(raw).hexdigest()


def broker_changed(loaded: Mapping[str, str | None], current: Mapping[str, str | None]) -> bool:
    """Whether the broker must reload: any of BROKER_FILES differs (by digest) from what it read.

    Args:
        loaded: relative path -> digest of the file the broker has loaded (None: missing).
        current: relative path -> digest of the file the lab folder holds now.
    """
    return any(loaded.get(path) != current.get(path) for path in BROKER_FILES)


def file_digests(root: Path) -> dict[str, str | None]:
    """Digests of BROKER_FILES under `root` (the lab folder, or the broker's staged copy)."""
    found: dict[str, str | None] = {}
    for rel in BROKER_FILES:
        try:
            found[rel] = digest((root / rel).read_bytes())
        except OSError:
            found[rel] = None
    return found


def broker_reload_needed(lab_dir: Path) -> bool:
    """Compare the lab's broker files with the copy the running local broker was started from."""
    stage = lab_dir / BROKER_STAGE
    if not stage.exists():
        return False  # no local broker has run: nothing to reload
    return broker_changed(file_digests(stage), file_digests(lab_dir))


def lab_digest(root: Path) -> str | None:
    """The inventory digest of manifest.json: which generation of the lab a process runs."""
    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    value = manifest.get("inventory_sha256") if isinstance(manifest, dict) else None
    return str(value) if value else None
