"""The health state machine, hysteresis, alerts, anomalies and quality, without a broker."""

from __future__ import annotations

from typing import Any

import pytest

from dtnlab.runtime.engine.alerts import Alert, AlertBook
from dtnlab.runtime.engine.anomaly import AnomalyConfig, FlatLine, RobustDetector
from dtnlab.runtime.engine.health import Band, Hysteresis
from dtnlab.runtime.engine.quality import Quality
from dtnlab.runtime.engine.twin import Twin
from dtnlab.runtime.labfiles import MetricSpec, TwinConfig

TEMP = MetricSpec(type="float", min=-50, max=150, normal=(15, 30), warning=(10, 35))


def make_twin(**overrides: Any) -> tuple[Twin, list[tuple[str, str, str]], list[tuple[str, str]]]:
    metrics = {"temperature": TEMP, "running": MetricSpec(type="bool"),
               "count": MetricSpec(type="int", min=0, max=10**6)}
    cfg = TwinConfig.model_validate({
        "id": "dev-1", "uns_path": "ent/site/area/line/cell/dev-1",
        "hierarchy": {"site": "site", "area": "area", "line": "line", "cell": "cell"},
        "topics": {k: f"ent/site/area/line/cell/dev-1/{k}"
                   for k in ("telemetry", "command", "status", "alert")},
        "twin_state_topic": "ent/_twin/dev-1/state", "mqtt_user": "dev-1", "period_s": 1.0,
        "heartbeat_s": 3.0, "metrics": {k: m.model_dump() for k, m in metrics.items()},
        "schema": {"type": "object", "properties": {"ts": {"type": "number"}}}, **overrides})
    moves: list[tuple[str, str, str]] = []
    events: list[tuple[str, str]] = []

    def on_alert(alert: Alert, event: str) -> None:
        events.append((f"{alert.kind}:{alert.metric}:{alert.severity}", event))

    twin = Twin(cfg, Hysteresis(), AnomalyConfig(warmup=10, window=30, refresh=2),
                AlertBook(on_alert), lambda t, old, new, why, now: moves.append((old, new, why)))
    return twin, moves, events


def feed(twin: Twin, temps: list[float], start: float = 1000.0) -> float:
    now = start
    for t in temps:
        now += 1.0
        twin.on_telemetry({"ts": now, "values": {"temperature": t, "running": True,
                                                 "count": 7}}, now)
    return now


def states(moves: list[tuple[str, str, str]]) -> list[str]:
    return [new for _, new, _ in moves]


def test_band_levels_and_hysteresis() -> None:
    band = Band("t", TEMP, Hysteresis(deadband=0.05, confirm_up=2, confirm_down=3))
    assert [band.raw_level(x) for x in (20, 30, 30.1, 35, 35.1, 9.9)] == [0, 0, 1, 1, 2, 2]
    assert not band.update(31)  # one sample beyond is not enough
    assert band.update(31)
    assert band.level == 1
    for x in (29.9, 29.5, 29.3, 29.9, 29.5, 29.3):  # inside normal, but not by the deadband
        assert not band.update(x)
    assert band.level == 1
    assert not band.update(29.0)  # 30 - 5% of 15 = 29.25
    assert not band.update(29.0)
    assert band.update(29.0)
    assert band.level == 0


def test_edge_on_plausible_minimum_is_not_shrunk() -> None:
    cpu = MetricSpec(min=0, max=100, normal=(0, 70), warning=(0, 90))
    band = Band("cpu", cpu, Hysteresis(confirm_up=1, confirm_down=1))
    assert band.update(80)
    assert band.update(0.0)  # 0 is the band's edge and the metric's minimum: still normal
    assert band.level == 0


def test_lifecycle_from_birth_to_critical_and_back() -> None:
    twin, moves, events = make_twin()
    twin.on_status(True, 1000.0)
    assert twin.state == "initializing"
    now = feed(twin, [20, 20, 32, 32, 37, 37, 20, 20, 20])
    assert states(moves) == ["initializing", "healthy", "degraded", "critical", "healthy"]
    assert events == [("threshold:temperature:warning", "raised"),
                      ("threshold:temperature:critical", "escalated"),
                      ("threshold:temperature:critical", "resolved")]
    twin.check_heartbeat(now + 2.0)
    assert twin.state == "healthy"
    twin.check_heartbeat(now + 3.5)
    assert twin.state == "offline"
    assert "heartbeat" in moves[-1][2]
    assert events[-1] == ("offline::warning", "raised")
    twin.on_status(True, now + 4)
    assert twin.state == "initializing"  # until fresh valid data
    assert events[-1] == ("offline::warning", "resolved")
    now = feed(twin, [20], start=now + 4)
    twin.check_heartbeat(now + 3.5)  # silent but still connected: no birth when it speaks
    assert events[-1] == ("offline::warning", "raised")
    now = feed(twin, [20], start=now + 4)
    assert twin.state == "healthy"
    assert events[-1] == ("offline::warning", "resolved")
    twin.on_status(False, now + 1)
    assert twin.state == "offline"
    assert "last will" in moves[-1][2]


