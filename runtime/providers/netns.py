"""The netns provider: the lab as a real network of Linux namespaces, without Docker (root).

Each NetBox node gets a network namespace, each cable a veth pair, switches a bridge, routers
ip_forward and static routes, cables their impairment (runtime/netns/). The broker, twin engine
and API run in a services namespace hanging off the core; every twinned device's emulator runs
in its own node's namespace (forked from one parent: runtime/netns/emulators.py), so telemetry
crosses the lab's links to reach the broker. The host's 127.0.0.1:<broker port> and <api port>
are forwarded into the services namespace, so status, commands and the browser work as with the
local provider. The local provider's supervisor keeps the processes running; `down` stops them,
then removes every namespace.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..emulator.spec import read_runtime
from ..netns import build as netns_build
from ..netns.addresses import lab_addresses
from ..netns.iproute import NetnsError, namespaces, require_root
from ..netns.names import lab_prefix
from ..netns.plan import NetworkPlan, PlanError, plan_network
from ..netns.shaping import daemon_pid
from ..netns.state import load_plan, netns_dir, write_atomic
from .base import LabStatus, NodeStatus, ProviderError
from .broker import MOSQUITTO, BrokerAccount, broker_account, stage_broker
from .local import LocalProvider
from .nodes import LOGS_DIR, NodeSpec, port_open, runtime_argv, runtime_subcommands
from .process import PidFile
from .states import ENGINE_STATUS
from .supervisor import SUPERVISOR, Supervisor, stop_leftovers

log = logging.getLogger(__name__)

NETNS_CONF = Path("mosquitto/netns.conf")  # staged beside local.conf in run/broker/
VIEW_DIR = "view"  # run/netns/view: the lab folder as emulators inside namespaces see it
_LISTENER = re.compile(r"^(listener\s+\d+)\s+\S+\s*$", re.MULTILINE)


def _in_ns(ns: str, argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", ns, *argv]


def _as_user(account: BrokerAccount | None, argv: list[str]) -> list[str]:
    if account is None:
        return argv
    return ["setpriv", f"--reuid={account.uid}", f"--regid={account.gid}", "--clear-groups",
            *argv]


def stage_netns_broker(lab_dir: Path, account: BrokerAccount | None) -> Path:
    """The local provider's staged broker, with listeners on every address of its namespace."""
    stage = stage_broker(lab_dir, account)
    conf = (stage / "mosquitto" / "local.conf").read_text()
    target = stage / NETNS_CONF
    target.write_text(_LISTENER.sub(r"\1", conf))
    if account is not None:
        os.chown(target, account.uid, account.gid)
    return stage


def write_view(lab_dir: Path, broker_address: str) -> Path:
    """run/netns/view/: the lab folder with runtime.json's broker host set to the lab address.

    Emulators read the broker's host from runtime.json; inside a device's namespace 127.0.0.1 is
    the device itself. Everything but runtime.json is a link back into the lab folder (run/ too,
    so fault requests and emulator status land where the CLI looks for them).
    """
    view = netns_dir(lab_dir) / VIEW_DIR
    view.mkdir(parents=True, exist_ok=True)
    runtime = json.loads((lab_dir / "runtime.json").read_text())
    runtime["broker"]["host"] = broker_address
    write_atomic(view / "runtime.json", json.dumps(runtime, indent=1) + "\n")
    for entry in lab_dir.iterdir():
        if entry.name == "runtime.json":
            continue
        link = view / entry.name
        target = Path("../..") if entry.name == "run" else Path("../../..") / entry.name
        if not link.is_symlink():
            link.symlink_to(target, target_is_directory=entry.is_dir())
    return view


def netns_nodes(lab_dir: Path, tls: bool = False) -> list[NodeSpec]:
    """Every process of the lab on netns, in start order: broker, forward, engine, emulators, API.

    Args:
        lab_dir: the generated lab folder (absolute), whose network is built.
        tls: emulators connect to the broker's TLS listener.
    """
    plan = load_plan(netns_dir(lab_dir))
    runtime = read_runtime(lab_dir)
    broker = runtime.broker
    svc = plan.nodes[plan.service].ns
    account = broker_account()
    ports = [broker.port] + ([broker.tls_port] if broker.tls_port else [])
    api_port = json.loads((lab_dir / "runtime.json").read_text()).get("api", {}).get("port")
    available = runtime_subcommands()
    host_side = plan.host_link.peer_address if plan.host_link else plan.broker_address
    nodes = [NodeSpec(
        name="broker", cwd=lab_dir / "run" / "broker",
        argv=_in_ns(svc, _as_user(account, [MOSQUITTO, "-c", str(NETNS_CONF)])),
        prepare=lambda: stage_netns_broker(lab_dir, account),
        ready=lambda: all(port_open(host_side, p) for p in ports))]
    forwarded = ports + ([int(api_port)] if api_port and "api" in available else [])
    nodes.append(NodeSpec(
        name="forward", cwd=lab_dir,
        argv=[sys.executable, "-m", "dtnlab.runtime.netns.forward", "--netns", svc,
              *(arg for port in forwarded for arg in ("--port", str(port)))],
        ready=lambda: port_open(broker.host, broker.port)))
    if "engine" in available:
        nodes.append(NodeSpec("engine", _in_ns(svc, runtime_argv("engine", lab_dir)), lab_dir))
    view = netns_dir(lab_dir) / VIEW_DIR
    nodes.append(NodeSpec(
        "emulators", [sys.executable, "-m", "dtnlab.runtime.netns.emulators", "--lab",
                      str(lab_dir), "--view", str(view)] + (["--tls"] if tls else []),
        lab_dir, prepare=lambda: write_view(lab_dir, plan.broker_address)))
    if "api" in available:
        nodes.append(NodeSpec("api", _in_ns(svc, runtime_argv("api", lab_dir)), lab_dir))
    return nodes


