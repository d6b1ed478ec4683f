"""NetBox's side of keeping a lab in step: webhook and event rule, and the change log to poll."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .netbox_client import NetBoxClient, NetBoxError, NetBoxObject

log = logging.getLogger(__name__)

# Every object type whose edit can change a lab (placement, links, addresses, twin profiles).
HOOK_OBJECT_TYPES = ("dcim.device", "dcim.interface", "dcim.cable", "dcim.rack",
                     "dcim.location", "dcim.site", "ipam.ipaddress", "extras.configcontext",
                     "extras.tag")
HOOK_EVENTS = ("object_created", "object_updated", "object_deleted")
# The change log also records cable ends as objects of their own.
CHANGELOG_TYPES = (*HOOK_OBJECT_TYPES, "dcim.cabletermination")
WEBHOOKS = "extras.webhooks"
EVENT_RULES = "extras.event-rules"
CHANGES = "core.object-changes"


def hook_name(lab: str) -> str:
    """The name of the lab's webhook and event rule in NetBox (one pair per lab)."""
    return f"dtnlab-{lab}"


@dataclass
class HookInstall:
    """What `install_hook` did to each NetBox object: created, updated or unchanged."""

    webhook_id: int
    event_rule_id: int
    actions: dict[str, str] = field(default_factory=dict)


def _ref(value: Any) -> Any:
    """A NetBox answer's value in the form a write takes (ids, choice values, type names)."""
    if isinstance(value, dict):
        if "value" in value and "label" in value:
            return value["value"]
        if "app_label" in value and "model" in value:
            return f"{value['app_label']}.{value['model']}"
        return value.get("id", value)
    if isinstance(value, list):
        return sorted(map(str, (_ref(v) for v in value)))
    return value


def _upsert(client: NetBoxClient, endpoint: str, name: str,
            wanted: dict[str, Any]) -> tuple[NetBoxObject, str]:
    """Create the object called `name`, or patch only the fields that differ."""
    found = client.list_all(endpoint, {"name": name})
    if not found:
        return client.post(endpoint, [{"name": name, **wanted}])[0], "created"
    current = found[0]
    differ = {k: v for k, v in wanted.items() if _ref(current.get(k)) != _ref(v)}
    if not differ:
        return current, "unchanged"
    return client.patch(endpoint, [{"id": current["id"], **differ}])[0], "updated"


def install_hook(client: NetBoxClient, lab: str, url: str, secret: str,
                 verify_tls: bool = True) -> HookInstall:
    """Create or update the lab's webhook and event rule, idempotently.

    Installing twice changes nothing: only fields that differ from NetBox's are patched.

    Args:
        client: a NetBox client with a write token.
        lab: the lab name (names the webhook and the event rule `dtnlab-<lab>`).
        url: the lab API's receiver, e.g. http://127.0.0.1:8088/hooks/netbox.
        secret: the shared secret NetBox signs bodies with (X-Hook-Signature).
        verify_tls: NetBox verifies the receiver's certificate (for https URLs).
    """
    name = hook_name(lab)
    webhook_fields = {"payload_url": url, "http_method": "POST",
                      "http_content_type": "application/json", "ssl_verification": verify_tls,
                      "secret": secret,
                      "description": f"dtnlab: regenerate lab {lab} on inventory edits"}
    webhook, hook_action = _upsert(client, WEBHOOKS, name, webhook_fields)
    rule_fields = {"object_types": list(HOOK_OBJECT_TYPES), "event_types": list(HOOK_EVENTS),
                   "enabled": True, "action_type": "webhook",
                   "action_object_type": "extras.webhook", "action_object_id": webhook["id"],
                   "description": f"dtnlab: edits that can change lab {lab}"}
    rule, rule_action = _upsert(client, EVENT_RULES, name, rule_fields)
    return HookInstall(int(webhook["id"]), int(rule["id"]),
                       {"webhook": hook_action, "event rule": rule_action})


def uninstall_hook(client: NetBoxClient, lab: str) -> list[str]:
    """Delete the lab's event rule and webhook; return what was deleted."""
    gone = []
    for endpoint in (EVENT_RULES, WEBHOOKS):
        for obj in client.list_all(endpoint, {"name": hook_name(lab)}):
            url = f"{client.endpoint_url(endpoint)}{obj['id']}/"
            response = client.call(f"DELETE {endpoint}",
                                   lambda u=url: client.session.delete(  # type: ignore[misc]
                                       u, headers=_auth(client)))
            if response.status_code not in (204, 404):
                raise NetBoxError(f"NetBox refused DELETE {endpoint} {obj['id']} "
                                  f"(HTTP {response.status_code})", response.status_code)
            gone.append(f"{endpoint} {obj['id']}")
    return gone