def test_repeated_invalid_data_is_error_until_valid_again() -> None:
    twin, moves, events = make_twin()
    feed(twin, [20])
    for i in range(3):
        twin.on_invalid({"ts": 2000.0 + i, "values": {}}, "missing_field", 2000.0 + i)
    assert twin.state == "error"
    assert events[-1] == ("invalid_data::major", "raised")
    feed(twin, [20], start=2010)
    assert twin.state == "error"  # one valid message is not enough
    feed(twin, [20], start=2011)
    assert twin.state == "healthy"
    assert events[-1] == ("invalid_data::major", "resolved")
    assert states(moves) == ["healthy", "error", "healthy"]


def test_maintenance_holds_state_and_mutes_alerts() -> None:
    twin, moves, events = make_twin()
    feed(twin, [20])
    twin.set_maintenance(True, "alice", 1500.0)
    now = feed(twin, [40, 40, 40], start=1500)
    twin.check_heartbeat(now + 10)
    assert twin.state == "maintenance"
    assert not events
    twin.set_maintenance(False, "alice", now + 11)
    assert twin.state == "offline"  # it went quiet during maintenance


@pytest.mark.parametrize("noise", [0.0, 0.2], ids=["flat", "noisy"])
def test_anomaly_after_warmup_raised_once_and_cleared(noise: float) -> None:
    det = RobustDetector("t", TEMP, AnomalyConfig(window=40, warmup=20, refresh=5,
                                                  threshold=6.0, clear_after=3))
    changes = [det.update(100.0)]  # a wild first value is warm-up, not an anomaly
    changes += [det.update(20.0 + noise * ((i * 7) % 5 - 2)) for i in range(40)]
    assert not any(changes)
    assert [det.update(x) for x in (60.0, 61.0)] == [1, 0]  # raised once
    assert [det.update(20.0) for _ in range(3)] == [0, 0, -1]  # cleared after 3 ordinary


def test_anomaly_alert_through_the_twin() -> None:
    twin, _, events = make_twin()
    feed(twin, [20.0 + 0.1 * (i % 3) for i in range(30)] + [29.9])
    assert ("anomaly:temperature:warning", "raised") in events


def test_flat_line_needs_its_count_of_exact_repeats_and_ends_when_the_value_moves() -> None:
    flat = FlatLine("t", 4)
    assert [flat.update(x) for x in (20.0, 20.0, 20.0, 20.5, 20.5, 20.5)] == [0] * 6
    assert [flat.update(20.5), flat.update(20.5), flat.update(20.501)] == [1, 0, -1]
    assert not flat.active


def test_a_stuck_float_makes_the_twin_degraded_until_it_moves() -> None:
    twin, moves, events = make_twin(stuck_after=5)
    # the bool and the int repeat all along (the int never changes): only the float is judged
    now = feed(twin, [20.0, 20.1, 20.0, 20.1])
    assert twin.state == "healthy"
    now = feed(twin, [21.0] * 4, start=now)
    assert twin.state == "healthy"  # four identical readings: not yet
    now = feed(twin, [21.0], start=now)
    assert twin.state == "degraded"
    assert "stuck" in moves[-1][2]
    assert events == [("stuck:temperature:warning", "raised")]
    assert twin.snapshot()["open_alerts"] == 1
    feed(twin, [21.2], start=now)
    assert twin.state == "healthy"
    assert events[-1] == ("stuck:temperature:warning", "resolved")
    assert states(moves) == ["healthy", "degraded", "healthy"]


def test_a_stuck_value_beyond_warning_stays_critical_and_zero_turns_the_check_off() -> None:
    twin, moves, events = make_twin(stuck_after=3)
    feed(twin, [40.0] * 4)
    assert twin.state == "critical"  # the band's level wins over the stuck degradation
    assert {e for e, _ in events} == {"threshold:temperature:critical", "stuck:temperature:warning"}
    quiet, _, quiet_events = make_twin(stuck_after=0)
    feed(quiet, [21.0] * 50)
    assert quiet.state == "healthy"
    assert quiet_events == []


def test_quality_components() -> None:
    q = Quality(period_s=1.0, heartbeat_s=5.0)
    for i in range(50):  # on time, at the expected rate, all valid
        q.on_message(100.0 + i + 0.1, 100.0 + i, True, 1.0)
    assert q.score > 0.99
    for i in range(50):  # late by 5 s, twice too fast, half invalid
        q.on_message(200.0 + i * 0.5 + 5, 200.0 + i * 0.5, i % 2 == 0, 1.0 if i % 2 else 0.5)
    assert q.timeliness < 0.1
    assert 0.4 < q.rate < 0.6
    assert 0.3 < q.validity < 0.7
    assert q.score < 0.6
