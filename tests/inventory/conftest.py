"""NetBox fixtures: one clean, seeded NetBox per session; recorded NetBox answers for unit tests."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from requests.adapters import BaseAdapter

from dtnlab.inventory.netbox_seed import SeedReport, seed
from dtnlab.inventory.source import read_inventory_file
from tests.conftest import DEMO_INVENTORY, REPO

NETBOXCTL = REPO / "netbox" / "netboxctl.py"
# netboxctl's state dir: DTN_NETBOX_HOME (with NETBOX_PORT, DTN_NETBOX_DB...) selects another
# instance, e.g. a private one that other sessions' `up --fresh` do not reset mid-run.
ENV_FILE = Path(os.environ.get("DTN_NETBOX_HOME") or REPO / ".netbox") / "netbox.env"
REPLAY_DIR = Path(__file__).resolve().parent / "netbox_replay"
DEMO_SITES = ["plant-aarhus", "plant-brno"]


@pytest.fixture(scope="session")
def demo_valid() -> Path:
    """The demo plant, which NetBox can hold as it is (no cable ends on wireless interfaces)."""
    return DEMO_INVENTORY


def read_env() -> dict[str, str]:
    values = {}
    for line in ENV_FILE.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not name.startswith("#"):
            values[name] = value
    return values


@pytest.fixture(scope="session")
def netbox() -> dict[str, str]:
    """A clean NetBox (`netboxctl up --fresh`: a migrated, empty database) for this session."""
    done = subprocess.run([sys.executable, str(NETBOXCTL), "up", "--fresh"],
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, f"netboxctl up --fresh failed:\n{done.stdout}\n{done.stderr}"
    assert ENV_FILE.exists(), f"netboxctl up did not write {ENV_FILE}"
    env = read_env()
    return {"url": env["NETBOX_URL"], "token": env["NETBOX_TOKEN"]}


@pytest.fixture(scope="session")
def seeded(netbox: dict[str, str], demo_valid: Path) -> SeedReport:
    """The demo plant seeded into the clean NetBox, first of all, so its ids match the file's."""
    report = seed(read_inventory_file(demo_valid), netbox["url"], netbox["token"])
    assert report.problems == []
    return report


# -- recorded answers --------------------------------------------------------------------------
def request_key(method: str, url: str) -> str:
    parts = urlsplit(url)
    query = "&".join(f"{k}={v}" for k, v in sorted(parse_qsl(parts.query)))
    return f"{method} {parts.path}?{query}"


class ReplayAdapter(BaseAdapter):
    """Answers requests from recorded NetBox responses; an unrecorded request fails the test."""

    def __init__(self, answers: dict[str, dict[str, Any]]) -> None:
        super().__init__()
        self.answers = answers
        self.requests: list[str] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        key = request_key(str(request.method), str(request.url))
        self.requests.append(key)
        answer = self.answers.get(key)
        assert answer is not None, f"no recorded answer for {key}"
        resp = requests.Response()
        resp.status_code = answer["status"]
        resp._content = json.dumps(answer["body"]).encode()
        resp.headers["Content-Type"] = "application/json"
        resp.url = str(request.url)
        resp.request = request
        resp.reason = "OK" if answer["status"] < 400 else "Error"
        return resp

    def close(self) -> None:
        pass


class RecordingAdapter(requests.adapters.HTTPAdapter):
    """Passes requests to NetBox and keeps every answer (to write a replay file)."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: dict[str, dict[str, Any]] = {}

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        resp = super().send(request, **kwargs)
        self.answers[request_key(str(request.method), str(request.url))] = {
            "status": resp.status_code, "body": resp.json()}
        return resp


def load_replay(name: str) -> dict[str, dict[str, Any]]:
    """Recorded answers, gzipped (NetBox's JSON verbatim is ~350 kB for the demo plant)."""
    raw = gzip.decompress((REPLAY_DIR / f"{name}.json.gz").read_bytes())
    return json.loads(raw)  # type: ignore[no-any-return]


@pytest.fixture
def replayed() -> Any:
    """A factory: a NetBoxSource answering from a replay (a name or the answers themselves)."""
    from dtnlab.inventory.netbox_source import NetBoxSource

    def make(answers: str | dict[str, dict[str, Any]],
             **selection: Any) -> tuple[NetBoxSource, ReplayAdapter]:
        source = NetBoxSource("http://netbox.test", "nbt_test.secret", lab="demo-plant",
                              **selection)
        adapter = ReplayAdapter(load_replay(answers) if isinstance(answers, str) else answers)
        source.client.session.mount("http://", adapter)
        return source, adapter

    return make


def save_replay(name: str, answers: dict[str, dict[str, Any]]) -> Path:
    path = REPLAY_DIR / f"{name}.json.gz"
    REPLAY_DIR.mkdir(exist_ok=True)
    body = json.dumps(answers, sort_keys=True, separators=(",", ":")).encode()
    path.write_bytes(gzip.compress(body, mtime=0))
    return path
