"""Malformed and hostile messages are counted and never stop ingest; a broker restart loses none."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dtnlab.runtime.engine import Engine
from dtnlab.runtime.labfiles import LabFiles
from dtnlab.runtime.storage import SqliteStore
from tests.runtime.engine.twinlab import SENSOR, Device, engine_config
from tests.waiting import wait_for

GOOD = orjson.dumps({"ts": 1.0, "seq": 1, "values": {"temperature": 20.0}})

hostile_payloads = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(str.encode),
    st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n),  # deep nesting
    st.integers(0, 2).map(lambda k: [b"1e400", b"-0", b"NaN"][k]),
    st.sampled_from([b"", b"null", b"{}", b"[]", b'{"ts": null}', b"\xff\xfe",
                     b'{"ts": 1, "values": {"temperature": 1e308}}',
                     b'{"ts": 1, "values": {"temperature": 20, "x": 1}}',
                     b'{"ts": 1, "values": {"temperature": "20"}}',
                     b'{"ts": 1, "values": {"temperature": 20}, "seq": -1}',
                     b'{"ts": 1, "values": {"temperature": 20}}' * 2]),
    st.dictionaries(st.text(max_size=8), st.one_of(st.none(), st.floats(), st.text(max_size=8),
                                                   st.integers(-2**60, 2**60)), max_size=5).map(
        lambda d: orjson.dumps(d, option=orjson.OPT_NON_STR_KEYS) if all(
            not isinstance(v, float) or v == v for v in d.values()) else b"{}"),
)


@pytest.fixture
def idle_engine(lab: LabFiles, tmp_path: Path) -> Engine:
    """An engine that is not connected: batches go straight into its hot path."""
    return Engine(lab, engine_config(), store=SqliteStore(tmp_path / "fuzz.sqlite3"))


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(st.tuples(st.sampled_from(["telemetry", "status", "control", "unknown"]),
                                hostile_payloads), max_size=8))
def test_hot_path_survives_anything(idle_engine: Engine, batch: list[tuple[str, bytes]]) -> None:
    engine = idle_engine
    twin = engine.twins[SENSOR]
    topics = {"telemetry": twin.cfg.topics.telemetry, "status": twin.cfg.topics.status,
              "control": f"{engine.lab.runtime.enterprise}/_twin/{SENSOR}/control",
              "unknown": twin.cfg.topics.telemetry.replace(SENSOR, "intruder-01")}
    before = twin.messages
    valid = engine.valid
    engine._process([(topics[kind], payload) for kind, payload in batch])
    engine._process([(topics["telemetry"], GOOD)])
    assert engine.valid >= valid + 1
    assert twin.messages > before
    assert twin.values == {"temperature": 20.0}


def test_reasons_counted(idle_engine: Engine) -> None:
    engine = idle_engine
    topic = engine.twins[SENSOR].cfg.topics.telemetry
    engine._process([
        (topic, b"{nope"), (topic, b"[1]"), (topic, b'{"values": {"temperature": 1}}'),
        (topic, b'{"ts": 1, "values": {"temperature": "hot"}}'),
        (topic, b'{"ts": 1, "values": {"temperature": 500}}'),
        (topic, b'{"ts": 1, "values": {"temperature": 5, "x": 1}}'),
        (topic, b" " * (64 * 1024 + 1)), (topic.replace(SENSOR, "nobody-01"), GOOD),
        (topic, GOOD)])
    assert {k: n for k, n in engine.failures.items() if n} == {
        "bad_json": 1, "not_object": 1, "missing_field": 1, "wrong_type": 1, "out_of_range": 1,
        "unknown_field": 1, "oversized": 1, "unknown_device": 1}
    assert engine.valid == 1
    assert engine.twins[SENSOR].state == "error"  # repeated invalid data, before the good one


@pytest.mark.mosquitto
@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payloads=st.lists(hostile_payloads, min_size=1, max_size=10))
def test_ingest_goes_on_through_the_broker(make_engine, make_device, payloads: list[bytes]) -> None:
    engine = _shared(make_engine, make_device)
    device = _shared.device  # type: ignore[attr-defined]
    for payload in payloads:
        device.raw(payload)
    device.raw(b"x" * (100 * 1024))  # over 64 KiB, under the broker's packet limit
    seq = device.send({"temperature": 21.0})
    wait_for(lambda: engine.twin(SENSOR)["seq"] == seq, what=f"seq {seq} after hostile input")
    assert engine.failures["oversized"] >= 1
    assert engine._thread is not None
    assert engine._thread.is_alive()


def _shared(make_engine, make_device) -> Engine:  # type: ignore[no-untyped-def]
    """The engine and device of the current test, made on the first hypothesis example."""
    key = id(make_engine)
    if getattr(_shared, "key", None) != key:
        _shared.key = key  # type: ignore[attr-defined]
        _shared.engine = make_engine()  # type: ignore[attr-defined]
        _shared.device = make_device()  # type: ignore[attr-defined]
    return _shared.engine  # type: ignore[attr-defined,no-any-return]


@pytest.mark.mosquitto
def test_broker_restart_loses_no_qos1_message(make_engine, lab: LabFiles, broker) -> None:
    engine = make_engine(client_id="dtn-engine-restart-test")
    device = Device(lab, SENSOR, client_id="restart-test-device", persistent=True)
    total = 600
    sent: list[int] = []

    def publish() -> None:
        for seq in range(1, total + 1):
            msg = {"ts": time.time(), "seq": seq, "values": {"temperature": 15 + seq / 1000}}
            device.client.publish(device.twin.topics.telemetry, orjson.dumps(msg), 1)
            sent.append(seq)
            time.sleep(0.004)

    publisher = threading.Thread(target=publish)
    publisher.start()
    wait_for(lambda: len(sent) > total // 3, what="a third published")
    broker.restart(down_s=0.5)
    publisher.join(30)
    try:
        wait_for(lambda: engine.valid >= total, timeout=15.0,
                 what=f"all {total} messages (have {engine.valid})")
        assert engine.writer.flush(5.0)
        values = {round((r["value"] - 15) * 1000)
                  for r in engine.store.history(SENSOR, "temperature", limit=10 * total)}
        assert values == set(range(1, total + 1))
        assert engine.client.connects >= 2
    finally:
        device.close()
