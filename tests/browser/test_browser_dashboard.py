"""The dashboard in headless Chromium on a running lab: login, live tree, fault, ack, command;
and /docs, whose Swagger UI works offline under the dashboard's CSP."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench.synthetic import synthetic_inventory
from dtnlab.cli import main as dtnlab
from tests.broker import free_port
from tests.conftest import REPO
from tests.runtime.api.labrig import SENSOR, LabRig
from tests.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.mosquitto]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = REPO / "test-artifacts"
FAST_PERIOD_S = 0.25  # the faulted sensor samples this fast, so its alert is confirmed quickly
FAULT_TO_UI_S = 2.0  # the acceptance: `dtnlab fault`, then colour and alert on screen within 2 s
TWINS_PAST_ONE_PAGE = 1010  # GET /twins gives at most 1,000 a page


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabRig]:
    with LabRig(tmp_path_factory.mktemp("browser"), sensor_period_s=FAST_PERIOD_S) as rig:
        rig.base_url = rig.start_api(free_port())
        yield rig


@pytest.fixture(scope="module")
def big_rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabRig]:
    """A lab with more twins than one page of GET /twins holds; no emulators, the API only."""
    root = tmp_path_factory.mktemp("big")
    inventory = root / "inventory.json"
    inventory.write_bytes(orjson.dumps(synthetic_inventory(TWINS_PAST_ONE_PAGE)))
    with LabRig(root, inventory=inventory, emulate=False) as rig:
        rig.base_url = rig.start_api(free_port())
        yield rig


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="dtn-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--no-first-run", "--disable-dev-shm-usage", "--window-size=1500,1100",
                f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console, for artifacts
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """The browser; after the test, passed or failed, its screenshot and console go to
    test-artifacts/<test>.png and <test>.console.json."""
    yield browser
    ARTIFACTS.mkdir(exist_ok=True)
    name = request.node.name
    browser.set_window_size(1500, 1500)
    time.sleep(0.3)  # let the page lay itself out at the new size
    browser.save_screenshot(str(ARTIFACTS / f"{name}.png"))
    (ARTIFACTS / f"{name}.console.json").write_text(
        json.dumps(browser.get_log("browser"), indent=1))
    browser.set_window_size(1500, 1100)


def _log_in(d: Any, rig: LabRig, user: str) -> None:
    """Open the rig's dashboard, log out whoever is in, log in as `user`, wait for the stream."""
    from selenium.webdriver.common.by import By

    d.get(rig.base_url + "/")
    find = d.find_element
    if find(By.ID, "logout").is_displayed():
        find(By.ID, "logout").click()
    find(By.ID, "username").send_keys(user)
    find(By.ID, "password").send_keys(rig.passwords()[user])
    find(By.ID, "login-button").click()
    wait_for(lambda: find(By.ID, "live").text == "live", what="the live stream")


def _class_of(driver: object, css: str) -> str:
    from selenium.common.exceptions import NoSuchElementException
    from selenium.webdriver.common.by import By

    try:
        return str(driver.find_element(By.CSS_SELECTOR, css).get_attribute("class"))  # type: ignore[attr-defined]
    except NoSuchElementException:
        return ""


