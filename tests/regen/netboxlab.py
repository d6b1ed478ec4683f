"""A small lab read from the real NetBox and running locally, with its webhook installed.

The lab's NetBox objects live in a site of their own (`rg-<random>`, config contexts scoped to
it, no IP addresses), so the shared NetBox's other data is neither read nor changed; they are
deleted again on exit.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from dtnlab.inventory.netbox_client import NetBoxClient
from dtnlab.inventory.netbox_seed import seed
from tests.broker import free_port
from tests.conftest import REPO
from tests.runtime.emulator.smalllab import small_inventory
from tests.waiting import wait_for

ENV_FILE = Path(os.environ.get("DTN_NETBOX_HOME") or REPO / ".netbox") / "netbox.env"
NETBOXCTL = REPO / "netbox" / "netboxctl.py"
SITE_ID = 1  # plant-aarhus in the demo file, where every device of the small lab stands
CONNECTED = re.compile(r"New client connected from [^ ]+:(\d+) as (\S+) ")


def netbox_busy(client: NetBoxClient) -> bool:
    """Whether NetBox's RQ worker has a job queued or running. Seeding queues search-cache jobs
    for minutes; whatever is timed or queued behind them (webhooks) would wait for them."""
    return any(q["jobs"] or q["started_jobs"] for q in client.list_all("core.background-queues"))


def netbox_env() -> dict[str, str]:
    """NETBOX_URL, NETBOX_TOKEN, NETBOX_USERNAME, NETBOX_PASSWORD of `make netbox`."""
    if not ENV_FILE.exists():
        done = subprocess.run([sys.executable, str(NETBOXCTL), "up"], capture_output=True,
                              text=True, timeout=900)
        assert done.returncode == 0, f"netboxctl up failed:\n{done.stdout}\n{done.stderr}"
    values = {}
    for line in ENV_FILE.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not name.startswith("#"):
            values[name.strip()] = value.strip()
    return values


def netbox_inventory(site: str, period_s: float, heartbeat_s: float) -> dict[str, Any]:
    """The small lab in a site of its own: contexts renamed and scoped to it, no IPAM."""
    data = small_inventory(period_s=period_s, heartbeat_s=heartbeat_s, lab=site)
    data.pop("dtnlab")
    for key in ("ipam.ip-addresses", "ipam.prefixes"):
        data.pop(key, None)
    ref = {"id": SITE_ID, "slug": site}
    data["dcim.sites"] = [{**s, "name": f"RG {site}", "slug": site}
                          for s in data["dcim.sites"] if s["id"] == SITE_ID]
    data["dcim.locations"] = [{**x, "site": ref} for x in data["dcim.locations"]
                              if x["site"]["id"] == SITE_ID]
    data["dcim.racks"] = [{**x, "site": ref} for x in data["dcim.racks"]
                          if x["site"]["id"] == SITE_ID]
    for device in data["dcim.devices"]:
        device["site"] = ref
        device.pop("primary_ip4", None)
    used = {key: {d[key]["id"] for d in data["dcim.devices"] if d.get(key)}
            for key in ("rack", "role", "device_type", "platform")}
    data["dcim.racks"] = [r for r in data["dcim.racks"] if r["id"] in used["rack"]]
    for endpoint, key in (("dcim.device-roles", "role"), ("dcim.device-types", "device_type"),
                          ("dcim.platforms", "platform")):
        data[endpoint] = [o for o in data[endpoint] if o["id"] in used[key]]
    contexts = []  # fewer objects: seeding is the slow part of these tests
    for context in data["extras.config-contexts"]:
        roles = {r["id"] for r in context.get("roles") or []}
        if context.get("sites") or (roles and not roles & used["role"]):
            continue  # another site's climate, or roles the lab does not have
        contexts.append({**context, "name": f"{context['name']} {site}", "sites": [ref]})
    data["extras.config-contexts"] = contexts
    return data


class NetBoxLab:
    """Seed, `dtnlab up --netbox`, `dtnlab netbox hook install`; everything undone on exit.

    Args:
        folder: where the lab folder goes (labs/<site>).
        period_s: telemetry period of every device.
        heartbeat_s: twin heartbeat.
    """

    def __init__(self, folder: Path | None = None, period_s: float = 1.0,
                 heartbeat_s: float = 6.0) -> None:
        env = netbox_env()
        self.url, self.token = env["NETBOX_URL"], env["NETBOX_TOKEN"]
        self.username, self.password = env.get("NETBOX_USERNAME", ""), env.get(
            "NETBOX_PASSWORD", "")
        self.site = f"rg-{uuid.uuid4().hex[:6]}"
        self.own_folder = folder is None  # a temporary folder of its own, removed on exit
        self.labs = (folder or Path(tempfile.mkdtemp(prefix=f"dtnlab-{self.site}-"))) / "labs"
        self.folder = self.labs / self.site
        self.data = netbox_inventory(self.site, period_s, heartbeat_s)
        self.ports = {"mqtt_port": free_port(), "mqtts_port": free_port(),
                      "api_port": free_port()}
        self.session = requests.Session()
        self.session.trust_env = False
        scheme = "Bearer" if self.token.startswith("nbt_") else "Token"
        self.session.headers.update({"Authorization": f"{scheme} {self.token}",
                                     "Accept": "application/json"})
        self.api_token: str | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def lab_args(self) -> list[str]:
        sets = [a for k, v in self.ports.items() for a in ("--set", f"{k}={v}")]
        return ["--netbox", "--site", self.site, "--lab", self.site, "--labs-dir",
                str(self.labs), *sets]

    def dtnlab(self, *argv: str, timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "dtnlab", *argv], capture_output=True,
                              text=True, timeout=timeout, cwd=REPO)

    def settle(self, timeout: float = 300.0) -> None:
        """Wait for NetBox's RQ worker to be idle, so webhooks are not late for its reasons."""
        client = NetBoxClient(self.url, self.token)
        self.wait(lambda: not netbox_busy(client), timeout, "NetBox's background jobs to finish")

    def __enter__(self) -> NetBoxLab:
        report = seed(copy.deepcopy(self.data), self.url, self.token)
        assert report.problems == [], report.problems
        try:
            done = self.dtnlab("up", *self.lab_args(), "--timeout", "120")
            assert done.returncode == 0, f"up failed:\n{done.stdout}\n{done.stderr}"
            done = self.dtnlab("netbox", "hook", "install", "--lab", self.site,
                               "--labs-dir", str(self.labs))
            assert done.returncode == 0, f"hook install failed:\n{done.stdout}\n{done.stderr}"
            self.settle()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.dtnlab("netbox", "hook", "uninstall", "--lab", self.site)
        self.dtnlab("down", "--lab", self.site, "--labs-dir", str(self.labs))
        self.cleanup()
        if self.own_folder:
            shutil.rmtree(self.labs.parent, ignore_errors=True)

    def cleanup(self) -> None:
        """Delete what the lab put into NetBox, children first."""
        site = {"site": self.site}
        for endpoint, params in (("dcim/cables", site), ("dcim/devices", site),
                                 ("dcim/racks", site), ("dcim/locations", site),
                                 ("extras/config-contexts", {"q": self.site}),
                                 ("dcim/sites", {"slug": self.site})):
            ids = [o["id"] for o in self.list(endpoint, **params)]
            if endpoint == "dcim/locations":
                ids.sort(reverse=True)  # children were created after their parents
            for chunk in (ids[i:i + 50] for i in range(0, len(ids), 50)):
                self.session.delete(f"{self.url}/api/{endpoint}/",
                                    json=[{"id": i} for i in chunk], timeout=60)

    # -- NetBox -------------------------------------------------------------------------------

    def list(self, endpoint: str, **params: Any) -> list[dict[str, Any]]:
        answer = self.session.get(f"{self.url}/api/{endpoint}/",
                                  params={"limit": 1000, **params}, timeout=60)
        answer.raise_for_status()
        return answer.json()["results"]  # type: ignore[no-any-return]

    def one(self, endpoint: str, **params: Any) -> dict[str, Any]:
        found = self.list(endpoint, **params)
        assert len(found) == 1, f"{endpoint} {params}: {len(found)} objects"
        return found[0]

    def patch(self, endpoint: str, object_id: int, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.session.patch(f"{self.url}/api/{endpoint}/{object_id}/", json=body,
                                    timeout=60)
        assert answer.ok, f"PATCH {endpoint} {object_id}: {answer.status_code} {answer.text}"
        return answer.json()  # type: ignore[no-any-return]

    def post(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.session.post(f"{self.url}/api/{endpoint}/", json=body, timeout=60)
        assert answer.ok, f"POST {endpoint}: {answer.status_code} {answer.text}"
        return answer.json()  # type: ignore[no-any-return]

    def delete(self, endpoint: str, object_id: int) -> None:
        answer = self.session.delete(f"{self.url}/api/{endpoint}/{object_id}/", timeout=60)
        assert answer.status_code == 204, f"DELETE {endpoint}: {answer.text}"

    def device(self, name: str) -> dict[str, Any]:
        return self.one("dcim/devices", site=self.site, name=name)

    def context_id(self, base: str) -> int:
        return int(self.one("extras/config-contexts", name=f"{base} {self.site}")["id"])

    def context_data(self, base: str, normal: list[float]) -> dict[str, Any]:
        """A config context's data with the first metric's normal band replaced."""
        data: dict[str, Any] = copy.deepcopy(
            self.one("extras/config-contexts", name=f"{base} {self.site}")["data"])
        metric = next(iter(data["dtnlab"]["metrics"].values()))
        metric["normal"] = normal
        return data

    # -- the running lab ----------------------------------------------------------------------

    def api(self, path: str) -> Any:
        """GET on the lab's API as its admin user."""
        base = f"http://127.0.0.1:{self.ports['api_port']}"
        if self.api_token is None:
            users = json.loads((self.folder / "secrets" / "api-users.json").read_text())
            answer = requests.post(f"{base}/auth/token", timeout=10, data={
                "username": "admin", "password": users["admin"]})
            answer.raise_for_status()
            self.api_token = answer.json()["access_token"]
        answer = requests.get(f"{base}{path}", timeout=10,
                              headers={"Authorization": f"Bearer {self.api_token}"})
        return answer.json() if answer.status_code == 200 else None

    def engine_digest(self) -> str | None:
        try:
            doc = json.loads((self.folder / "run" / "engine" / "status.json").read_text())
        except (OSError, ValueError):
            return None
        return doc.get("lab_sha256")  # type: ignore[no-any-return]

    def regen_status(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.folder / "run" / "regen.json").read_text())  # type: ignore[no-any-return]
        except (OSError, ValueError):
            return None

    def connections(self) -> dict[str, str]:
        """Each MQTT client id's newest connection, as the broker logged it (its source port)."""
        log = (self.folder / "run" / "mosquitto" / "mosquitto.log").read_text(errors="replace")
        return {client: port for port, client in CONNECTED.findall(log)}

    def wait(self, predicate: Callable[[], Any], timeout: float = 30.0,
             what: str = "condition") -> Any:
        try:
            return wait_for(predicate, timeout, what, interval=0.1)
        except AssertionError as error:
            raise AssertionError(f"{error}; last regen: {self.regen_status()}") from None
