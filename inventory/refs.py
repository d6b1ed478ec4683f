"""Resolve references between NetBox REST objects: nested objects, ids, slugs or names."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .names import slugify

NetBoxObject = dict[str, Any]


class Index:
    """One endpoint's objects, found by id, slug or name (hand-written files may use either)."""

    def __init__(self, endpoint: str, objects: Iterable[NetBoxObject]) -> None:
        self.endpoint = endpoint
        self.objects = list(objects)
        self._by_key: dict[object, NetBoxObject] = {}
        for obj in self.objects:
            for key in ("name", "slug", "id"):  # later keys win: ids are the most specific
                value = obj.get(key)
                if value is not None:
                    self._by_key[(key, value)] = obj

    def get(self, ref: object) -> NetBoxObject | None:
        """Return the object a reference points to, or None when it points nowhere."""
        if ref is None:
            return None
        if isinstance(ref, dict):
            for key in ("id", "slug", "name"):
                if ref.get(key) is not None:
                    found = self._by_key.get((key, ref[key]))
                    if found is not None or key == "id":
                        return found
            return None
        if isinstance(ref, bool):
            return None
        if isinstance(ref, int):
            return self._by_key.get(("id", ref))
        if isinstance(ref, str):
            return self._by_key.get(("slug", ref)) or self._by_key.get(("name", ref))
        return None


def location_chain(location: NetBoxObject | None, locations: Index) -> list[NetBoxObject]:
    """A location and its ancestors, top-level first (at most 32: a loop cannot hang it)."""
    chain: list[NetBoxObject] = []
    while location is not None and len(chain) < 32:
        chain.insert(0, location)
        location = locations.get(location.get("parent"))
    return chain


def tag_slugs(obj: NetBoxObject, tags: Index) -> list[str]:
    """The slugs of an object's tags, sorted, whether given as ids, nested objects or slugs."""
    slugs = []
    for ref in obj.get("tags") or []:
        tag = tags.get(ref)
        if tag is not None:
            slugs.append(tag.get("slug") or slugify(tag["name"]))
        elif isinstance(ref, dict):
            slugs.append(ref.get("slug") or slugify(ref.get("name", "")))
        else:
            slugs.append(str(ref))
    return sorted(set(slugs))


def key_of(obj: NetBoxObject) -> object:
    """A stable identity for an object: its id, else (hand-written files) its slug or name."""
    return obj.get("id", obj.get("slug", obj.get("name")))


def label(obj: NetBoxObject, position: int | None = None) -> str:
    """How an object is named in messages: its name, display, ..., else #id or its position."""
    for key in ("name", "display", "slug", "address", "prefix", "label"):
        value = obj.get(key)
        if isinstance(value, str) and value:
            return value
    if "id" in obj:
        return f"#{obj['id']}"
    return f"item {position}" if position is not None else "?"


def ref_label(ref: object) -> str:
    if isinstance(ref, dict):
        return label(ref)
    return str(ref)
