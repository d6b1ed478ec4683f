"""GET /health, /metrics, /topology, /hierarchy, the dashboard's files and /docs."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from dtnlab.runtime.api import create_app
from dtnlab.runtime.engine.health import STATES
from dtnlab.runtime.engine.validator import REASONS
from tests.runtime.api.labrig import LabRig
from tests.waiting import wait_for

pytestmark = pytest.mark.mosquitto

Auth = Callable[[str], dict[str, str]]
SAMPLE = re.compile(r'^([a-z_]+)(?:\{((?:[^"}]|"[^"]*")*)\})? (-?[0-9.e+-]+|NaN)$')


def _samples(text: str) -> dict[tuple[str, str], float]:
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        match = SAMPLE.match(line)
        assert match, f"not Prometheus text: {line!r}"
        out[(match.group(1), match.group(2) or "")] = float(match.group(3))
    return out


def test_health_needs_no_token_and_sees_everything(client: TestClient) -> None:
    body = wait_for(lambda: (h := client.get("/health").json())["engine"]["running"] and h,
                    what="the engine's status file")
    assert body["status"] == "ok"
    assert body["broker"]["connected"]
    assert body["database"]["ok"]
    assert body["database"]["kind"] == "sqlite"
    assert body["engine"]["lag_s"] >= 0
    assert body["engine"]["status_age_s"] < 5
    assert body["twins"] == 58


def test_health_reports_a_missing_broker_and_engine(rig: LabRig) -> None:
    with TestClient(create_app(rig.lab_dir, rig.settings(engine_stale_s=0.0001),
                               connect=False)) as client:
        body = client.get("/health").json()
    assert body["status"] == "degraded"
    assert not body["broker"]["connected"]
    assert not body["engine"]["running"]


def test_metrics_in_prometheus_text(client: TestClient, auth: Auth) -> None:
    client.get("/twins/aar-l1-c1-vt-01", headers=auth("viewer"))
    res = client.get("/metrics", headers=auth("viewer"))
    assert res.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = _samples(res.text)
    assert samples[("dtn_engine_up", "")] == 1
    assert samples[("dtn_ingest_messages_total", 'result="received"')] > 0
    assert samples[("dtn_ingest_rate", 'result="valid"')] >= 0
    for reason in REASONS:
        assert ("dtn_validation_failures_total", f'reason="{reason}"') in samples
    states = {labels: v for (name, labels), v in samples.items() if name == "dtn_twins"}
    assert set(states) == {f'state="{s}"' for s in (*STATES, "unknown")}
    assert sum(states.values()) == 58
    assert ("dtn_engine_lag_seconds", "") in samples
    assert samples[("dtn_api_mqtt_connected", "")] == 1
    for family in ("dtn_ingest_messages_total", "dtn_twins"):
        assert f"# TYPE {family} " in res.text
        assert f"# HELP {family} " in res.text


def test_topology_has_every_node_and_link(client: TestClient, rig: LabRig, auth: Auth) -> None:
    topo = client.get("/topology", headers=auth("viewer")).json()
    raw = rig.lab.runtime.topology
    assert {n["id"] for n in topo["nodes"]} == {n["id"] for n in raw["nodes"]}
    assert len(topo["links"]) == len(raw["links"])
    twinned = [n for n in topo["nodes"] if n["twinned"]]
    assert len(twinned) == 58
    assert all(n["state"] for n in twinned)
    assert all(n["state"] is None for n in topo["nodes"] if not n["twinned"])
    assert any(link["impairment"] for link in topo["links"])


def test_hierarchy_levels(client: TestClient, rig: LabRig, auth: Auth) -> None:
    view = client.get("/hierarchy", headers=auth("viewer")).json()
    assert view["enterprise"] == "northwind"
    assert view["lab"] == "demo-plant"
    assert {lv["level"] for lv in view["levels"]} == {"site", "area", "line", "cell"}
    assert len(view["levels"]) == len(rig.lab.runtime.levels)


def test_dashboard_is_served_from_the_project(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assets = re.findall(r'(?:src|href)="(/dashboard/[^"]+)"', page.text)
    assert assets
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page.text)
    for asset in [*assets, "/dashboard/api.js", "/dashboard/chart.js", "/dashboard/tree.js",
                  "/dashboard/topology.js"]:
        res = client.get(asset)
        assert res.status_code == 200, asset
        assert "http://" not in res.text.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in res.text
def test_swagger_ui_is_served_from_the_project(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    # the dashboard's policy, not a looser one: no inline script, nothing from elsewhere
    assert page.headers["content-security-policy"] == client.get("/").headers[
        "content-security-policy"]
    references = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert "<script>" not in page.text
    assert all(ref.startswith("/") and not ref.startswith("//") for ref in references), references
    kinds = {"/docs/assets/swagger-ui-bundle.js": "javascript", "/docs/assets/swagger-ui.css":
             "text/css", "/docs/assets/favicon-32x32.png": "image/png",
             "/dashboard/docs.js": "javascript"}
    assert sorted(references) == sorted(kinds)
    for ref, kind in kinds.items():
        res = client.get(ref)
        assert res.status_code == 200, ref
        assert kind in res.headers["content-type"], ref
        assert "no-store" not in res.headers.get("cache-control", "")
    assert "SwaggerUIBundle" in client.get("/docs/assets/swagger-ui-bundle.js").text
    assert client.get("/redoc").status_code == 404  # it would load itself from a CDN