def test_dashboard_end_to_end(rig: LabRig, page: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    d = page
    find = d.find_element
    _log_in(d, rig, "operator")

    # the tree shows every twin with its state colour
    sensor = f'#tree li[data-twin="{SENSOR}"] > .node'
    wait_for(lambda: "state-healthy" in _class_of(d, sensor), what="the sensor healthy in the tree")
    leaves = d.find_elements(By.CSS_SELECTOR, "#tree li[data-twin]")
    assert len(leaves) == len(rig.lab.twins)

    # live values move without a reload
    find(By.CSS_SELECTOR, sensor).click()
    value = f'#tile-{SENSOR} .value[data-metric="temperature"]'
    first = wait_for(lambda: _text(d, value), what="a live value")
    wait_for(lambda: _text(d, value) not in ("", first), timeout=5, what="the live value to move")
    points = int(wait_for(lambda: find(By.ID, "chart").get_attribute("data-points") or 0,
                          what="chart points"))
    wait_for(lambda: int(find(By.ID, "chart").get_attribute("data-points") or 0) > points,
             timeout=5, what="the chart to grow")

    # `dtnlab fault` by the device's NetBox name: the twin turns critical, its alert appears
    name = rig.lab.twins[SENSOR].name
    started = time.monotonic()
    assert dtnlab(["fault", name, "spike", "--samples", "6", "--lab", rig.lab_dir.name,
                   "--labs-dir", str(rig.lab_dir.parent)]) == 0
    alert_row = f'#alerts tr[data-twin="{SENSOR}"]'
    wait_for(lambda: "state-critical" in _class_of(d, sensor)
             and d.find_elements(By.CSS_SELECTOR, alert_row),
             timeout=max(0.0, FAULT_TO_UI_S - (time.monotonic() - started)),
             what=f"the critical colour and the alert within {FAULT_TO_UI_S}s of `dtnlab fault`",
             interval=0.05)
    seen_after = time.monotonic() - started
    assert "state-critical" in _class_of(d, f'#topology g[data-node="{SENSOR}"]')

    # ack it
    row = find(By.CSS_SELECTOR, alert_row)
    alert_id = row.get_attribute("data-alert")
    row.find_element(By.CSS_SELECTOR, "button.ack").click()
    wait_for(lambda: "acked by operator" in _text(d, f'#alerts tr[data-alert="{alert_id}"]'),
             what="the ack to show")

    # a command with its ack
    Select(find(By.ID, "command-select")).select_by_visible_text("ping")
    find(By.ID, "command-send").click()
    wait_for(lambda: find(By.ID, "command-result").get_attribute("data-result") == "acked",
             what="the command's ack")
    assert "pong" in find(By.ID, "command-result").text

    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "dashboard.json").write_text(json.dumps(
        {"fault_to_ui_s": round(seen_after, 3), "alert": alert_id}, indent=1))


def test_viewer_sees_no_command_controls(rig: LabRig, page: Any) -> None:
    from selenium.webdriver.common.by import By

    _log_in(page, rig, "viewer")
    assert not page.find_element(By.ID, "command-send").is_displayed()


def test_tree_holds_every_twin_of_a_lab_past_one_page(big_rig: LabRig, page: Any) -> None:
    from selenium.webdriver.common.by import By

    _log_in(page, big_rig, "viewer")
    wait_for(lambda: len(page.find_elements(By.CSS_SELECTOR, "#tree li[data-twin]")) == len(
        big_rig.lab.twins), what=f"all {len(big_rig.lab.twins)} twins in the tree")
    assert len(page.find_elements(By.CSS_SELECTOR, "#tiles .tile")) == len(big_rig.lab.twins)


def _text(driver: object, css: str) -> str:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        return str(driver.find_element(By.CSS_SELECTOR, css).text)  # type: ignore[attr-defined]
    except (NoSuchElementException, StaleElementReferenceException):
        return ""


def test_docs_work_offline_under_the_dashboards_policy(rig: LabRig, page: Any) -> None:
    from selenium.webdriver.common.by import By

    page.get_log("browser")  # drop what earlier pages logged
    page.get(rig.base_url + "/docs")
    wait_for(lambda: "dtnlab API" in _text(page, ".swagger-ui .info .title"),
             what="Swagger UI to show the lab's API")
    operations = wait_for(lambda: page.find_elements(By.CSS_SELECTOR, ".opblock"),
                          what="the API's operations")
    assert len(operations) >= 10
    # a blocked script, style or request (CSP, offline host) is a console error
    assert [e["message"] for e in page.get_log("browser") if e["level"] == "SEVERE"] == []
