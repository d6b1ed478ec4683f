"""The dashboard in headless Chromium on a running lab: login, live tree, fault, ack, command."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.broker import free_port
from tests.conftest import REPO
from tests.runtime.api.labrig import SENSOR, LabRig
from tests.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.mosquitto]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = REPO / "test-artifacts"
FAST_PERIOD_S = 0.25  # the faulted sensor samples this fast, so its alert is confirmed quickly


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabRig]:
    with LabRig(tmp_path_factory.mktemp("browser"), sensor_period_s=FAST_PERIOD_S) as rig:
        rig.base_url = rig.start_api(free_port())
        yield rig


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
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
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _class_of(driver: object, css: str) -> str:
    from selenium.common.exceptions import NoSuchElementException
    from selenium.webdriver.common.by import By

    try:
        return str(driver.find_element(By.CSS_SELECTOR, css).get_attribute("class"))  # type: ignore[attr-defined]
    except NoSuchElementException:
        return ""


def test_dashboard_end_to_end(rig: LabRig, browser: object) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    d = browser
    d.get(rig.base_url + "/")  # type: ignore[attr-defined]
    find = d.find_element  # type: ignore[attr-defined]
    passwords = rig.passwords()

    # log in as the operator
    find(By.ID, "username").send_keys("operator")
    find(By.ID, "password").send_keys(passwords["operator"])
    find(By.ID, "login-button").click()
    wait_for(lambda: find(By.ID, "live").text == "live", what="the live stream")

    # the tree shows every twin with its state colour
    sensor = f'#tree li[data-twin="{SENSOR}"] > .node'
    wait_for(lambda: "state-healthy" in _class_of(d, sensor), what="the sensor healthy in the tree")
    leaves = d.find_elements(By.CSS_SELECTOR, "#tree li[data-twin]")  # type: ignore[attr-defined]
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

    # a fault: the twin turns critical and its alert appears within 2 s
    started = time.monotonic()
    rig.fault(SENSOR, "spike", samples=6)
    alert_row = f'#alerts tr[data-twin="{SENSOR}"]'
    wait_for(lambda: "state-critical" in _class_of(d, sensor)
             and d.find_elements(By.CSS_SELECTOR, alert_row),  # type: ignore[attr-defined]
             timeout=2.0, what="the critical colour and the alert", interval=0.05)
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
    d.set_window_size(1500, 1500)  # type: ignore[attr-defined]
    time.sleep(0.3)
    d.save_screenshot(str(ARTIFACTS / "dashboard.png"))  # type: ignore[attr-defined]
    (ARTIFACTS / "dashboard.json").write_text(json.dumps(
        {"fault_to_ui_s": round(seen_after, 3), "alert": alert_id}, indent=1))


def test_viewer_sees_no_command_controls(rig: LabRig, browser: object) -> None:
    from selenium.webdriver.common.by import By

    d = browser
    d.get(rig.base_url + "/")  # type: ignore[attr-defined]
    find = d.find_element  # type: ignore[attr-defined]
    if find(By.ID, "logout").is_displayed():
        find(By.ID, "logout").click()
    find(By.ID, "username").send_keys("viewer")
    find(By.ID, "password").send_keys(rig.passwords()["viewer"])
    find(By.ID, "login-button").click()
    wait_for(lambda: find(By.ID, "live").text == "live", what="the live stream")
    assert not find(By.ID, "command-send").is_displayed()


def _text(driver: object, css: str) -> str:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        return str(driver.find_element(By.CSS_SELECTOR, css).text)  # type: ignore[attr-defined]
    except (NoSuchElementException, StaleElementReferenceException):
        return ""
