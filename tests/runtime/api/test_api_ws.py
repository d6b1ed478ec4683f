"""WS /ws: snapshot, live state/telemetry/alerts, prefix filters, and newest-wins backpressure."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession

from dtnlab.runtime.api.hub import Subscriber
from tests.runtime.api.labrig import WS_SPIKED, LabRig

Auth = Callable[[str], dict[str, str]]
LINE_2 = "northwind/plant-aarhus/processing/line-2"


def _receive(ws: WebSocketTestSession, timeout: float = 10.0) -> dict[str, Any]:
    """The next message, or a failure after `timeout` s: a silent stream must not hang the run.

    The session's receive cannot be cancelled, so it runs on a daemon thread; a receive left
    waiting ends when the session closes.
    """
    outcome: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=1)

    def receive() -> None:
        try:
            outcome.put((True, ws.receive_json()))
        except BaseException as exc:  # handed to the test's thread, raised there
            outcome.put((False, exc))

    threading.Thread(target=receive, name="ws-receive", daemon=True).start()
    try:
        ok, value = outcome.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no WebSocket message within {timeout:.1f}s") from None
    if not ok:
        raise value
    message: dict[str, Any] = value
    return message


def _collect(ws: WebSocketTestSession, until: Callable[[list[dict[str, Any]]], bool],
             timeout: float = 10.0) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not until(seen):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"gave up after {len(seen)} messages"
        seen.append(_receive(ws, remaining))
    return seen


@pytest.mark.mosquitto
def test_stream_with_prefix_filter(client: TestClient, tokens: dict[str, str],
                                   rig: LabRig) -> None:
    under_line = {t.id for t in rig.lab.twins.values() if t.uns_path.startswith(LINE_2 + "/")}
    with client.websocket_connect(f"/ws?prefix={LINE_2}",
                                  subprotocols=["dtnlab.v1", f"bearer.{tokens['viewer']}"]
                                  ) as ws:
        assert ws.accepted_subprotocol == "dtnlab.v1"
        hello = _receive(ws)
        assert hello["type"] == "hello"
        assert hello["role"] == "viewer"
        assert hello["prefixes"] == [LINE_2]
        seen = _collect(ws, lambda s: {m["twin"] for m in s if m["type"] == "state"} >= under_line
                        and sum(m["type"] == "telemetry" for m in s) > len(under_line))
    assert {m["twin"] for m in seen} <= under_line
    assert all(m["uns_path"].startswith(LINE_2 + "/") for m in seen)


@pytest.mark.mosquitto
def test_token_in_query_and_resubscribe(client: TestClient, tokens: dict[str, str]) -> None:
    with client.websocket_connect(f"/ws?token={tokens['viewer']}&kinds=state") as ws:
        assert _receive(ws)["type"] == "hello"
        ws.send_json({"type": "subscribe", "prefixes": ["northwind/plant-brno"],
                      "kinds": ["telemetry"]})
        seen = _collect(ws, lambda s: sum(m["type"] == "telemetry" for m in s) >= 5)
        after = seen[[m["type"] for m in seen].index("subscribed") + 1:]
        assert after
        assert all(m["type"] == "telemetry" and "plant-brno" in m["uns_path"]
                             for m in after)
        ws.send_json({"type": "subscribe", "prefixes": "not-a-list"})
        _collect(ws, lambda s: any(m["type"] == "error" for m in s))
        ws.send_text("not json")
        _collect(ws, lambda s: any(m["type"] == "error" for m in s))
        ws.send_json({"type": "ping"})
        _collect(ws, lambda s: any(m["type"] == "pong" for m in s))


@pytest.mark.mosquitto
def test_fault_reaches_the_stream(client: TestClient, tokens: dict[str, str],
                                  rig: LabRig) -> None:
    path = rig.lab.twins[WS_SPIKED].uns_path
    with client.websocket_connect(f"/ws?prefix={path}&kinds=state,alert",
                                  subprotocols=["dtnlab.v1", f"bearer.{tokens['viewer']}"]
                                  ) as ws:
        _receive(ws)
        start = time.monotonic()
        rig.fault(WS_SPIKED, "spike", samples=6)
        seen = _collect(ws, lambda s: any(m["type"] == "alert" and m.get("event") == "raised"
                                          for m in s)
                        and any(m["type"] == "state" and m["state"] == "critical" for m in s))
        elapsed = time.monotonic() - start
    alert = next(m for m in seen if m["type"] == "alert")
    assert alert["twin"] == WS_SPIKED
    assert alert["severity"] in ("warning", "critical")
    assert elapsed < 2.0


# -- backpressure, without a lab ---------------------------------------------------------

def test_slow_client_keeps_only_the_newest_per_twin() -> None:
    async def scenario() -> None:
        sub = Subscriber(max_pending=100)
        for seq in range(1000):
            for twin in ("a", "b", "c"):
                sub.offer("telemetry", twin, {"type": "telemetry", "twin": twin, "seq": seq})
        sub.offer("state", "a", {"type": "state", "twin": "a", "state": "critical"})
        waiting = sub.take()
        assert [(m["type"], m["twin"], m.get("seq")) for m in waiting] == [
            ("telemetry", "a", 999), ("telemetry", "b", 999), ("telemetry", "c", 999),
            ("state", "a", None)]
        assert sub.dropped == 3 * 999
        assert not sub.wake.is_set()

    asyncio.run(scenario())


def test_pending_is_bounded_and_alerts_are_not_coalesced() -> None:
    async def scenario() -> None:
        sub = Subscriber(max_pending=10)
        for i in range(50):
            sub.offer("telemetry", f"twin-{i}", {"i": i})
        assert len(sub.pending) == 10
        assert sub.dropped == 40
        assert [m["i"] for m in sub.take()] == list(range(40, 50))
        sub.offer("alert", "a1/raised", {"id": "a1"})
        sub.offer("alert", "a1/acked", {"id": "a1"})
        assert len(sub.take()) == 2

    asyncio.run(scenario())


def test_filters_match_whole_segments() -> None:
    async def scenario() -> None:
        sub = Subscriber(prefixes=["ent/site-1/"], kinds=["state"])
        assert sub.wants("state", "ent/site-1/area/x")
        assert not sub.wants("state", "ent/site-10/area/x")
        assert not sub.wants("telemetry", "ent/site-1/area/x")
        everything = Subscriber()
        assert everything.wants("alert", "anything/at/all")

    asyncio.run(scenario())


@pytest.mark.mosquitto
def test_telemetry_is_heard_only_while_a_live_view_wants_it(client: TestClient,
                                                            tokens: dict[str, str]) -> None:
    state = client.app.state.api
    hub, feed = state.hub, state.feed
    hub.linger_s = 0.3
    try:
        deadline = time.monotonic() + 5
        while feed.telemetry_live and time.monotonic() < deadline:  # earlier tests' views
            time.sleep(0.05)
        assert not feed.telemetry_live
        with client.websocket_connect(f"/ws?token={tokens['viewer']}&kinds=state") as ws:
            assert _receive(ws)["type"] == "hello"
            assert not feed.telemetry_live  # states only: no telemetry connection
            ws.send_json({"type": "subscribe", "prefixes": [LINE_2], "kinds": ["telemetry"]})
            seen = _collect(ws, lambda s: sum(m["type"] == "telemetry" for m in s) >= 3)
            assert feed.telemetry_live
            assert all(m["uns_path"].startswith(LINE_2) for m in seen
                       if m["type"] == "telemetry")
        deadline = time.monotonic() + 5
        while feed.telemetry_live and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not feed.telemetry_live
    finally:
        hub.linger_s = 30.0
