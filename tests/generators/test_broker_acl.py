"""The generated ACL, passwd and TLS certs, proven against the real Mosquitto with paho."""

from __future__ import annotations

import gc
import queue
import ssl
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from dtnlab.generators.secrets import API_USER, RUNTIME_USER, LabSecrets
from dtnlab.inventory.model import Device, Lab, device_topics
from dtnlab.inventory.source import FileSource
from tests.broker import Broker, free_port, with_free_ports, write_broker_files
from tests.conftest import DEMO_INVENTORY

pytestmark = pytest.mark.mosquitto

WAIT = 5.0  # the longest any single step may take; the broker answers in milliseconds
NOT_AUTHORIZED = 135  # MQTT v5 reason code 0x87


class Session:
    """One paho client on its own network thread, with its events turned into bounded waits."""

    def __init__(
        self,
        broker: Broker,
        user: str | None,
        password: str | None,
        *,
        protocol: int = mqtt.MQTTv5,
        tls_ca: Path | None = None,
        system_cas: bool = False,
        host: str = "127.0.0.1",
        will: tuple[str, str] | None = None,
    ) -> None:
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=protocol,
                                  client_id=f"test-{user or 'anonymous'}-{id(self)}")
        # paho's network thread reconnects after a refusal; a short delay lets close() join fast
        self.client.reconnect_delay_set(min_delay=0.05, max_delay=0.05)  # type: ignore[arg-type]
        if user is not None:
            self.client.username_pw_set(user, password)
        if will is not None:
            self.client.will_set(*will, qos=1)
        port = broker.mqtt_port
        if tls_ca is not None or system_cas:
            self.client.tls_set(ca_certs=str(tls_ca) if tls_ca else None)
            port = broker.mqtts_port
        self.connack: queue.Queue[ReasonCode] = queue.Queue()
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.acks: dict[int, ReasonCode] = {}
        self.acked = threading.Condition()
        self.client.on_connect = lambda c, u, flags, rc, props: self.connack.put(rc)
        self.client.on_message = lambda c, u, msg: self.messages.put(msg)
        self.client.on_subscribe = self._on_ack
        self.client.on_publish = self._on_ack
        self.client.connect(host, port, keepalive=10)
        self.client.loop_start()

    def _on_ack(self, client: mqtt.Client, userdata: object, mid: int, reason: object,
                properties: object) -> None:
        with self.acked:
            self.acks[mid] = reason[0] if isinstance(reason, list) else reason  # type: ignore[assignment]
            self.acked.notify_all()

    def _ack(self, mid: int) -> ReasonCode:
        with self.acked:
            assert self.acked.wait_for(lambda: mid in self.acks, WAIT), f"no ack for mid {mid}"
            return self.acks[mid]

    def connected(self) -> ReasonCode:
        return self.connack.get(timeout=WAIT)

    def subscribe(self, topic: str, qos: int = 1) -> ReasonCode:
        result, mid = self.client.subscribe(topic, qos)
        assert result == mqtt.MQTT_ERR_SUCCESS
        return self._ack(mid)

    def publish(self, topic: str, payload: bytes | str, qos: int = 1) -> ReasonCode | None:
        """Publish; for QoS 1 return the broker's PUBACK reason code."""
        info = self.client.publish(topic, payload, qos=qos)
        return self._ack(info.mid) if qos else None

    def receive_until(self, sentinel: str) -> list[tuple[str, bytes]]:
        """Every message up to and including the one whose payload is `sentinel`.

        A sentinel published after the messages under test bounds the wait: the broker keeps
        one publisher's order, so anything allowed before it would have arrived first.
        """
        return self.receive_until_all({sentinel})

    def receive_until_all(self, sentinels: set[str]) -> list[tuple[str, bytes]]:
        got: list[tuple[str, bytes]] = []
        missing = {s.encode() for s in sentinels}
        while missing:
            msg = self.messages.get(timeout=WAIT)
            got.append((msg.topic, msg.payload))
            missing.discard(msg.payload)
        return got

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(scope="module")
def lab() -> Lab:
    """Four twins of the demo plant, on free loopback ports."""
    full = FileSource(DEMO_INVENTORY).load()
    return with_free_ports(full.model_copy(update={"devices": full.twins[:4]}))


