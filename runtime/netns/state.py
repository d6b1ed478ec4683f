"""Files of a lab's namespaced network under labs/<lab>/run/netns/: the plan and the shaper's."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .iproute import NetnsError
from .plan import NetworkPlan

NETNS_DIR = Path("run/netns")
NETWORK_FILE = "network.json"  # the plan: namespace, interface and address of every node
IMPAIR_FILE = "impair.json"  # the nfqueue shaper's queues
IMPAIRD_PID = "impaird.pid"
IMPAIRD_LOG = "impaird.log"


def netns_dir(lab_dir: Path) -> Path:
    return lab_dir / NETNS_DIR


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def save_plan(run_dir: Path, plan: NetworkPlan) -> None:
    write_atomic(run_dir / NETWORK_FILE, plan.model_dump_json(indent=1) + "\n")


def load_plan(run_dir: Path) -> NetworkPlan:
    """The plan of the running network.

    Raises:
        NetnsError: when the lab's network is not up (no network.json).
    """
    path = run_dir / NETWORK_FILE
    try:
        return NetworkPlan.model_validate(json.loads(path.read_text()))
    except FileNotFoundError:
        raise NetnsError(f"{path}: missing: the lab is not up on the netns provider") from None
    except ValueError as exc:
        raise NetnsError(f"{path}: unreadable: {exc}") from None
