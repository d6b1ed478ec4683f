"""The containerlab nodes dtnlab adds to a lab: broker, database, twin engine, API, emulators.

Every node says which user it runs as (`user`): `dtnlab clab prepare` (runtime/providers/
clab_files.py) reads that to give each bound secret to the one user that reads it, and the
runtime reads the environment set here (the test in tests/generators/test_topology.py resolves
every node's settings through the runtime's own loaders).
"""

from __future__ import annotations

from typing import Any

from dtnlab.inventory.model import Device, Lab
from dtnlab.runtime.api.settings import API_HOST_ENV
from dtnlab.runtime.labfiles import BROKER_HOST_ENV, RUN_DIR
from dtnlab.runtime.storage.dsn import DATABASE_URL_ENV, PASSWORD_FILE_ENV

from .platforms import NODE_IMAGE, NODE_UID
from .secrets import (
    API_USER,
    DB_NODE_PASSWORD_FILE,
    DB_PASSWORD_FILE,
    DEVICE_PASSWORDS_DIR,
    JWT_KEY_FILE,
    RUNTIME_USER,
)

SECRETS_DIR = "secrets"  # pipeline.SECRETS_DIR; not imported, pipeline imports this module
SERVER_KEY_FILE = "server.key"  # written by tls.py into the secrets folder
LAB_MOUNT = "/lab"  # where nodes see the lab folder (or the few files of it they get)
RUN_MOUNT = f"{LAB_MOUNT}/{RUN_DIR}"  # where the runtime writes: status, spill files
# The engine's and the API's run folder on the host: shared by the two (the API reads the
# engine's status), apart from the run/ of processes on the host, owned by the node user.
CLAB_RUN_DIR = f"{RUN_DIR}/clab"
BROKER, DATABASE, ENGINE, API = "broker", "database", "twin-engine", "api"
SERVICES = (BROKER, DATABASE, ENGINE, API)  # also the order of their addresses, top down
BROKER_IMAGE = "eclipse-mosquitto:2"
# The image's `mosquitto` user. Run as it from the start: mosquitto 2 drops root right after
# reading mosquitto.conf, before it opens the password file, the ACL and the TLS key.
BROKER_UID = 1883
# `database` setting -> image and the uid of its `postgres` user, who reads the password file
# (the entrypoint re-executes itself as that user before reading POSTGRES_PASSWORD_FILE).
DATABASE_IMAGES = {
    "postgres": ("postgres:15", 999),  # Debian-based: postgres is 999
    "timescaledb": ("timescale/timescaledb:latest-pg15", 70),  # postgres:15-alpine: 70
}
DB_NAME = DB_USER = "dtn"
DB_PORT = 5432
SERVICE_GRAPH_LEVEL = 1


def long_name(lab: str, node: str) -> str:
    """The container name containerlab gives a node (its default prefix is `clab`)."""
    return f"clab-{lab}-{node}"


def node_user(uid: int) -> str:
    """A node's `user`: uid and gid (each image's user has a group of the same number)."""
    return f"{uid}:{uid}"


def _private_tmpfs(size: str) -> str:
    """tmpfs options: a folder only the dtnlab node user can enter."""
    return f"size={size},mode=0700,uid={NODE_UID},gid={NODE_UID}"


def _ro(rel: str) -> str:
    """Bind a file of the lab folder read-only at the same place under LAB_MOUNT."""
    return f"./{rel}:{LAB_MOUNT}/{rel}:ro"


def _device_password(user: str) -> str:
    return f"{SECRETS_DIR}/{DEVICE_PASSWORDS_DIR}/{user}.password"


def emulator_settings(lab: Lab, device: Device) -> dict[str, Any]:
    """cmd, user, binds, tmpfs and env of the node that emulates `device`.

    It sees only its own files, and writes its status into a private tmpfs run folder.
    """
    return {
        "cmd": f"python -m dtnlab.runtime emulator --lab {LAB_MOUNT} --device {device.id}",
        "user": node_user(NODE_UID),
        "binds": [
            _ro(f"twins/{device.id}.json"),
            _ro("runtime.json"),
            _ro("mosquitto/certs/ca.crt"),
            _ro(_device_password(device.id)),
        ],
        "tmpfs": {RUN_MOUNT: _private_tmpfs("4m")},
        "env": {BROKER_HOST_ENV: long_name(lab.name, BROKER)},
    }