@pytest.fixture(scope="module")
def lab_dir(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lab")


@pytest.fixture(scope="module")
def secrets(lab: Lab, lab_dir: Path) -> LabSecrets:
    return write_broker_files(lab, lab_dir)


@pytest.fixture(scope="module")
def broker(lab_dir: Path, secrets: LabSecrets) -> Iterator[Broker]:
    with Broker(lab_dir) as running:
        yield running


Connect = Callable[..., Session]


@pytest.fixture
def connect(broker: Broker, secrets: LabSecrets) -> Iterator[Connect]:
    """Open authenticated sessions by user name; all are closed after the test."""
    opened: list[Session] = []

    def open_session(user: str, protocol: int = mqtt.MQTTv5) -> Session:
        session = Session(broker, user, secrets.mqtt_passwords[user], protocol=protocol)
        opened.append(session)
        assert not session.connected().is_failure, f"{user} could not connect"
        return session

    yield open_session
    for session in opened:
        session.close()


def topics(lab: Lab, n: int) -> tuple[Device, dict[str, str]]:
    device = lab.twins[n]
    return device, device_topics(lab, device)


def test_device_telemetry_reaches_the_runtime(lab: Lab, connect: Connect) -> None:
    device, own = topics(lab, 0)
    runtime = connect(RUNTIME_USER)
    assert not runtime.subscribe(f"{lab.settings.enterprise}/+/+/+/+/+/telemetry").is_failure
    sender = connect(device.id)
    assert not sender.publish(own["telemetry"], '{"t": 21.5}').is_failure
    assert not sender.publish(own["status"], "online").is_failure
    assert runtime.receive_until('{"t": 21.5}') == [(own["telemetry"], b'{"t": 21.5}')]


@pytest.mark.parametrize("kind", ["telemetry", "status", "alert", "command"])
def test_device_cannot_publish_to_another_devices_topic(
    lab: Lab, connect: Connect, kind: str
) -> None:
    device, own = topics(lab, 0)
    _, other = topics(lab, 1)
    observer = connect(API_USER)  # reads everything under the enterprise
    assert not observer.subscribe(f"{lab.settings.enterprise}/#").is_failure
    v5 = connect(device.id)
    assert v5.publish(other[kind], "forged-v5-qos1").value == NOT_AUTHORIZED
    v5.publish(other[kind], "forged-v5-qos0", qos=0)
    v5.publish(own["telemetry"], "v5-done", qos=0)
    # v3.1.1 has no negative PUBACK: the broker acks and drops, so only the receiver can tell
    v311 = connect(device.id, mqtt.MQTTv311)
    assert not v311.publish(other[kind], "forged-v311-qos1").is_failure
    v311.publish(other[kind], "forged-v311-qos0", qos=0)
    v311.publish(own["telemetry"], "v311-done", qos=0)
    got = observer.receive_until_all({"v5-done", "v311-done"})
    assert {topic for topic, _ in got} == {own["telemetry"]}, got


def test_device_cannot_publish_to_its_own_command_topic(lab: Lab, connect: Connect) -> None:
    device, own = topics(lab, 0)
    assert connect(device.id).publish(own["command"], "self-command").value == NOT_AUTHORIZED


def test_device_cannot_read_another_devices_commands(lab: Lab, connect: Connect) -> None:
    spy_device, spy_own = topics(lab, 0)
    target_device, target = topics(lab, 1)
    spy = connect(spy_device.id)
    # Mosquitto 2.0.11's acl_file grants any SUBSCRIBE and checks `read` on every delivery,
    # so the proof is on the receiving side; a broker that refuses the subscription is fine too.
    for topic in (target["command"], f"{lab.settings.enterprise}/#"):
        assert spy.subscribe(topic).value in (1, NOT_AUTHORIZED)
    assert not spy.subscribe(spy_own["command"]).is_failure
    victim = connect(target_device.id)
    assert not victim.subscribe(target["command"]).is_failure
    api = connect(API_USER)
    assert not api.publish(target["command"], "stop").is_failure
    assert not api.publish(spy_own["command"], "spy-sentinel").is_failure
    assert victim.receive_until("stop") == [(target["command"], b"stop")]
    assert spy.receive_until("spy-sentinel") == [(spy_own["command"], b"spy-sentinel")]


def test_service_users_write_only_their_topics(lab: Lab, connect: Connect) -> None:
    _, own = topics(lab, 0)
    ent = lab.settings.enterprise
    site = next(lv.path for lv in lab.levels if lv.level == "site")
    cell = next(lv.path for lv in lab.levels if lv.level == "cell")
    runtime = connect(RUNTIME_USER)
    for topic in (own["command"], own["alert"], f"{site}/_aggregate", f"{ent}/_twin/x/state"):
        assert not runtime.publish(topic, "ok").is_failure, topic
    for topic in (own["telemetry"], own["status"], f"{cell}/_aggregate", f"{ent}/other"):
        assert runtime.publish(topic, "forged").value == NOT_AUTHORIZED, topic
    api = connect(API_USER)
    assert not api.publish(own["command"], "ok").is_failure
    for topic in (own["telemetry"], own["status"], own["alert"], f"{site}/_aggregate"):
        assert api.publish(topic, "forged").value == NOT_AUTHORIZED, topic


def test_runtime_reads_device_output_but_not_commands(lab: Lab, connect: Connect) -> None:
    device, own = topics(lab, 0)
    runtime = connect(RUNTIME_USER)
    assert runtime.subscribe(f"{lab.settings.enterprise}/#").value in (1, NOT_AUTHORIZED)
    assert not runtime.subscribe(f"{lab.settings.enterprise}/+/+/+/+/+/+").is_failure
    assert not connect(API_USER).publish(own["command"], "not-for-runtime").is_failure
    sender = connect(device.id)
    for kind in ("status", "alert", "telemetry"):
        assert not sender.publish(own[kind], kind).is_failure
    got = runtime.receive_until_all({"status", "alert", "telemetry"})
    # a set: the two overlapping subscriptions deliver each message twice
    assert set(got) == {(own[k], k.encode()) for k in ("status", "alert", "telemetry")}


def test_wrong_password_is_refused(lab: Lab, broker: Broker) -> None:
    session = Session(broker, lab.twins[0].id, "not-the-password")
    try:
        assert session.connected().is_failure
    finally:
        session.close()


@pytest.mark.parametrize("protocol", [mqtt.MQTTv5, mqtt.MQTTv311], ids=["v5", "v311"])
def test_anonymous_client_is_refused(broker: Broker, protocol: int) -> None:
    session = Session(broker, None, None, protocol=protocol)
    try:
        assert session.connected().is_failure
    finally:
        session.close()


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_client_trusting_the_lab_ca_connects_over_tls(
    lab: Lab, broker: Broker, secrets: LabSecrets, host: str
) -> None:
    user = lab.twins[0].id
    session = Session(broker, user, secrets.mqtt_passwords[user], tls_ca=broker.ca_cert,
                      host=host)
    try:
        assert not session.connected().is_failure
        assert not session.publish(device_topics(lab, lab.twins[0])["telemetry"], "x").is_failure
    finally:
        session.close()


def test_client_with_only_system_cas_is_refused(
    lab: Lab, broker: Broker, secrets: LabSecrets
) -> None:
    user = lab.twins[0].id
    # paho drops the refused TLS socket without closing it: let it go quietly, inside here
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        with pytest.raises(ssl.SSLCertVerificationError):
            Session(broker, user, secrets.mqtt_passwords[user], system_cas=True)
        gc.collect()


def test_oversized_packet_disconnects_the_client(lab: Lab, connect: Connect) -> None:
    device, own = topics(lab, 0)
    runtime = connect(RUNTIME_USER)
    assert not runtime.subscribe(own["telemetry"]).is_failure
    sender = connect(device.id, protocol=mqtt.MQTTv311)
    gone = threading.Event()
    sender.client.on_disconnect = lambda *args: gone.set()
    sender.client.publish(own["telemetry"], b"x" * (512 * 1024), qos=0)
    assert gone.wait(WAIT)
    connect(device.id).publish(own["telemetry"], "after")
    assert runtime.receive_until("after") == [(own["telemetry"], b"after")]


@pytest.mark.parametrize("whose", ["own", "other"])
def test_last_will_only_on_the_devices_own_status(
    lab: Lab, broker: Broker, secrets: LabSecrets, connect: Connect, whose: str
) -> None:
    device, own = topics(lab, 0)
    _, other = topics(lab, 1)
    runtime = connect(RUNTIME_USER)
    assert not runtime.subscribe(f"{lab.settings.enterprise}/+/+/+/+/+/status").is_failure
    will_topic = own["status"] if whose == "own" else other["status"]
    session = Session(broker, device.id, secrets.mqtt_passwords[device.id],
                      will=(will_topic, "offline"))
    refused = session.connected().is_failure
    # reason 0x04 "disconnect with will message": the broker publishes the will as on a crash
    session.client.disconnect(reasoncode=ReasonCode(PacketTypes.DISCONNECT,
                                                     "Disconnect with will message"))
    session.client.loop_stop()
    connect(device.id).publish(own["status"], "sentinel")
    got = runtime.receive_until("sentinel")
    if whose == "own":
        assert not refused
        assert got == [(own["status"], b"offline"), (own["status"], b"sentinel")]
    else:
        assert got == [(own["status"], b"sentinel")]


def test_regenerated_users_apply_on_reload(lab: Lab, tmp_path: Path) -> None:
    """A device added in the inventory can connect once the files are rewritten and reloaded."""
    full = FileSource(DEMO_INVENTORY).load()
    small = lab.model_copy(update={"devices": full.twins[:2]})
    grown = lab.model_copy(update={"devices": full.twins[:3]})
    newcomer = full.twins[2].id
    write_broker_files(small, tmp_path)
    with Broker(tmp_path, mqtt_port=free_port(), mqtts_port=free_port()) as broker:
        secrets = write_broker_files(grown, tmp_path)
        before = Session(broker, newcomer, secrets.mqtt_passwords[newcomer])
        try:
            assert before.connected().is_failure
        finally:
            before.close()
        broker.reload()
        deadline = time.monotonic() + WAIT
        while True:  # SIGHUP is asynchronous: retry until the broker has re-read its files
            after = Session(broker, newcomer, secrets.mqtt_passwords[newcomer])
            try:
                if not after.connected().is_failure:
                    break
            finally:
                after.close()
            assert time.monotonic() < deadline, broker.log()
            time.sleep(0.05)