class NetnsProvider(LocalProvider):
    """The lab as namespaces and veths (root); its processes supervised as by `local`.

    Args:
        lab_dir: the generated lab folder.
        shards: ignored: each device's emulator runs in its own namespace.
        tls: emulators connect to the broker's TLS listener.
        attach: the node the services namespace hangs off (default: the first core).
    """

    name = "netns"

    def __init__(self, lab_dir: Path, shards: int | None = None, tls: bool = False,
                 attach: str | None = None) -> None:
        super().__init__(lab_dir, shards=None, tls=tls)
        self.attach = attach

    @property
    def run_dir(self) -> Path:
        return netns_dir(self.lab_dir)

    def plan(self) -> NetworkPlan:
        """The network this lab folder asks for (nothing is built)."""
        runtime = json.loads((self.lab_dir / "runtime.json").read_text())
        topology = runtime.get("topology") or {}
        addresses, source = lab_addresses(self.lab_dir, topology)
        try:
            plan = plan_network(runtime["lab"], topology, addresses, attach=self.attach)
        except PlanError as exc:
            raise ProviderError(f"{self.lab_dir / 'runtime.json'}: {exc}") from None
        plan.addresses_from = source
        return plan

    def up(self, timeout: float = 60.0) -> LabStatus:
        try:
            require_root()
        except NetnsError as exc:
            raise ProviderError(str(exc)) from None
        if not (self.lab_dir / "runtime.json").exists():
            raise ProviderError(f"{self.lab_dir}: no runtime.json; generate the lab first")
        if self._supervisor() is None:
            self.down()  # what a crashed run left: processes, namespaces
            plan = self.plan()
            try:
                netns_build.build(plan, self.run_dir)
            except NetnsError as exc:
                raise ProviderError(f"the lab network could not be built: {exc}") from None
            write_view(self.lab_dir, plan.broker_address)
            self._start_supervisor()
        self._wait_ready(time.monotonic() + timeout)
        return self.status()

    def _start_supervisor(self) -> None:
        """As the local provider's, with this module's supervisor (the netns node list)."""
        stop_leftovers(self.lab_dir)
        run = self.lab_dir / "run"
        for stale in (run / "faults", run / "emulator"):  # a fresh lab starts without faults
            shutil.rmtree(stale, ignore_errors=True)
        (self.lab_dir / ENGINE_STATUS).unlink(missing_ok=True)
        (self.lab_dir / LOGS_DIR).mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "dtnlab.runtime.netns", "--lab",
                str(self.lab_dir)] + (["--tls"] if self.tls else [])
        with (self.lab_dir / LOGS_DIR / f"{SUPERVISOR}.log").open("ab") as output:
            proc = subprocess.Popen(argv, cwd=self.lab_dir, stdin=subprocess.DEVNULL,
                                    stdout=output, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        PidFile.of(SUPERVISOR, proc.pid, argv).write(self.lab_dir)
        # reaped in the background: a long-lived caller (a test, the API) gets no zombie
        threading.Thread(target=proc.wait, name="reap-supervisor", daemon=True).start()
        log.info("netns supervisor started (pid %d)", proc.pid)

    def down(self) -> list[str]:
        stopped = super().down()
        lab = self._lab_name()
        if os.geteuid() != 0:
            if any(ns.startswith(lab_prefix(lab)) for ns in namespaces()):
                raise ProviderError(f"lab {lab} has network namespaces; removing them needs "
                                    "root: run `dtnlab down` as root")
            return stopped
        try:
            removed = netns_build.teardown(lab, self.run_dir)
        except NetnsError as exc:
            raise ProviderError(f"the lab network was not fully removed: {exc}") from None
        if removed.namespaces:
            stopped.append(f"network ({len(removed.namespaces)} namespaces)")
        return stopped

    def _lab_name(self) -> str:
        try:
            return str(json.loads((self.lab_dir / "runtime.json").read_text())["lab"])
        except (OSError, ValueError, KeyError):
            return self.lab_dir.name

    def nodes(self) -> list[NodeStatus]:
        result = super().nodes()
        try:
            plan = load_plan(self.run_dir)
        except NetnsError:
            return result
        present = set(namespaces())
        up = sum(node.ns in present for node in plan.nodes.values())
        result.append(NodeStatus(name="network", pid=None, alive=up == len(plan.nodes),
                                 state=f"{up}/{len(plan.nodes)} ns"))
        pid = daemon_pid(self.run_dir)
        if pid is not None or (plan.shaper == "nfqueue"
                               and any(link.impairment for link in plan.links)):
            result.append(NodeStatus(name="impaird", pid=pid, alive=pid is not None,
                                     state="running" if pid else "stopped"))
        return result


def supervise(argv: list[str] | None = None) -> int:
    """The supervisor of a netns lab: `python -m dtnlab.runtime.netns --lab DIR`."""
    parser = argparse.ArgumentParser(prog="python -m dtnlab.runtime.netns",
                                     description="Supervise a lab's processes on netns.")
    parser.add_argument("--lab", type=Path, required=True, help="the generated lab folder")
    parser.add_argument("--tls", action="store_true", help="emulators use the TLS listener")
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("DTN_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    lab_dir = args.lab.resolve()
    return Supervisor(lab_dir, netns_nodes(lab_dir, args.tls)).run()
