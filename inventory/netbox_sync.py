"""Make a NetBox endpoint hold the wanted objects: match by natural key, bulk-create, bulk-patch."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .netbox_client import NetBoxClient, NetBoxError, NetBoxObject

log = logging.getLogger(__name__)

# One list POST of this many objects takes ~30 s for devices here (NETBOX-NOTES: ~135 ms each).
WRITE_CHUNK = 200
# Compared as they are: user data, whatever keys it holds.
OPAQUE = frozenset({"data", "local_context_data", "custom_fields", "config_context"})


@dataclass
class Wanted:
    """One object the inventory wants in NetBox."""

    label: str  # how messages name it
    ref: Hashable  # how the inventory's other objects find it (id() of the file object)
    payload: dict[str, Any]


@dataclass
class SyncResult:
    ids: dict[Hashable, int] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)


def comparable(name: str, value: Any) -> Any:
    """A NetBox REST value in the form a payload uses: references as ids, choices as values."""
    if name in OPAQUE:
        return value
    if isinstance(value, dict):
        if "id" in value:
            return value["id"]
        if "value" in value:
            return value["value"]
        return value
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        if all("id" in v for v in value):
            return sorted(v["id"] for v in value)
        if all("slug" in v for v in value):
            return sorted(v["slug"] for v in value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return sorted(value)
    return value


def differences(payload: dict[str, Any], existing: NetBoxObject) -> dict[str, Any]:
    """The payload fields whose value NetBox does not hold yet."""
    changed = {}
    for name, wanted in payload.items():
        have = comparable(name, existing.get(name))
        if name == "custom_fields":
            have = {k: (existing.get(name) or {}).get(k) for k in wanted}
        if isinstance(wanted, list) and all(isinstance(v, (int, str)) for v in wanted):
            wanted = sorted(wanted)
        if have != wanted:
            changed[name] = payload[name]
    return changed


class EndpointSync:
    """Creates what is missing and patches what differs on one endpoint; never duplicates.

    Args:
        client: the NetBox client.
        endpoint: e.g. "dcim.devices".
        key: the natural key of a payload or of an existing object in comparable form
            (e.g. (site id, name) for devices).
    """

    def __init__(self, client: NetBoxClient, endpoint: str,
                 key: Callable[[dict[str, Any]], Hashable]) -> None:
        self.client = client
        self.endpoint = endpoint
        self.key = key
        self._lock = threading.Lock()

    def run(self, wanted: list[Wanted], existing: list[NetBoxObject], parallel: int = 1,
            lane: Callable[[Wanted], Hashable] | None = None) -> SyncResult:
        result = SyncResult()
        by_key: dict[Hashable, NetBoxObject] = {}
        for obj in existing:
            by_key.setdefault(self.key({k: comparable(k, v) for k, v in obj.items()}), obj)
        creates: list[Wanted] = []
        patches: list[tuple[Wanted, dict[str, Any]]] = []
        seen: dict[Hashable, str] = {}
        for item in wanted:
            key = self.key(item.payload)
            if key in seen:
                result.problems.append(f"{self.endpoint}[{item.label}]: same NetBox identity "
                                       f"as {seen[key]}; not written twice")
                continue
            seen[key] = item.label
            found = by_key.get(key)
            if found is None:
                creates.append(item)
                continue
            result.ids[item.ref] = found["id"]
            changed = differences(item.payload, found)
            if changed:
                patches.append((item, {"id": found["id"], **changed}))
            else:
                result.counts["unchanged"] += 1
        self.create_all(creates, result, parallel, lane)
        self.patch_all(patches, result)
        return result

    def create_all(self, creates: list[Wanted], result: SyncResult, parallel: int = 1,
                   lane: Callable[[Wanted], Hashable] | None = None) -> None:
        """Bulk-create in chunks; refused objects become problems.

        With parallel > 1 and a `lane` (what an object's creation locks in NetBox, e.g. its
        device, whose interface counter it bumps), objects of one lane go to one thread, so two
        concurrent transactions never update the same row (PostgreSQL would report a deadlock).
        """
        lanes: list[list[Wanted]] = [creates]
        if parallel > 1 and lane is not None and len(creates) > 1:
            groups: dict[Hashable, list[Wanted]] = {}
            for item in creates:
                groups.setdefault(lane(item), []).append(item)
            lanes = [[] for _ in range(parallel)]
            for group in sorted(groups.values(), key=len, reverse=True):
                min(lanes, key=len).extend(group)
            order = {id(item): i for i, item in enumerate(creates)}
            lanes = [sorted(members, key=lambda w: order[id(w)]) for members in lanes if members]
        if len(lanes) > 1:
            with ThreadPoolExecutor(max_workers=len(lanes)) as pool:
                list(pool.map(lambda members: self._create_lane(members, result), lanes))
        else:
            self._create_lane(lanes[0], result)

    def _create_lane(self, creates: list[Wanted], result: SyncResult) -> None:
        for start in range(0, len(creates), WRITE_CHUNK):
            chunk = creates[start:start + WRITE_CHUNK]
            for item, stored in zip(chunk, self._post(chunk, result), strict=True):
                if stored is not None:
                    with self._lock:
                        result.ids[item.ref] = stored["id"]
                        result.counts["created"] += 1

    def _post(self, chunk: list[Wanted], result: SyncResult) -> list[NetBoxObject | None]:
        """POST a chunk; on a 400, report the refused objects and POST the others again.

        NetBox creates a list all or nothing, answering a refusal with each failed object's
        index and errors.
        """
        try:
            return list(self.client.post(self.endpoint, [w.payload for w in chunk]))
        except NetBoxError as exc:
            if exc.status != 400:
                raise
            body = exc.body
        errors = _per_object(body, "index", range(len(chunk)))
        if errors is None:
            if len(chunk) == 1:
                result.problems.append(f"{self.endpoint}[{chunk[0].label}]: NetBox refused it: "
                                       f"{_flat(body)}")
                return [None]
            return [self._post([item], result)[0] for item in chunk]  # find the culprits
        for position, err in sorted(errors.items()):
            result.problems.append(f"{self.endpoint}[{chunk[position].label}]: NetBox refused "
                                   f"it: {_flat(err)}")
        good = [i for i in range(len(chunk)) if i not in errors]
        stored: list[NetBoxObject | None] = [None] * len(chunk)
        if good:
            again = self._post([chunk[i] for i in good], result)
            for i, obj in zip(good, again, strict=True):
                stored[i] = obj
        return stored

    def patch_all(self, patches: list[tuple[Wanted, dict[str, Any]]], result: SyncResult) -> None:
        """Bulk-patch in chunks; refused updates become problems, the others are applied."""
        for start in range(0, len(patches), WRITE_CHUNK):
            chunk = patches[start:start + WRITE_CHUNK]
            while chunk:
                try:
                    self.client.patch(self.endpoint, [body for _, body in chunk])
                except NetBoxError as exc:
                    ids = [body["id"] for _, body in chunk]
                    errors = _per_object(exc.body, "id", ids) if exc.status == 400 else None
                    if not errors:
                        raise
                    for item, body in chunk:
                        if body["id"] in errors:
                            result.problems.append(
                                f"{self.endpoint}[{item.label}]: NetBox refused the update of "
                                f"{sorted(k for k in body if k != 'id')}: "
                                f"{_flat(errors[body['id']])}")
                    chunk = [(item, body) for item, body in chunk if body["id"] not in errors]
                    continue
                result.counts["updated"] += len(chunk)
                break


def _per_object(body: object, key: str, valid: Any) -> dict[Any, object] | None:
    """NetBox's bulk refusal {"detail", "errors": [{index|id, errors}]} as {index|id: errors}."""
    if not isinstance(body, dict) or not isinstance(body.get("errors"), list):
        return None
    found = {e.get(key): e.get("errors") for e in body["errors"] if isinstance(e, dict)}
    if not found or any(k not in valid for k in found):
        return None
    return found


def _flat(err: object) -> str:
    """NetBox's validation errors ({field: [messages]}) as one line."""
    if isinstance(err, dict):
        return "; ".join(_flat(v) if k in ("non_field_errors", "__all__") else f"{k}: {_flat(v)}"
                         for k, v in err.items())
    if isinstance(err, list):
        return " ".join(_flat(v) for v in err)
    return str(err)
