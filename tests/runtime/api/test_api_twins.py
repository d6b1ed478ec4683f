"""GET /twins, /twins/{id} and /twins/{id}/history against the real engine and storage."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.runtime.api.labrig import LabRig, assert_error
from tests.waiting import wait_for

pytestmark = pytest.mark.mosquitto

TWIN = "aar-l1-c1-vt-01"
LINE_1 = "northwind/plant-aarhus/processing/line-1"


@pytest.fixture
def viewer(auth: Callable[[str], dict[str, str]]) -> dict[str, str]:
    return auth("viewer")


def test_list_is_paged_in_uns_order(client: TestClient, rig: LabRig,
                                    viewer: dict[str, str]) -> None:
    first = client.get("/twins?page_size=10", headers=viewer).json()
    assert first["total"] == len(rig.lab.twins)
    assert len(first["items"]) == 10
    everything = []
    for page in range(1, 10):
        items = client.get(f"/twins?page={page}&page_size=10", headers=viewer).json()["items"]
        everything += items
    paths = [t["uns_path"] for t in everything]
    assert paths == sorted(paths)
    assert len(paths) == len(rig.lab.twins)
    assert client.get("/twins?page=99", headers=viewer).json()["items"] == []


def test_filters_by_prefix_state_and_role(client: TestClient, rig: LabRig,
                                          viewer: dict[str, str]) -> None:
    line = client.get(f"/twins?prefix={LINE_1}", headers=viewer).json()
    assert line["total"] == len([t for t in rig.lab.twins.values()
                                 if t.uns_path.startswith(LINE_1 + "/")])
    # whole segments only: "line-1" does not match "line-10"
    assert client.get(f"/twins?prefix={LINE_1[:-1]}", headers=viewer).json()["total"] == 0
    sensors = client.get("/twins?role=temperature-sensor", headers=viewer).json()
    assert sensors["total"] > 0
    assert {t["role"] for t in sensors["items"]} == {
        "temperature-sensor"}
    wait_for(lambda: client.get(f"/twins/{TWIN}", headers=viewer).json()["state"] == "healthy",
             what="the twin healthy")
    healthy = client.get("/twins?state=healthy&page_size=1000", headers=viewer).json()
    assert TWIN in {t["id"] for t in healthy["items"]}
    assert all(t["state"] == "healthy" for t in healthy["items"])
    assert client.get("/twins?state=no-such-state", headers=viewer).json()["total"] == 0


def test_detail_has_state_values_quality_and_alerts(client: TestClient, rig: LabRig,
                                                    viewer: dict[str, str]) -> None:
    detail = wait_for(lambda: (d := client.get(f"/twins/{TWIN}", headers=viewer).json())[
        "values"] and d, what="live values")
    cfg = rig.lab.twins[TWIN]
    assert detail["uns_path"] == cfg.uns_path
    assert detail["role"] == "vibration-sensor"
    assert set(detail["values"]) == set(cfg.metrics)
    assert all(isinstance(v["value"], float | int) for v in detail["values"].values())
    assert {v["level"] for v in detail["values"].values()} <= {"normal", "warning", "critical"}
    assert 0.0 <= detail["quality"]["score"] <= 1.0
    assert detail["open_alerts"] == [] or all(a["device"] == TWIN for a in detail["open_alerts"])
    assert detail["topics"]["state"] == cfg.twin_state_topic
    assert detail["device_status"] == "online"


def test_unknown_twin_is_404(client: TestClient, viewer: dict[str, str]) -> None:
    for path in ("/twins/nope", "/twins/nope/history", "/twins/nope/commands"):
        method = "POST" if path.endswith("commands") else "GET"
        res = client.request(method, path, headers=viewer,
                             json={"command": "ping"} if method == "POST" else None)
        assert res.status_code in (403, 404)
    res = client.get("/twins/nope", headers=viewer)
    assert_error(res.json(), 404, "not_found")


def test_history_raw_and_bucketed_from_storage(client: TestClient, rig: LabRig,
                                               viewer: dict[str, str]) -> None:
    metric = next(iter(rig.lab.twins[TWIN].metrics))
    wait_for(lambda: len(client.get(f"/twins/{TWIN}/history?metric={metric}",
                                    headers=viewer).json()["points"]) >= 3,
             what="three stored samples")
    now = time.time()
    raw = client.get(f"/twins/{TWIN}/history", headers=viewer,
                     params={"metric": metric, "from": now - 600, "to": now}).json()
    assert raw["metric"] == metric
    assert raw["bucket"] is None
    assert not raw["truncated"]
    stamps = [p["ts"] for p in raw["points"]]
    assert stamps == sorted(stamps)
    assert all(now - 600 <= t < now for t in stamps)
    stored = rig.engine.store.history(TWIN, metric, now - 600, now)  # type: ignore[union-attr]
    assert [p["value"] for p in raw["points"]] == [r["value"] for r in stored]
    buckets = client.get(f"/twins/{TWIN}/history", headers=viewer,
                         params={"metric": metric, "from": now - 600, "to": now,
                                 "bucket": 60}).json()
    assert buckets["bucket"] == 60
    assert sum(p["count"] for p in buckets["points"]) == len(raw["points"])
    for p in buckets["points"]:
        assert p["ts"] % 60 == 0
        assert p["min"] <= p["value"] <= p["max"]
    limited = client.get(f"/twins/{TWIN}/history", headers=viewer,
                         params={"metric": metric, "limit": 2}).json()
    assert len(limited["points"]) == 2
    assert limited["truncated"]


@pytest.mark.parametrize(("params", "status"), [
    ({"metric": "no_such_metric"}, 404),
    ({"from": 200.0, "to": 100.0}, 422),
    ({"bucket": 0}, 422),
    ({"bucket": -5}, 422),
    ({"from": "yesterday"}, 422),
    ({"limit": 0}, 422),
], ids=["unknown-metric", "from-after-to", "zero-bucket", "negative-bucket", "text-from",
        "zero-limit"])
def test_history_rejects_bad_queries(client: TestClient, viewer: dict[str, str],
                                     params: dict[str, object], status: int) -> None:
    res = client.get(f"/twins/{TWIN}/history", headers=viewer, params=params)
    assert res.status_code == status
    assert_error(res.json(), status)
