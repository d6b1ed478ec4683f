"""The running lab follows NetBox: edits through REST (and the web UI) reach it by webhook.

One small lab read from the real NetBox runs through the module; its RQ worker delivers the
webhooks. Every edit checks that the right twins changed and that the others kept their MQTT
connection (source port in the broker log) and their state (the `since` of their twin state).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import REPO
from tests.regen.netboxlab import NetBoxLab

pytestmark = [pytest.mark.netbox, pytest.mark.mosquitto]

# An edit reaches the running lab in about 2 s (bench/regen_bench.py): webhook, regen
# subprocess, reload. The bound leaves room for a loaded two-core machine and still fails a
# lab that no longer follows within seconds.
FOLLOW_S = 10.0
SETTLE_S = 60.0  # a previous edit's trailing webhooks and regens, batched storage writes
MOVED, ADDED, REMOVED = "aar-l1-c1-tt-01", "aar-l1-c1-tt-02", "aar-l1-c1-vt-01"
TEMPERATURE = ("aar-l1-c1-tt-01", "aar-l3-c1-tt-01")


@pytest.fixture(scope="module")
def nb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetBoxLab]:
    with NetBoxLab(tmp_path_factory.mktemp("netbox-lab")) as lab:
        lab.wait(lambda: len(twins(lab)) == 9, what="the API to list the lab's nine twins")
        yield lab


def twins(nb: NetBoxLab) -> dict[str, dict[str, Any]]:
    page = nb.api("/twins?page_size=1000") or {"items": []}
    return {t["id"]: t for t in page["items"]}


def settled(nb: NetBoxLab, quiet_s: float = 2.0) -> bool:
    """No regen running or queued, and no webhook for `quiet_s` (NetBox's may trail)."""
    hooks = (nb.api("/regen") or {}).get("webhook") or {}
    last = hooks.get("last_event") or 0.0
    return not hooks.get("running") and time.time() - last > quiet_s


class Baseline:
    """Connections and twin states before an edit, to prove the others were left alone."""

    def __init__(self, nb: NetBoxLab) -> None:
        self.nb = nb
        nb.wait(lambda: settled(nb), SETTLE_S, "the previous edit's regens to end")
        self.connections = nb.connections()
        self.twins = twins(nb)
        self.digest = nb.engine_digest()
        self.regen = (nb.regen_status() or {}).get("ts")
        # an empty baseline would make assert_untouched check nothing
        assert self.twins, "no baseline: the API listed no twins"
        unconnected = sorted(set(self.twins) - set(self.connections))
        assert not unconnected, f"no baseline: no broker connection of {unconnected}"
        assert self.digest is not None, "no baseline: the engine reports no lab digest"

    def assert_untouched(self, touched: set[str]) -> None:
        now_connections = self.nb.connections()
        now_twins = twins(self.nb)
        missing = sorted(set(self.twins) - touched - set(now_twins))
        assert not missing, f"twins gone from the API: {missing}"
        for twin_id, before in self.twins.items():
            if twin_id in touched:
                continue
            assert now_connections.get(twin_id) == self.connections.get(twin_id), (
                f"{twin_id} reconnected")
            assert now_twins[twin_id]["since"] == before["since"], f"{twin_id} changed state"
            assert now_twins[twin_id]["uns_path"] == before["uns_path"]


def regen_after(nb: NetBoxLab, base: Baseline, match: Any = None) -> dict[str, Any]:
    """The regen run for this edit: the first attempt since the baseline that `match`es
    (run/regen.json keeps a short history, so a no-op regen right after it does not hide it)."""
    def found() -> dict[str, Any] | None:
        doc = nb.regen_status() or {}
        for entry in doc.get("history", []):
            if entry["ts"] > (base.regen or 0) and (match is None or match(entry)):
                return entry  # type: ignore[no-any-return]
        return None

    return nb.wait(found, FOLLOW_S, "a regen")  # type: ignore[no-any-return]


def test_moved_device_gets_its_new_path_and_keeps_its_history(nb: NetBoxLab) -> None:
    base = Baseline(nb)
    before = nb.api(f"/twins/{MOVED}")
    rack = nb.one("dcim/racks", site=nb.site, name="AAR-L3-C1")
    nb.patch("dcim/devices", nb.device("AAR-L1-C1-TT-01")["id"],
             {"rack": rack["id"], "location": rack["location"]["id"]})
    moved = nb.wait(lambda: (t := nb.api(f"/twins/{MOVED}")) and "/line-3/" in t["uns_path"]
                    and t, FOLLOW_S, "the twin's new UNS path")
    assert moved["topics"]["telemetry"] == f"{moved['uns_path']}/telemetry"
    doc = regen_after(nb, base, lambda e: e["moved"])
    assert doc["ok"] is True
    assert doc["moved"] == [MOVED]
    assert "broker:HUP" in doc["signalled"]
    # the emulator comes back on the new topics with a new connection, the twin keeps counting
    nb.wait(lambda: nb.connections().get(MOVED) != base.connections.get(MOVED),
            FOLLOW_S, "the moved device to reconnect")
    nb.wait(lambda: (t := nb.api(f"/twins/{MOVED}")) and t["last_ts"] > doc["ts"]
            and t["state"] == "healthy", FOLLOW_S, "telemetry on the new topic")
    query = f"/twins/{MOVED}/history?metric=temperature&from={before['last_ts'] - 60}"
    # one history, from before and after the move (storage writes in batches: wait for it)
    stamps = nb.wait(lambda: (h := nb.api(query)) and (s := [p["ts"] for p in h["points"]])
                     and max(s) > doc["ts"] and s, SETTLE_S, "history after the move")
    assert min(stamps) < doc["ts"]
    base.assert_untouched({MOVED})


def test_added_device_gets_credentials_acl_twin_and_emulator(nb: NetBoxLab) -> None:
    base = Baseline(nb)
    like = nb.device("AAR-L3-C1-TT-01")
    nb.post("dcim/devices", {
        "name": "AAR-L1-C1-TT-02", "role": like["role"]["id"],
        "device_type": like["device_type"]["id"], "site": like["site"]["id"],
        "location": like["location"]["id"], "rack": like["rack"]["id"], "status": "active",
        "tags": [{"slug": "dtn-twin"}]})
    nb.wait(lambda: ADDED in twins(nb), FOLLOW_S, "the new twin in the API")
    assert (nb.folder / "secrets" / "devices" / f"{ADDED}.password").stat().st_mode & 0o777 == (
        0o600)
    assert f"user {ADDED}" in (nb.folder / "mosquitto" / "acl").read_text()
    nb.wait(lambda: ADDED in nb.connections(), FOLLOW_S, "the new device's emulator to connect")
    nb.wait(lambda: twins(nb)[ADDED]["state"] == "healthy", FOLLOW_S, "the new twin healthy")
    assert regen_after(nb, base, lambda e: e["added"])["added"] == [ADDED]
    base.assert_untouched({ADDED})


def test_deleted_device_loses_twin_emulator_and_credentials(nb: NetBoxLab) -> None:
    base = Baseline(nb)
    device = nb.device("AAR-L1-C1-VT-01")
    # NetBox keeps a deleted device's cables with one end empty, which the inventory refuses
    # as a link: the cable goes first, as an engineer removing the device would do
    for cable in nb.list("dcim/cables", device_id=device["id"]):
        nb.delete("dcim/cables", cable["id"])
    nb.delete("dcim/devices", device["id"])
    nb.wait(lambda: REMOVED not in twins(nb), FOLLOW_S, "the twin to leave the API")
    assert not (nb.folder / "secrets" / "devices" / f"{REMOVED}.password").exists()
    assert f"user {REMOVED}" not in (nb.folder / "mosquitto" / "acl").read_text()
    nb.wait(lambda: sum(json.loads(p.read_text())["devices"]
                        for p in (nb.folder / "run" / "emulator").glob("*.json")) == 9,
            FOLLOW_S, "the emulators to drop the device")
    assert nb.api(f"/twins/{REMOVED}") is None
    assert regen_after(nb, base, lambda e: e["removed"])["removed"] == [REMOVED]
    base.assert_untouched({REMOVED})


def test_threshold_change_reconfigures_in_place(nb: NetBoxLab) -> None:
    # Edits here and below widen the seeded normal band [15, 30]: a sensor's readings do not
    # follow a threshold edit, so a narrower band could leave one near its new edge, flapping
    # with the time of day, and the later tests' untouched twins would not stay untouched.
    base = Baseline(nb)
    sensors = {t for t, v in base.twins.items() if v["role"] == "temperature-sensor"}
    assert set(TEMPERATURE) <= sensors
    context = nb.context_id("temperature-sensor")
    nb.patch("extras/config-contexts", context,
             {"data": nb.context_data("temperature-sensor", [14.0, 31.0])})
    for twin_id in sorted(sensors):
        nb.wait(lambda t=twin_id: (nb.api(f"/twins/{t}") or {}).get("metrics", {}).get(
            "temperature", {}).get("normal") == [14.0, 31.0], FOLLOW_S,
            f"{twin_id}'s new thresholds")
    doc = regen_after(nb, base, lambda e: e["reconfigured"])
    assert set(doc["reconfigured"]) == sensors
    assert doc["moved"] == []
    assert not any(s.startswith("broker") for s in doc["signalled"])
    # reconfigured, not restarted: same connection, and its telemetry still stored
    now = nb.connections()
    for twin_id in sensors:
        assert now[twin_id] == base.connections[twin_id]
        nb.wait(lambda t=twin_id: any(p["ts"] > doc["ts"] for p in (nb.api(
            f"/twins/{t}/history?metric=temperature&from={doc['ts'] - 5}") or {}).get(
            "points", [])), SETTLE_S, f"{twin_id}'s telemetry stored after the reload")
    base.assert_untouched(sensors)


@pytest.mark.parametrize(("name", "error", "problem"), [
    # validation: the slug of AAR-L1-C1-TT-01
    pytest.param("aar l1 c1 tt 01", "the inventory does not validate", "after normalising",
                 id="name-collides"),
    # rendering: NetBox takes 64 characters, a containerlab node name (a DNS label) 63
    pytest.param("AAR-L1-C1-PLC-01-" + "X" * 47, "the regenerated lab fails its checks",
                 "is not a DNS label", id="name-too-long-for-a-node"),
])
def test_bad_edit_leaves_the_lab_running_as_it_was(nb: NetBoxLab, name: str, error: str,
                                                   problem: str) -> None:
    base = Baseline(nb)
    plc = nb.device("AAR-L1-C1-PLC-01")
    nb.patch("dcim/devices", plc["id"], {"name": name})
    try:
        regen_after(nb, base, lambda e: not e["ok"])
        doc = nb.regen_status()
        assert doc is not None
        assert doc["ok"] is False
        assert error in doc["error"]
        assert any(problem in p for p in doc["problems"]), doc["problems"]
        status = subprocess.run([sys.executable, "-m", "dtnlab", "status", "--lab", nb.site,
                                 "--labs-dir", str(nb.labs)], capture_output=True, text=True,
                                timeout=60, cwd=REPO)
        assert "regen failed" in status.stdout
        assert error in status.stdout
        assert problem in status.stdout
        api = nb.api("/regen")
        assert api["last"]["ok"] is False
        assert api["last"]["problems"] == doc["problems"]
        assert nb.engine_digest() == base.digest
        base.assert_untouched(set())
    finally:
        nb.patch("dcim/devices", plc["id"], {"name": "AAR-L1-C1-PLC-01"})
    nb.wait(lambda: (d := nb.regen_status()) and d["ok"], SETTLE_S, "a good regen again")


def test_forged_and_unsigned_webhooks_are_refused(nb: NetBoxLab) -> None:
    base = Baseline(nb)
    url = f"http://127.0.0.1:{nb.ports['api_port']}/hooks/netbox"
    body = json.dumps({"event": "updated", "object_type": "extras.configcontext",
                       "data": {"id": 1}}).encode()
    for headers in ({}, {"X-Hook-Signature": "0" * 128},
                    {"X-Hook-Signature": "not-even-hex"}):
        answer = requests.post(url, data=body, timeout=10,
                               headers={"Content-Type": "application/json", **headers})
        assert answer.status_code == 401
    hooks = nb.api("/regen")["webhook"]
    assert hooks["refused"] >= 3
    assert (nb.regen_status() or {}).get("ts") == base.regen
    base.assert_untouched(set())


def test_hook_install_twice_changes_nothing(nb: NetBoxLab) -> None:
    """`netbox hook install` is idempotent: one webhook and one event rule, patched in place."""
    name = f"dtnlab-{nb.site}"
    install = ("netbox", "hook", "install", "--lab", nb.site, "--labs-dir", str(nb.labs))

    def installed() -> tuple[dict[str, Any], dict[str, Any]]:
        webhooks = nb.list("extras/webhooks", name=name)
        rules = nb.list("extras/event-rules", name=name)
        assert len(webhooks) == 1, webhooks
        assert len(rules) == 1, rules
        return webhooks[0], rules[0]

    hook, rule = installed()
    again = nb.dtnlab(*install)
    assert again.returncode == 0, again.stderr
    assert f"webhook unchanged (id {hook['id']}), event rule unchanged (id {rule['id']})" in (
        again.stdout)
    assert installed() == (hook, rule)  # not even NetBox's last_updated moved
    elsewhere = nb.dtnlab(*install, "--url", "http://127.0.0.1:9/hooks/netbox")
    assert f"webhook updated (id {hook['id']}), event rule unchanged" in elsewhere.stdout
    assert installed()[0]["payload_url"] == "http://127.0.0.1:9/hooks/netbox"
    back = nb.dtnlab(*install)
    assert f"webhook updated (id {hook['id']})" in back.stdout
    now, now_rule = installed()
    assert now["payload_url"] == hook["payload_url"]
    assert now_rule["id"] == rule["id"]


@pytest.mark.browser
def test_edit_in_the_netbox_web_ui_reaches_the_lab(nb: NetBoxLab, tmp_path: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    base = Baseline(nb)
    target = "AAR-L3-C1-TT-01"
    device = nb.device(target)
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--no-first-run",
                "--disable-dev-shm-usage", "--window-size=1400,1000",
                f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    driver.set_page_load_timeout(60)
    try:
        driver.get(f"{nb.url}/login/?next=/dcim/devices/{device['id']}/edit/")
        driver.find_element(By.NAME, "username").send_keys(nb.username)
        driver.find_element(By.NAME, "password").send_keys(nb.password)
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        field = driver.find_element(By.NAME, "local_context_data")
        context = {"dtnlab": {"metrics": {"temperature": {"normal": [16, 29]}}}}
        field.clear()
        field.send_keys(json.dumps(context))
        save = driver.find_element(By.CSS_SELECTOR, "button.btn-primary[type=submit]")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", save)
        save.click()
        nb.wait(lambda: f"/dcim/devices/{device['id']}/" in driver.current_url
                and "/edit" not in driver.current_url, 60, "NetBox to save the device")
    finally:
        driver.quit()
    twin = "aar-l3-c1-tt-01"
    nb.wait(lambda: (nb.api(f"/twins/{twin}") or {}).get("metrics", {}).get(
        "temperature", {}).get("normal") == [16.0, 29.0], FOLLOW_S, "the UI edit in the lab")
    assert regen_after(nb, base, lambda e: e["reconfigured"])["reconfigured"] == [twin]
    base.assert_untouched({twin})


def test_watch_polls_the_change_log_when_there_is_no_webhook(nb: NetBoxLab) -> None:
    done = nb.dtnlab("netbox", "hook", "uninstall", "--lab", nb.site)
    assert done.returncode == 0, done.stderr
    watch = ("watch", *nb.lab_args(), "--once")
    first = nb.dtnlab(*watch)  # in step, and the change log's position saved
    assert first.returncode == 0, first.stderr
    assert (nb.folder / "run" / "watch.json").exists()
    base = Baseline(nb)
    nb.patch("extras/config-contexts", nb.context_id("temperature-sensor"),
             {"data": nb.context_data("temperature-sensor", [13.0, 32.0])})
    done = nb.dtnlab(*watch)
    assert done.returncode == 0, done.stderr
    assert "relevant change(s) (extras.configcontext): regen" in done.stderr
    doc = regen_after(nb, base, lambda e: e["reconfigured"])
    assert doc["trigger"] == "watch"
    sensors = {t for t, v in base.twins.items() if v["role"] == "temperature-sensor"}
    reconfigured = set(doc["reconfigured"])
    # a sensor whose own local context sets the band (the web UI test's) keeps it
    assert MOVED in reconfigured
    assert reconfigured <= sensors
    nb.wait(lambda: (nb.api(f"/twins/{MOVED}") or {}).get("metrics", {}).get(
        "temperature", {}).get("normal") == [13.0, 32.0], FOLLOW_S, "the polled edit")
    again = nb.dtnlab(*watch)  # nothing new in the change log: no regen at all
    assert "relevant change" not in again.stderr
    base.assert_untouched(reconfigured)


def test_watch_keeps_the_lab_in_step_until_stopped(nb: NetBoxLab, tmp_path: Path) -> None:
    """`dtnlab watch` as a process: it polls, the lab follows an edit, SIGTERM stops it."""
    done = nb.dtnlab("netbox", "hook", "uninstall", "--lab", nb.site)  # no webhook does it
    assert done.returncode == 0, done.stderr
    base = Baseline(nb)
    out, err = tmp_path / "watch.out", tmp_path / "watch.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        watch = subprocess.Popen(
            [sys.executable, "-m", "dtnlab", "watch", *nb.lab_args(), "--interval", "0.5",
             "--debounce", "0.3"], cwd=REPO, stdout=stdout, stderr=stderr)
    try:
        nb.wait(lambda: "watching NetBox's change log" in err.read_text(), SETTLE_S,
                "the watch to start polling")
        nb.patch("extras/config-contexts", nb.context_id("temperature-sensor"),
                 {"data": nb.context_data("temperature-sensor", [12.0, 33.0])})
        nb.wait(lambda: (nb.api(f"/twins/{MOVED}") or {}).get("metrics", {}).get(
            "temperature", {}).get("normal") == [12.0, 33.0], FOLLOW_S, "the polled edit")
        doc = regen_after(nb, base, lambda e: e["reconfigured"])
        assert doc["trigger"] == "watch"
        assert MOVED in doc["reconfigured"]
        assert watch.poll() is None  # still watching
    finally:
        watch.send_signal(signal.SIGTERM)
        code = watch.wait(timeout=SETTLE_S)
    assert code == 0, err.read_text()
    assert "relevant change(s) (extras.configcontext): regen" in err.read_text()
    assert "watch stopped at change log entry" in err.read_text()
    base.assert_untouched(set(doc["reconfigured"]))
