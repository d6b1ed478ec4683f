"""Twin profiles: the `dtnlab` key of each device's config context, merged and validated."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import orjson
from pydantic import ValidationError

from .config_context import render_context, unmatchable_assignments
from .errors import Problems
from .model import Metric, TwinProfile
from .names import name_problem
from .refs import Index, NetBoxObject, key_of, label, location_chain, tag_slugs


class TwinProfiles:
    """Each device's twin profile; thousands of devices share a few, so each is worked out once.

    Args:
        idx: the inventory's endpoints, indexed.
        problems: where every problem found goes.
    """

    def __init__(self, idx: dict[str, Index], problems: Problems) -> None:
        self.idx = idx
        self.problems = problems
        self._contexts: dict[object, dict[str, Any]] = {}
        self._profiles: dict[bytes, TwinProfile] = {}
        self._mergeable: list[NetBoxObject] | None = None

    def _device_facts(self, device: NetBoxObject) -> dict[str, set[Any]]:
        facts: dict[str, set[Any]] = defaultdict(set)
        for field, endpoint in (
            ("sites", "dcim.sites"), ("roles", "dcim.device-roles"),
            ("platforms", "dcim.platforms"), ("device_types", "dcim.device-types"),
            ("tenants", "tenancy.tenants"),
        ):
            source = {"sites": "site", "roles": "role", "platforms": "platform",
                      "device_types": "device_type", "tenants": "tenant"}[field]
            ref = device.get(source) or (device.get("device_role") if source == "role" else None)
            obj = self.idx[endpoint].get(ref)
            if obj is not None:
                facts[field].add(key_of(obj))
        location = self.idx["dcim.locations"].get(device.get("location"))
        if location is None:
            rack = self.idx["dcim.racks"].get(device.get("rack"))
            location = self.idx["dcim.locations"].get(rack.get("location")) if rack else None
        chain = location_chain(location, self.idx["dcim.locations"])
        facts["locations"] = {key_of(loc) for loc in chain}
        facts["tags"] = set(tag_slugs(device, self.idx["extras.tags"]))
        return facts

    def of(self, device: NetBoxObject, name: str) -> TwinProfile | None | bool:
        """The device's twin profile; None when it has none, False when it is invalid."""
        context = device.get("config_context")
        if context is None:
            context = self.merged_context(device)
        raw = context.get("dtnlab")
        if raw is None:
            return None
        try:
            cache_key = orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            cache_key = b""
        if cache_key in self._profiles:
            return self._profiles[cache_key]
        profile = self._validate_profile(raw, name)
        if isinstance(profile, TwinProfile) and cache_key:
            self._profiles[cache_key] = profile
        return profile

    def merged_context(self, device: NetBoxObject) -> dict[str, Any]:
        """The device's config context merged from the inventory's config contexts, as NetBox
        renders it (used when the device has no rendered `config_context` of its own)."""
        local = device.get("local_context_data")
        key = (
            tuple(_ref_key(device.get(f)) for f in (
                "site", "role", "device_role", "platform", "device_type", "tenant",
                "location", "rack")),
            tuple(_ref_key(t) for t in device.get("tags") or []),
            orjson.dumps(local, option=orjson.OPT_SORT_KEYS) if local else b"",
        )
        if key not in self._contexts:
            self._contexts[key] = render_context(
                self._device_facts(device),
                self._mergeable_contexts(),
                self.idx,
                local,
            )
        return self._contexts[key]

    def _mergeable_contexts(self) -> list[NetBoxObject]:
        """The config contexts dtnlab can match; the others are reported once, not guessed."""
        if self._mergeable is None:
            self._mergeable = []
            for context in self.idx["extras.config-contexts"].objects:
                fields = unmatchable_assignments(context)
                for field in fields:
                    self.problems.add(
                        "extras.config-contexts", label(context), field,
                        "dtnlab cannot match this assignment without the devices' rendered "
                        "config_context: assign the context by site, location, role, platform, "
                        "device type, tenant or tag, or export the devices from NetBox")
                if not fields:
                    self._mergeable.append(context)
        return self._mergeable

    def _validate_profile(self, raw: object, name: str) -> TwinProfile | bool:
        where = "config_context.dtnlab"
        if not isinstance(raw, dict):
            self.problems.add("dcim.devices", name, where, "must be a mapping")
            return False
        metrics_raw = raw.get("metrics") or {}
        if not isinstance(metrics_raw, dict):
            self.problems.add("dcim.devices", name, f"{where}.metrics", "must be a mapping")
            return False
        metrics: dict[str, Metric] = {}
        valid = True
        for metric_name, spec in sorted(metrics_raw.items()):
            try:
                metrics[metric_name] = Metric.model_validate(spec or {})
            except ValidationError as exc:
                valid = False
                self._report(exc, name, f"{where}.metrics.{metric_name}")
        problem = name_problem(next((m for m in metrics if name_problem(m)), "ok"))
        if problem:
            self.problems.add("dcim.devices", name, f"{where}.metrics", f"metric name {problem}")
            valid = False
        valid = self._check_metrics(metrics, name) and valid
        try:
            profile = TwinProfile.model_validate({**raw, "metrics": {}})
        except ValidationError as exc:
            self._report(exc, name, where)
            return False
        return profile.model_copy(update={"metrics": metrics}) if valid else False

    def _report(self, exc: ValidationError, name: str, where: str) -> None:
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            self.problems.add("dcim.devices", name, f"{where}.{loc}" if loc else where,
                              err["msg"])

    def _check_metrics(self, metrics: dict[str, Metric], name: str) -> bool:
        """Report contradicting ranges and thresholds; True when there are none."""
        before = len(self.problems.items)
        for metric_name, m in metrics.items():
            field = f"config_context.dtnlab.metrics.{metric_name}"
            if m.min is not None and m.max is not None and m.min > m.max:
                self.problems.add("dcim.devices", name, f"{field}.min",
                                  f"min {m.min:g} is greater than max {m.max:g}")
                continue
            for band_name in ("normal", "warning"):
                band = getattr(m, band_name)
                if band is None:
                    continue
                low, high = band
                if low > high:
                    self.problems.add("dcim.devices", name, f"{field}.{band_name}",
                                      f"[{low:g}, {high:g}] is not an interval (low > high)")
                elif (m.min is not None and low < m.min) or (m.max is not None and high > m.max):
                    self.problems.add(
                        "dcim.devices", name, f"{field}.{band_name}",
                        f"[{low:g}, {high:g}] lies outside the metric's range "
                        f"[{_fmt(m.min)}, {_fmt(m.max)}]")
            if m.normal and m.warning and not (
                m.warning[0] <= m.normal[0] and m.normal[1] <= m.warning[1]
            ):
                self.problems.add("dcim.devices", name, f"{field}.normal",
                                  f"{_band(m.normal)} is not inside warning {_band(m.warning)}")
        return len(self.problems.items) == before


def _ref_key(ref: object) -> object:
    if isinstance(ref, dict):
        return (ref.get("id"), ref.get("slug"), ref.get("name"))
    return ref


def _band(band: tuple[float, float]) -> str:
    return f"[{band[0]:g}, {band[1]:g}]"


def _fmt(value: float | None) -> str:
    return "-inf" if value is None else f"{value:g}"
