"""Objects a test makes in the real NetBox, deleted again (last made first) when it is done."""

from __future__ import annotations

from typing import Any

import requests

from dtnlab.inventory.netbox_client import NetBoxClient


class MadeObjects:
    """Makes NetBox objects through the REST API and remembers them for `delete_all`."""

    def __init__(self, netbox: dict[str, str]) -> None:
        self.client = NetBoxClient(netbox["url"], netbox["token"])
        self.url = netbox["url"].rstrip("/")
        self.session = requests.Session()
        self.session.trust_env = False  # loopback only: no proxy from the environment
        self.session.headers["Authorization"] = f"Bearer {netbox['token']}"
        self.made: list[tuple[str, int]] = []

    def make(self, endpoint: str, **fields: Any) -> int:
        obj_id = int(self.client.post(endpoint, [fields])[0]["id"])
        self.made.append((endpoint, obj_id))
        return obj_id

    def delete_all(self) -> None:
        for endpoint, obj_id in reversed(self.made):
            app, name = endpoint.split(".", 1)
            resp = self.session.delete(f"{self.url}/api/{app}/{name}/{obj_id}/", timeout=60)
            assert resp.status_code in (204, 404), resp.text
        self.made.clear()