def _auth(client: NetBoxClient) -> dict[str, str]:
    scheme = "Bearer" if client.token.startswith("nbt_") else "Token"
    return {"Authorization": f"{scheme} {client.token}", "Accept": "application/json"}


# -- the change log -----------------------------------------------------------------------------

@dataclass(frozen=True)
class WatchScope:
    """What the lab holds, in NetBox ids, to tell a change log entry that matters from one that
    does not. Empty site ids mean every site (a tenant or tag selection)."""

    site_ids: frozenset[int] = frozenset()
    device_ids: frozenset[int] = frozenset()
    interface_ids: frozenset[int] = frozenset()


def changed_type(change: NetBoxObject) -> str:
    kind = change.get("changed_object_type")
    if isinstance(kind, dict):
        return f"{kind.get('app_label')}.{kind.get('model')}"
    return str(kind or "")


def change_relevant(change: NetBoxObject, scope: WatchScope) -> bool:
    """Whether one change log entry can change the lab; when in doubt, yes.

    Args:
        change: an entry of /api/core/object-changes/ (pre- and post-change data, raw ids).
        scope: the lab's sites, devices and interfaces as NetBox ids.
    """
    kind = changed_type(change)
    if kind not in CHANGELOG_TYPES:
        return False
    before = change.get("prechange_data") or {}
    after = change.get("postchange_data") or {}
    object_id = change.get("changed_object_id")

    def sites() -> set[Any]:
        return {before.get("site"), after.get("site")}

    if kind == "dcim.site":
        return not scope.site_ids or object_id in scope.site_ids
    if kind == "dcim.device":
        return object_id in scope.device_ids or not scope.site_ids or bool(
            sites() & scope.site_ids)
    if kind in ("dcim.rack", "dcim.location"):
        return not scope.site_ids or bool(sites() & scope.site_ids)
    if kind == "dcim.interface":
        return bool({before.get("device"), after.get("device")} & scope.device_ids)
    if kind == "dcim.cabletermination":
        ends = {before.get("termination_id"), after.get("termination_id")}
        return bool(ends & scope.interface_ids) or bool(
            {before.get("_device"), after.get("_device")} & scope.device_ids)
    return True  # cables, addresses, config contexts, tags: cheap to check by a regen


class ChangeLog:
    """Reads NetBox's change log forward from the last entry seen.

    Args:
        client: a NetBox client (read access to core.objectchange).
        types: object types to ask for (filtered by NetBox, not here).
    """

    def __init__(self, client: NetBoxClient, types: Iterable[str] = CHANGELOG_TYPES) -> None:
        self.client = client
        self.types = list(types)

    def latest_id(self) -> int:
        """The id of the newest change log entry (0 when the log is empty)."""
        items, _ = self.client.page(CHANGES, {"ordering": "-id", "brief": 1}, 0, limit=1)
        return int(items[0]["id"]) if items else 0

    def since(self, last_id: int, limit: int = 1000) -> list[NetBoxObject]:
        """Entries after `last_id`, oldest first, of the chosen object types."""
        params = {"id__gt": last_id, "ordering": "id", "changed_object_type": self.types}
        items, _ = self.client.page(CHANGES, params, 0, limit=limit)
        return items

    def scope_of(self, site_slugs: Iterable[str], device_ids: Iterable[int]) -> WatchScope:
        """Resolve a lab's selection to NetBox ids: its sites, devices and their interfaces."""
        slugs = sorted(set(site_slugs))
        site_ids = frozenset(int(s["id"]) for s in self.client.list_all(
            "dcim.sites", {"slug": slugs, "brief": 1})) if slugs else frozenset()
        devices = frozenset(int(d) for d in device_ids)
        interfaces: set[int] = set()
        ids = sorted(devices)
        for start in range(0, len(ids), 100):
            chunk = ids[start:start + 100]
            interfaces |= {int(i["id"]) for i in self.client.list_all(
                "dcim.interfaces", {"device_id": chunk, "fields": "id"})}
        return WatchScope(site_ids, devices, frozenset(interfaces))