def _runtime_node(lab: Lab, role: str, secret_files: list[str]) -> dict[str, Any]:
    """The twin engine or the API: the whole lab folder read-only, but only their own secrets.

    A tmpfs hides the lab's secrets folder; the secrets the node needs are bound on top of it,
    so the runtime finds them at the same paths as when it runs from the lab folder directly.
    The run folder is bound writable over the read-only lab.
    """
    command = "engine" if role == ENGINE else role
    return {
        "kind": "linux",
        "image": NODE_IMAGE,
        "user": node_user(NODE_UID),
        "cmd": f"python -m dtnlab.runtime {command} --lab {LAB_MOUNT}",
        "binds": ([f".:{LAB_MOUNT}:ro", f"./{CLAB_RUN_DIR}:{RUN_MOUNT}:rw"]
                  + [_ro(path) for path in secret_files]),
        "tmpfs": {f"{LAB_MOUNT}/{SECRETS_DIR}": _private_tmpfs("1m")},
        "env": {
            BROKER_HOST_ENV: long_name(lab.name, BROKER),
            DATABASE_URL_ENV: (f"postgresql://{DB_USER}@{long_name(lab.name, DATABASE)}:"
                               f"{DB_PORT}/{DB_NAME}"),
            PASSWORD_FILE_ENV: f"{LAB_MOUNT}/{SECRETS_DIR}/{DB_PASSWORD_FILE}",
        },
    }


def service_nodes(lab: Lab) -> dict[str, dict[str, Any]]:
    s = lab.settings
    db_password = f"{SECRETS_DIR}/{DB_PASSWORD_FILE}"
    broker: dict[str, Any] = {
        "kind": "linux",
        "image": BROKER_IMAGE,
        "user": node_user(BROKER_UID),
        "binds": [
            "./mosquitto/mosquitto.conf:/mosquitto/config/mosquitto.conf:ro",
            "./mosquitto/acl:/mosquitto/config/acl:ro",
            "./mosquitto/passwd:/mosquitto/config/passwd:ro",
            "./mosquitto/certs/ca.crt:/mosquitto/certs/ca.crt:ro",
            "./mosquitto/certs/server.crt:/mosquitto/certs/server.crt:ro",
            f"./{SECRETS_DIR}/{SERVER_KEY_FILE}:/mosquitto/certs/server.key:ro",
        ],
        "ports": [f"{s.mqtt_port}:{s.mqtt_port}", f"{s.mqtts_port}:{s.mqtts_port}"],
    }
    image, db_uid = DATABASE_IMAGES[s.database]
    database: dict[str, Any] = {
        "kind": "linux",
        "image": image,
        "user": node_user(db_uid),
        # The password comes from a file so it never appears in this topology or `docker inspect`;
        # its own copy, owned by the database's user (the runtime nodes' copy is theirs).
        # No host port: the machine's own PostgreSQL may hold 5432.
        "binds": [f"./{SECRETS_DIR}/{DB_NODE_PASSWORD_FILE}:/run/secrets/{DB_PASSWORD_FILE}:ro"],
        "env": {"POSTGRES_DB": DB_NAME, "POSTGRES_USER": DB_USER,
                "POSTGRES_PASSWORD_FILE": f"/run/secrets/{DB_PASSWORD_FILE}"},
    }
    engine = _runtime_node(lab, ENGINE, [_device_password(RUNTIME_USER), db_password])
    # API users come as hashes in runtime.json: the node never sees their clear passwords.
    api = _runtime_node(lab, API, [_device_password(API_USER), f"{SECRETS_DIR}/{JWT_KEY_FILE}",
                                   db_password])
    api["env"][API_HOST_ENV] = "0.0.0.0"  # the published port reaches the container's eth0
    api["ports"] = [f"{s.api_port}:{s.api_port}"]
    nodes = {BROKER: broker, DATABASE: database, ENGINE: engine, API: api}
    for name, node in nodes.items():
        node["labels"] = {"dtn.lab": lab.name, "dtn.role": name, "dtn.service": "true",
                          "graph-level": str(SERVICE_GRAPH_LEVEL)}
    return nodes
