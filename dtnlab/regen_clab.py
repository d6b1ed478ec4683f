"""The containerlab commands that apply a regen to a lab running under containerlab.

dtnlab prints them rather than running them: containerlab needs root and Docker, and nodes
restart. Since containerlab 0.78 `deploy` converges a running lab to its topology file in place
(0.77: `apply`); older releases can only `redeploy` (destroy and deploy the whole lab).
A container that binds a single file (the broker's acl and passwd, an emulator node's twin
config) keeps the old file after a regen replaces it, so those nodes restart; the twin engine
and the API bind the whole lab folder and reload on SIGHUP.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from dtnlab.generators.clab_services import API, BROKER, ENGINE, long_name
from dtnlab.generators.topology import SIDECAR_SUFFIX, TOPOLOGY_FILE

from .regen import Preview

PROVIDER_FILE = Path("run/provider.json")  # written by `dtnlab up`


def runs_on_clab(folder: Path) -> bool:
    """Whether `dtnlab up` last started this lab with the clab provider."""
    try:
        return bool(json.loads((folder / PROVIDER_FILE).read_text()).get("provider") == "clab")
    except (OSError, ValueError, AttributeError):
        return False


def _node_of(twin: str, nodes: set[str]) -> str:
    """The node that emulates a twin: its sidecar when the device's own node runs a network OS."""
    sidecar = f"{twin}{SIDECAR_SUFFIX}"
    return sidecar if sidecar in nodes else twin


def clab_commands(pv: Preview) -> list[str]:
    """The commands, in order, that bring a lab running under containerlab in step with `pv`.

    Args:
        pv: the regen's preview (files written, running objects to change).

    Returns:
        Shell command lines; none when the running nodes need nothing.
    """
    topology = pv.folder.resolve() / TOPOLOGY_FILE
    doc = yaml.safe_load(pv.rendered.files.get(TOPOLOGY_FILE, "")) or {}
    nodes = set((doc.get("topology") or {}).get("nodes") or {})
    plan = pv.plan
    # The broker first, so that a new device's credentials exist when its node starts.
    restart = [BROKER] if plan.broker_reload else []
    restart += sorted({_node_of(t, nodes) for t in (*plan.moved, *plan.reconfigured)})
    written = {*pv.files.created, *pv.files.changed}
    commands = []
    if restart:
        commands.append(f"containerlab restart -t {topology} --node {','.join(restart)}")
    if TOPOLOGY_FILE in written:
        commands.append(f"containerlab deploy -t {topology}")
    if plan.touched or pv.runtime_changed:
        lab = pv.lab.name
        commands.append(f"docker kill -s HUP {long_name(lab, ENGINE)} {long_name(lab, API)}")
    if commands:
        # Rewritten secrets and passwords belong to root again until handed back to their users.
        folder = pv.folder.resolve()
        commands.insert(0, f"dtnlab clab prepare --labs-dir {folder.parent} --lab {folder.name}")
    return commands
