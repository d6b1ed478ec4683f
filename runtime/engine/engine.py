"""The twin engine: MQTT in, validated twin state, alerts and aggregates out, storage behind."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..labfiles import LabFiles
from ..mqtt_client import MqttClient
from ..reconcile import ReconcilePlan, lab_digest
from ..storage import Batch, StorageWriter, Store, open_store
from . import reload as lab_reload
from . import validator as v
from .aggregates import aggregate
from .alerts import Alert, AlertBook
from .anomaly import AnomalyConfig
from .commands import Commands
from .health import STATES, Hysteresis
from .status import StatusFile
from .twin import Twin

log = logging.getLogger(__name__)

TELEMETRY, STATUS, CONTROL = 0, 1, 2
TWIN_LEVEL = "_twin"


@dataclass(frozen=True)
class EngineConfig:
    """Tunables of the engine; the defaults suit a lab."""

    client_id: str | None = None  # stable per lab, so the broker keeps the session
    qos: int = 1
    tls: bool = False
    max_payload: int = 64 * 1024
    max_batch: int = 5000
    max_backlog: int = 100_000  # messages received but not processed before reading pauses
    idle_sleep_s: float = 0.001
    tick_s: float = 0.25
    aggregate_period_s: float = 5.0
    status_period_s: float = 1.0
    log_every_s: float = 10.0
    hysteresis: Hysteresis = field(default_factory=Hysteresis)
    anomaly: AnomalyConfig = field(default_factory=AnomalyConfig)


class Engine:
    """Twin state of every device of a lab, kept from the broker's messages.

    Thread model: paho's network thread only queues (topic, payload); one engine thread does
    all the work in batches; the storage writer thread writes. Public methods may be called
    from any thread.
    """

    def __init__(self, lab: LabFiles, config: EngineConfig | None = None, *,
                 store: Store | None = None, client: MqttClient | None = None) -> None:
        self.lab = lab
        self.config = cfg = config or EngineConfig()
        self.book = AlertBook(self._on_alert)
        self.twins: dict[str, Twin] = {
            tid: Twin(tc, cfg.hysteresis, cfg.anomaly, self.book, self._on_transition)
            for tid, tc in lab.twins.items()}
        ent = lab.runtime.enterprise
        self._routes: dict[str, tuple[Twin, int]] = {}
        for twin in self.twins.values():
            self._routes[twin.cfg.topics.telemetry] = (twin, TELEMETRY)
            self._routes[twin.cfg.topics.status] = (twin, STATUS)
            self._routes[f"{ent}/{TWIN_LEVEL}/{twin.id}/control"] = (twin, CONTROL)
        self.subscriptions = {f"{ent}/+/+/+/+/+/telemetry": cfg.qos,
                              f"{ent}/+/+/+/+/+/status": cfg.qos,
                              f"{ent}/{TWIN_LEVEL}/+/control": 1}
        self.store = store or open_store(lab.run_dir)
        self.writer = StorageWriter(self.store, lab.run_dir / "spill")
        self.client = client or MqttClient.for_lab(
            lab, lab.runtime.runtime_user, cfg.client_id or f"dtn-engine-{lab.runtime.lab}",
            tls=cfg.tls)
        inbox: deque[tuple[str, bytes]] = deque()
        self._inbox = inbox
        self.client.raw_sink = inbox.append
        self.client.throttle(inbox.__len__, cfg.max_backlog)
        self.commands = Commands(self._publish,
                                 {t.id: t.cfg.topics.command for t in self.twins.values()})
        self._control: deque[tuple[Callable[[float], Any], Future[Any]]] = deque()
        self._out = Batch()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.received = self.valid = 0
        self.failures: dict[str, int] = dict.fromkeys(v.REASONS, 0)
        self._logged: dict[str, tuple[float, int]] = {}
        self.lag_s = 0.0
        self.latency_sink: list[float] | None = None  # publish -> state, for benchmarks
        self._aggregates: dict[str, dict[str, Any]] = {}
        self.status_file = StatusFile(lab.run_dir / "engine" / "status.json")
        self.started_at = time.time()
        # reloads prepared off the engine thread, applied by it between two batches
        self._reloads: deque[tuple[LabFiles, ReconcilePlan, str | None]] = deque()
        self.reloads = 0
        self.lab_sha256 = lab_digest(lab.root)

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, wait_s: float | None = 10.0) -> None:
        """Start the writer, the engine thread and the MQTT connection."""
        (self.lab.run_dir / "engine").mkdir(parents=True, exist_ok=True)
        self.writer.start()
        self._thread = threading.Thread(target=self._run, name="twin-engine", daemon=True)
        self._thread.start()
        self.client.subscribe(self.subscriptions)
        now = time.time()
        for twin in self.twins.values():  # replace whatever a previous run left retained
            self._publish(twin.cfg.twin_state_topic, orjson.dumps(
                {"id": twin.id, "state": twin.state, "previous": None, "since": now,
                 "reason": "engine started", "maintenance": None,
                 "quality": twin.quality.as_dict()}), 1, True)
        self.client.start(wait_s)
        log.info("engine: %d twins of lab %s, storage %s", len(self.twins),
                 self.lab.runtime.lab, self.store.kind)

    def stop(self) -> None:
        """Disconnect, process what was received, write everything, then stop."""
        self.client.stop()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10.0)
        self.writer.stop()
        self.store.close_readers()
        self._write_status(time.time())

    def run_forever(self) -> None:
        self.start()
        try:
            while not self._stop.wait(1.0):
                pass
        finally:
            self.stop()

    def request_stop(self) -> None:
        self._stop.set()

    # -- engine thread ------------------------------------------------------------------------

    def _run(self) -> None:
        inbox, popleft = self._inbox, self._inbox.popleft
        cfg = self.config
        next_tick = next_agg = next_status = time.monotonic()
        while True:
            n = len(inbox)
            if n:
                self._process([popleft() for _ in range(min(n, cfg.max_batch))])
            elif self._stop.is_set():
                break
            else:
                time.sleep(cfg.idle_sleep_s)
            mono = time.monotonic()
            if mono >= next_tick or self._control or self._reloads:
                now = time.time()
                self._tick(now)
                next_tick = mono + cfg.tick_s
                if mono >= next_agg:
                    self._publish_aggregates(now)
                    next_agg = mono + cfg.aggregate_period_s
                if mono >= next_status:
                    self._write_status(now)
                    next_status = mono + cfg.status_period_s
        self._flush_out()

    def _process(self, batch: list[tuple[str, bytes]]) -> None:
        now = time.time()
        routes = self._routes
        loads = orjson.loads
        decode_error = orjson.JSONDecodeError
        max_payload = self.config.max_payload
        telemetry: list[tuple[float, str, dict[str, Any]]] = []
        add = telemetry.append
        for topic, payload in batch:
            route = routes.get(topic)
            if route is None:
                self._reject(v.UNKNOWN_DEVICE, topic, now)
                continue
            twin, kind = route
            if len(payload) > max_payload:
                self._reject(v.OVERSIZED, topic, now, twin)
                continue
            try:
                msg = loads(payload)
            except decode_error:
                self._reject(v.BAD_JSON, topic, now, twin)
                continue
            if kind == TELEMETRY:
                reason = twin.validate(msg)
                if reason is None:
                    twin.on_telemetry(msg, now)
                    add((msg["ts"], twin.id, msg["values"]))
                else:
                    twin.on_invalid(msg, reason, now)
                    self._reject(reason, topic, now)
            elif kind == STATUS:
                self._on_status(twin, msg, topic, now)
            else:
                self._on_control(twin, msg, topic, now)
        self.received += len(batch)
        if telemetry:
            self.valid += len(telemetry)
            self.lag_s = now - telemetry[-1][0]
            self._out.telemetry = telemetry
            sink = self.latency_sink
            if sink is not None:
                done = time.time()
                sink.extend(done - m[0] for m in telemetry)
        self._flush_out()

    def _flush_out(self) -> None:
        if len(self._out):
            self.writer.put(self._out)
            self._out = Batch()

    def _on_status(self, twin: Twin, msg: Any, topic: str, now: float) -> None:
        if type(msg) is not dict:
            self._reject(v.NOT_OBJECT, topic, now)
        elif "ack" in msg:
            self.commands.on_ack(twin.id, msg)
            twin.last_seen = now
        elif msg.get("state") in ("online", "offline"):
            twin.on_status(msg["state"] == "online", now)
        else:
            self._reject(v.MISSING_FIELD, topic, now)

    def _on_control(self, twin: Twin, msg: Any, topic: str, now: float) -> None:
        if type(msg) is dict and type(msg.get("maintenance")) is bool:
            twin.set_maintenance(msg["maintenance"], str(msg.get("by", "mqtt")), now)
        else:
            self._reject(v.MISSING_FIELD, topic, now)

    def _reject(self, reason: str, topic: str, now: float, twin: Twin | None = None) -> None:
        self.failures[reason] += 1
        if twin is not None:
            twin.on_invalid(None, reason, now)
        last, suppressed = self._logged.get(reason, (0.0, 0))
        if now - last >= self.config.log_every_s:
            log.warning("rejected a message on %s: %s%s", topic[:200], reason,
                        f" ({suppressed} more since the last report)" if suppressed else "")
            self._logged[reason] = (now, 0)
        else:
            self._logged[reason] = (last, suppressed + 1)

    def _tick(self, now: float) -> None:
        while self._reloads:
            lab, plan, digest = self._reloads.popleft()
            lab_reload.apply(self, lab, plan, now)
            self.lab_sha256, self.reloads = digest, self.reloads + 1
            self._write_status(now)  # now, not within a second: regen waits for it
        while self._control:
            func, future = self._control.popleft()
            try:
                future.set_result(func(now))
            except Exception as exc:  # the caller gets it; the engine goes on
                log.exception("engine: a call in the engine thread failed")
                future.set_exception(exc)
        for twin in self.twins.values():
            if twin.online:
                twin.check_heartbeat(now)
        self.commands.expire(now)
        self._flush_out()

    # -- outputs ------------------------------------------------------------------------------

    def _publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=qos, retain=retain)

    def _on_transition(self, twin: Twin, old: str, new: str, reason: str, now: float) -> None:
        # A batch shares one `now`; the clock keeps two transitions of one batch in order.
        now = twin.since = max(now, time.time())
        self._out.transitions.append((now, twin.id, old, new, reason))
        state = {"id": twin.id, "state": new, "previous": old, "since": now, "reason": reason,
                 "maintenance": twin.maintenance, "quality": twin.quality.as_dict()}
        self._publish(twin.cfg.twin_state_topic, orjson.dumps(state), 1, True)

    def _on_alert(self, alert: Alert, event: str) -> None:
        row = alert.as_dict()
        self._out.alerts.append(row)
        twin = self.twins.get(alert.device)
        if twin is not None:
            self._publish(twin.cfg.topics.alert, orjson.dumps({**row, "event": event}), 1)

    def _publish_aggregates(self, now: float) -> None:
        topics = self.lab.runtime.aggregates
        self._aggregates = aggregate(self.twins.values(), topics, now)
        for path, doc in self._aggregates.items():
            self._publish(topics[path], orjson.dumps(doc), 0, True)

    def _write_status(self, now: float) -> None:
        self.status_file.write(self.status(now))

    # -- public API ---------------------------------------------------------------------------

    def twin(self, device: str) -> dict[str, Any] | None:
        """The live state of one twin (see Twin.snapshot), or None."""
        twin = self.twins.get(device)
        return twin.snapshot() if twin else None

    def twin_states(self) -> list[dict[str, Any]]:
        return [t.snapshot() for t in list(self.twins.values())]

    def aggregates(self) -> dict[str, dict[str, Any]]:
        """The last aggregates published, by level path."""
        return dict(self._aggregates)

    def open_alerts(self) -> list[dict[str, Any]]:
        return [a.as_dict() for a in list(self.book.open.values())]

    def ack_alert(self, alert_id: str, by: str) -> bool:
        """Acknowledge an alert in storage (and in memory when it is still open)."""
        now = time.time()
        for alert in list(self.book.open.values()):
            if alert.id == alert_id:
                alert.acked_at, alert.acked_by = now, by
        return self.store.ack_alert(alert_id, by, now)

    def send_command(self, device: str, command: str, args: dict[str, Any] | None = None,
                     timeout: float = 10.0) -> Future[dict[str, Any]]:
        """Publish a command; the future resolves with the device's ack or CommandTimeout."""
        return self.commands.send(device, command, args, timeout)

    def command(self, device: str, command: str, args: dict[str, Any] | None = None,
                timeout: float = 10.0) -> dict[str, Any]:
        """Send a command and wait for its ack (raises CommandTimeout)."""
        return self.commands.call(device, command, args, timeout)

    def reload(self, wait_s: float = 10.0) -> ReconcilePlan:
        """Read the lab folder again (SIGHUP); the engine thread applies what changed.

        A reload still queued is applied first, so each plan is made against the twins
        the engine really runs.
        """
        deadline = time.monotonic() + wait_s
        while self._reloads and time.monotonic() < deadline:
            time.sleep(0.01)
        lab, plan = lab_reload.prepare(self)
        self._reloads.append((lab, plan, lab_digest(lab.root)))
        return plan

    def set_maintenance(self, device: str, on: bool, by: str) -> Future[None]:
        """Put a twin in maintenance, or take it out; applied by the engine thread."""
        if device not in self.twins:
            raise KeyError(device)
        return self.call_in_engine(
            lambda now: self.twins[device].set_maintenance(on, by, now))

    def call_in_engine(self, func: Callable[[float], Any]) -> Future[Any]:
        """Run func(now) in the engine thread between two batches (e.g. apply a lab reload);
        the future gets its result or exception."""
        future: Future[Any] = Future()
        self._control.append((func, future))
        return future

    def status(self, now: float | None = None) -> dict[str, Any]:
        """The snapshot written to run/engine/status.json every second."""
        now = now or time.time()
        states = dict.fromkeys(STATES, 0)
        for twin in list(self.twins.values()):
            states[twin.state] += 1
        return {
            "lab": self.lab.runtime.lab, "pid": os.getpid(), "ts": now,
            "started_at": self.started_at, "mqtt_connected": self.client.connected.is_set(),
            "twins": len(self.twins), "states": states,
            "ingest": self.status_file.rates(now, self.received, self.valid),
            "failures": {k: n for k, n in self.failures.items() if n},
            "lag_s": round(self.lag_s, 4), "queue": len(self._inbox),
            "open_alerts": len(self.book.open), "pending_commands": self.commands.pending,
            "storage": self.writer.stats(),
            "lab_sha256": self.lab_sha256, "reloads": self.reloads,
        }
