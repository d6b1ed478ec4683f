"""Render a device's config context from assigned contexts the way NetBox does."""

from __future__ import annotations

from typing import Any

from .refs import Index, NetBoxObject, key_of

# Assignment field of a config context -> how to read the matching values off a device.
ASSIGNMENTS = ("sites", "locations", "roles", "platforms", "device_types", "tenants", "tags")
# Assignments NetBox also knows, by objects an inventory file does not carry: a context using
# them cannot be matched here (only NetBox's own rendered config_context can say).
UNMATCHABLE = ("regions", "site_groups", "tenant_groups", "cluster_types", "cluster_groups",
               "clusters")


def unmatchable_assignments(context: NetBoxObject) -> list[str]:
    """The assignment fields of `context` that dtnlab cannot match against a device."""
    return [field for field in UNMATCHABLE if context.get(field)]


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge dicts recursively; `override` wins on conflicts (NetBox's deepmerge)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _ids(refs: list[Any], index: Index) -> set[object]:
    found = (index.get(ref) for ref in refs)
    return {key_of(obj) for obj in found if obj is not None}


def _tag_slugs(refs: list[Any], tags: Index) -> set[str]:
    slugs = set()
    for ref in refs:
        if isinstance(ref, str):
            slugs.add(ref)  # NetBox lists a config context's tags by slug
        else:
            tag = tags.get(ref)
            if tag is not None:
                slugs.add(str(tag.get("slug") or tag.get("name")))
    return slugs


def render_context(
    device_facts: dict[str, set[Any]],
    contexts: list[NetBoxObject],
    indexes: dict[str, Index],
    local_data: dict[str, Any] | None,
) -> dict[str, Any]:
    """Merge every active context that applies, by weight then name, then local data on top.

    Args:
        device_facts: per assignment field, the device's keys (`key_of`; tags: slugs);
            locations include every ancestor of the device's location.
        contexts: the config contexts as the REST API returns them.
        indexes: endpoint indexes used to resolve the contexts' references.
        local_data: the device's local_context_data, applied last.

    Returns:
        The rendered context, as NetBox would show it in `config_context`.
    """
    endpoint_of = {
        "sites": "dcim.sites",
        "locations": "dcim.locations",
        "roles": "dcim.device-roles",
        "platforms": "dcim.platforms",
        "device_types": "dcim.device-types",
        "tenants": "tenancy.tenants",
    }
    applicable = []
    for context in contexts:
        if not context.get("is_active", True):
            continue
        matches = True
        for field in ASSIGNMENTS:
            refs = context.get(field) or []
            if not refs:
                continue
            if field == "tags":
                wanted: set[Any] = _tag_slugs(refs, indexes["extras.tags"])
            else:
                wanted = _ids(refs, indexes[endpoint_of[field]])
            if not wanted & device_facts.get(field, set()):
                matches = False
                break
        if matches:
            applicable.append(context)
    applicable.sort(key=lambda c: (c.get("weight", 1000), c.get("name", "")))
    rendered: dict[str, Any] = {}
    for context in applicable:
        rendered = deep_merge(rendered, context.get("data") or {})
    if local_data:
        rendered = deep_merge(rendered, local_data)
    return rendered
