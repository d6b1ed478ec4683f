"""Mosquitto config (containerlab node and local process), ACL, passwd and public TLS certs."""

from __future__ import annotations

from dtnlab.inventory.model import AGGREGATE_LEVEL, Lab, device_topics

from .jinja import render_template
from .passwd import render_passwd
from .secrets import API_USER, RUNTIME_USER, LabSecrets

# Inside the eclipse-mosquitto:2 image: config, certs and data are the image's volumes.
CONTAINER_PATHS = {
    "passwd": "/mosquitto/config/passwd",
    "acl": "/mosquitto/config/acl",
    "cafile": "/mosquitto/certs/ca.crt",
    "certfile": "/mosquitto/certs/server.crt",
    "keyfile": "/mosquitto/certs/server.key",
    "persistence": "/mosquitto/data/",
}
# The local provider runs mosquitto with cwd = labs/<lab>/; relative paths keep output portable
# and deterministic. The key is read in place from the secrets folder, never copied out.
LOCAL_PATHS = {
    "passwd": "mosquitto/passwd",
    "acl": "mosquitto/acl",
    "cafile": "mosquitto/certs/ca.crt",
    "certfile": "mosquitto/certs/server.crt",
    "keyfile": "secrets/server.key",
    "persistence": "run/mosquitto/",
}
LOCAL_LOG = "run/mosquitto/mosquitto.log"
AGGREGATE_LEVELS = ("site", "area", "line")
# Burst the broker must absorb for one slow subscriber (the runtime reads every device):
# 2 s of the 25,000 msg/s ingest target, or 10 messages per device on bigger labs.
BURST_MESSAGES = 50_000
QUEUED_PER_DEVICE = 10
MAX_QUEUED_BYTES = 256 * 1024 * 1024  # per client: a stuck client costs memory, not the broker
MAX_INFLIGHT = 1000
MAX_PACKET = 256 * 1024  # telemetry is < 1 KiB; aggregates and twin state stay far below this


def broker_limits(lab: Lab) -> dict[str, int | str]:
    """Queue and size limits for the lab's broker, scaled with its number of devices."""
    return {
        "max_queued_messages": max(BURST_MESSAGES, QUEUED_PER_DEVICE * len(lab.twins)),
        "max_queued_bytes": MAX_QUEUED_BYTES,
        "max_inflight_messages": MAX_INFLIGHT,
        "max_packet_size": MAX_PACKET,
        "autosave_interval": 60,
        "persistent_client_expiration": "7d",
    }


def acl_rules(lab: Lab) -> dict[str, list[tuple[str, str]]]:
    """Every MQTT user's (access, topic) rules, users and rules sorted.

    Devices get literal topics only. The runtime and the API use `+` at exactly the device
    depth (enterprise/site/area/line/cell/device/kind), so they may subscribe with one wildcard
    while reaching nothing outside the device topics and the aggregates named here.
    """
    ent = lab.settings.enterprise
    every = f"{ent}/+/+/+/+/+"
    rules: dict[str, list[tuple[str, str]]] = {}
    for device in lab.twins:
        topics = device_topics(lab, device)
        rules[device.id] = sorted([
            ("write", topics["telemetry"]),
            ("write", topics["status"]),
            ("write", topics["alert"]),
            ("read", topics["command"]),
        ], key=lambda rule: rule[1])
    aggregates = sorted(f"{level.path}/{AGGREGATE_LEVEL}"
                        for level in lab.levels if level.level in AGGREGATE_LEVELS)
    # readwrite on its own output so a restarted or sharded runtime can read back retained
    # aggregates and twin state; nobody else may write there
    rules[RUNTIME_USER] = [
        ("readwrite", f"{ent}/_twin/#"),
        ("read", f"{every}/telemetry"),
        ("read", f"{every}/status"),
        ("readwrite", f"{every}/alert"),
        ("write", f"{every}/command"),
        *(("readwrite", topic) for topic in aggregates),
    ]
    rules[API_USER] = [
        ("read", f"{ent}/#"),
        ("write", f"{every}/command"),
        ("write", f"{ent}/_twin/+/control"),  # maintenance on/off, applied by the engine
    ]
    if len(rules) != len(lab.twins) + 2:
        raise ValueError(f"a device id collides with {RUNTIME_USER!r} or {API_USER!r}")
    return dict(sorted(rules.items()))


def _conf(lab: Lab, secrets: LabSecrets, *, local: bool) -> str:
    return render_template(
        "mosquitto/mosquitto.conf.j2",
        lab=lab.name,
        flavour="local process" if local else "containerlab node, image eclipse-mosquitto:2",
        local=local,
        twins=len(lab.twins),
        users=len(secrets.mqtt_passwords),
        paths=LOCAL_PATHS if local else CONTAINER_PATHS,
        bind=" 127.0.0.1" if local else "",
        mqtt_port=lab.settings.mqtt_port,
        mqtts_port=lab.settings.mqtts_port,
        limits=broker_limits(lab),
        log_dest=f"file {LOCAL_LOG}" if local else "stdout",
    )


def render(lab: Lab, secrets: LabSecrets) -> dict[str, str]:
    """Render the broker's files under mosquitto/.

    Args:
        lab: the lab model.
        secrets: its secrets; passwords go in hashed, the TLS key stays in the secrets folder.

    Returns:
        Relative path -> file text.
    """
    return {
        "mosquitto/mosquitto.conf": _conf(lab, secrets, local=False),
        "mosquitto/local.conf": _conf(lab, secrets, local=True),
        "mosquitto/acl": render_template(
            "mosquitto/acl.j2", lab=lab.name, acl=list(acl_rules(lab).items())),
        "mosquitto/passwd": render_passwd(secrets.mqtt_passwords, secrets.jwt_key),
        "mosquitto/certs/ca.crt": secrets.tls.ca_cert,
        "mosquitto/certs/server.crt": secrets.tls.server_cert,
    }
