"""End-to-end test of netbox/netboxctl.py against a real local NetBox (first run takes ~7 min)."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from netbox.netboxctl import proc_start_time
from tests.waiting import wait_for

pytestmark = pytest.mark.netbox

REPO = Path(__file__).resolve().parents[2]
CTL = REPO / "netbox" / "netboxctl.py"


def ctl(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(
        [sys.executable, str(CTL), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert res.returncode == 0, f"netboxctl {' '.join(args)} failed:\n{res.stdout}\n{res.stderr}"
    return res


def read_env(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def api(
    env: dict[str, str],
    path: str,
    *,
    method: str = "GET",
    body: object = None,
    auth: str | None = "Token",
) -> tuple[int, object]:
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    if auth:
        # The header form pynetbox 7.x uses is `Bearer` for nbt_ tokens; NetBox takes `Token` too.
        headers["Authorization"] = f"{auth} {env['NETBOX_TOKEN']}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        env["NETBOX_URL"] + path, data=data, headers=headers, method=method
    )
    # Loopback: never go through an inherited http_proxy.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        # Closed explicitly: pytest runs with warnings as errors (ResourceWarning).
        with err:
            return err.code, err.read().decode(errors="replace")


@pytest.fixture(scope="module")
def netbox() -> dict[str, str]:
    ctl("up")
    env_path = Path(ctl("env").stdout.strip())
    env = read_env(env_path)
    env["_ENV_FILE"] = str(env_path)
    return env


def test_second_up_does_nothing(netbox: dict[str, str]) -> None:
    pid_dir = Path(netbox["_ENV_FILE"]).parent / "run"
    before = {p.name: p.read_text() for p in pid_dir.glob("*.pid")}
    res = ctl("up", timeout=120)
    assert "already running" in res.stdout
    assert {p.name: p.read_text() for p in pid_dir.glob("*.pid")} == before
    assert set(before) == {"gunicorn.pid", "rqworker.pid"}


def test_env_file_is_private_and_complete(netbox: dict[str, str]) -> None:
    mode = stat.S_IMODE(Path(netbox["_ENV_FILE"]).stat().st_mode)
    assert mode == 0o600, oct(mode)
    for key in ("NETBOX_URL", "NETBOX_TOKEN", "NETBOX_USERNAME", "NETBOX_PASSWORD"):
        assert netbox.get(key), key
    assert netbox["NETBOX_TOKEN"].startswith("nbt_")


def test_api_status_reports_47(netbox: dict[str, str]) -> None:
    for auth in ("Token", "Bearer"):
        code, body = api(netbox, "/api/status/", auth=auth)
        assert code == 200, body
        assert isinstance(body, dict)
        assert str(body["netbox-version"]).startswith("4.7."), body
    # LOGIN_REQUIRED: without the token the API refuses.
    code, _ = api(netbox, "/api/status/", auth=None)
    assert code == 403


def test_static_files_are_served(netbox: dict[str, str]) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(netbox["NETBOX_URL"] + "/login/", timeout=30) as resp:
        page = resp.read().decode()
    css = page.split('href="/static/', 1)[1].split('"', 1)[0]
    with opener.open(f"{netbox['NETBOX_URL']}/static/{css}", timeout=30) as resp:
        assert resp.status == 200


def test_fresh_gives_an_empty_netbox(netbox: dict[str, str]) -> None:
    # Leave something behind so the reset is observable.
    code, body = api(
        netbox,
        "/api/dcim/sites/",
        method="POST",
        body={"name": "netboxctl-test", "slug": "netboxctl-test"},
    )
    assert code == 201, body
    ctl("up", "--fresh", timeout=300)
    for path in ("/api/dcim/devices/", "/api/dcim/sites/"):
        code, body = api(netbox, path)
        assert code == 200, body
        assert isinstance(body, dict), body
        assert body["count"] == 0, body


def test_down_stops_only_what_up_started(netbox: dict[str, str]) -> None:
    """`make netbox-down`: the web server and worker of the PID files stop, nothing else does;
    a PID file whose process is not the one `up` started (a reused PID) is left alone."""
    run = Path(netbox["_ENV_FILE"]).parent / "run"
    started = {s: json.loads((run / f"{s}.pid").read_text()) for s in ("gunicorn", "rqworker")}
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        ctl("down", timeout=120)
        wait_for(lambda: all(proc_start_time(info["pid"]) is None for info in started.values()),
                 timeout=30, what="NetBox's processes to stop")
        with pytest.raises(urllib.error.URLError):
            api(netbox, "/api/status/")
        # A stale PID file naming someone else's process: `down` must not touch it.
        (run / "rqworker.pid").write_text(json.dumps(
            {"pid": bystander.pid, "start": "0", "cmd": started["rqworker"]["cmd"]}) + "\n")
        ctl("down", timeout=120)
        assert bystander.poll() is None, "down killed a process it did not start"
        for probe in (["pg_isready", "-q", "-h", "127.0.0.1"],  # the machine's services stay up
                      ["redis-cli", "-h", "127.0.0.1", "ping"]):
            assert subprocess.run(probe, capture_output=True, check=False).returncode == 0, probe
    finally:
        bystander.kill()
        bystander.wait()
        ctl("up", timeout=600)
    code, body = api(netbox, "/api/status/")
    assert code == 200, body
