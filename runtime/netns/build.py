"""Make a planned network real (namespaces, veths, bridges, addresses, routes) and remove it.

Every namespace is named `dtn-<lab>-<node>` and its `lo` carries the alias `dtnlab:<lab>`, so
`teardown` finds all of them by the lab's prefix even when network.json is gone (after a crash):
it kills the processes inside, then deletes the namespaces, which deletes their veths.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import shaping
from .iproute import (
    NetnsError,
    ip_batch,
    kill_pids,
    namespaces,
    ns_alias,
    ns_pids,
    require_root,
    root_links,
    run,
    sysctl,
)
from .names import BRIDGE, host_link_name, lab_marker, lab_prefix
from .plan import NetworkPlan, Node
from .state import IMPAIR_FILE, IMPAIRD_PID, NETWORK_FILE, load_plan, save_plan

log = logging.getLogger(__name__)

# IPv6 stays off inside the lab: the plan is IPv4, and router solicitations would only add noise
# to captures and to the impairment queues.
NS_SYSCTLS = {"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"}
ROUTER_SYSCTLS = {"net.ipv4.ip_forward": "1"}


@dataclass
class Teardown:
    """What `teardown` removed."""

    namespaces: list[str] = field(default_factory=list)
    processes: list[int] = field(default_factory=list)
    links: list[str] = field(default_factory=list)


def lab_namespaces(lab: str, known: set[str] | None = None) -> list[str]:
    """The lab's namespaces: those of its plan, and those its prefix finds that no other lab marks.

    A prefix alone is ambiguous (lab `demo` vs lab `demo-plant`), so a namespace whose `lo`
    names another lab is left alone; an unmarked one (a crash before marking) is taken.
    """
    prefix = lab_prefix(lab)
    mine = lab_marker(lab)
    found = []
    for name in namespaces():
        if known and name in known:
            found.append(name)
        elif name.startswith(prefix):
            alias = ns_alias(name)
            if not alias or alias == mine:
                found.append(name)
    return sorted(found)


def build(plan: NetworkPlan, run_dir: Path) -> NetworkPlan:
    """Create the namespaced network of `plan`; on any failure remove what was made.

    Returns:
        The plan as built (with the impairment method chosen), also saved in network.json.

    Raises:
        NetnsError: not root, iproute2 missing, the lab already has namespaces, or a command
            failed (its stderr in the message).
    """
    require_root()
    leftovers = lab_namespaces(plan.lab)
    if leftovers:
        raise NetnsError(f"lab {plan.lab} already has {len(leftovers)} namespaces "
                         f"({', '.join(leftovers[:3])} ...): run `dtnlab down` first")
    started = time.monotonic()
    save_plan(run_dir, plan)  # first, so that a crash half way can still be torn down
    try:
        _create(plan)
        plan.shaper = shaping.choose_shaper(plan.nodes[plan.service].ns)
        save_plan(run_dir, plan)
        impaired = shaping.apply_all(plan, run_dir)
    except BaseException:
        teardown(plan.lab, run_dir)
        raise
    log.info("netns: %d namespaces, %d links, %d impaired (%s) in %.2fs", len(plan.nodes),
             len(plan.links), impaired, plan.shaper, time.monotonic() - started)
    return plan


def _create(plan: NetworkPlan) -> None:
    nodes = sorted(plan.nodes.values(), key=lambda n: n.id)
    ip_batch([f"netns add {node.ns}" for node in nodes])
    veths = [f"link add {link.a_dev} netns {plan.nodes[link.a].ns} type veth "
             f"peer name {link.b_dev} netns {plan.nodes[link.b].ns}" for link in plan.links]
    if plan.host_link is not None:
        svc = plan.nodes[plan.service]
        host0 = next(i.dev for i in svc.interfaces if not i.peer)
        veths.append(f"link add {plan.host_link.dev} type veth peer name {host0} netns {svc.ns}")
    ip_batch(veths)
    for node in nodes:
        ip_batch(_node_commands(plan, node), netns=node.ns)
        settings = dict(NS_SYSCTLS)
        if node.forwards:
            settings.update(ROUTER_SYSCTLS)
        sysctl(node.ns, settings)
    if plan.host_link is not None:
        host = plan.host_link
        ip_batch([f"link set {host.dev} alias {lab_marker(plan.lab)}",
                  f"addr add {host.address} dev {host.dev}", f"link set {host.dev} up"])
    for node in nodes:  # routes last: their next hops need the neighbours' links up
        ip_batch([f"route replace {r.dst} via {r.via} dev {r.dev}" for r in node.routes],
                 netns=node.ns)


def _node_commands(plan: NetworkPlan, node: Node) -> list[str]:
    lines = [f"link set lo alias {lab_marker(plan.lab)}", "link set lo up"]
    if node.kind == "bridge":
        lines += [f"link add {BRIDGE} type bridge stp_state 0 mcast_snooping 0",
                  f"link set {BRIDGE} up"]
    for iface in node.interfaces:
        if node.kind == "bridge" and iface.dev != BRIDGE:
            lines.append(f"link set {iface.dev} master {BRIDGE}")
        lines += [f"addr add {address} dev {iface.dev}" for address in iface.addresses]
        if not _link_down(plan, node.id, iface.dev):
            lines.append(f"link set {iface.dev} up")
    return lines


def _link_down(plan: NetworkPlan, node_id: str, dev: str) -> bool:
    return any(link.down for link in plan.links
               if (link.a, link.a_dev) == (node_id, dev) or (link.b, link.b_dev) == (node_id, dev))


def restore_routes(plan: NetworkPlan, node_ids: list[str]) -> None:
    """Put back the static routes of these nodes (the kernel drops them with a downed device)."""
    for node_id in node_ids:
        node = plan.nodes[node_id]
        ip_batch([f"route replace {r.dst} via {r.via} dev {r.dev}" for r in node.routes],
                 netns=node.ns, force=True)


def teardown(lab: str, run_dir: Path | None = None) -> Teardown:
    """Remove every namespace, veth and process of the lab's network, planned or left over.

    Safe to call any time, any number of times: after a clean `up`, after a crash half way
    through `build`, or when nothing is there.
    """
    require_root()
    known: set[str] = set()
    if run_dir is not None:
        try:
            known = {node.ns for node in load_plan(run_dir).nodes.values()}
        except NetnsError:
            known = set()
    done = Teardown(namespaces=lab_namespaces(lab, known))
    for ns in done.namespaces:
        done.processes += kill_pids(ns_pids(ns))
    if run_dir is not None:  # the impairment daemon lives in the services namespace; be sure
        pid = shaping.daemon_pid(run_dir)
        if pid is not None:
            done.processes += kill_pids([pid])
    ip_batch([f"netns del {ns}" for ns in done.namespaces], force=True)
    host_dev = host_link_name(lab)
    done.links = root_links(host_dev)
    for dev in done.links:  # normally gone with its peer; left over only after a crash
        run(["ip", "link", "del", dev], check=False)
    remaining = set(lab_namespaces(lab, known))
    if remaining:
        raise NetnsError(f"namespaces not removed: {', '.join(sorted(remaining))}")
    if run_dir is not None:
        for name in (NETWORK_FILE, IMPAIR_FILE, IMPAIR_FILE + ".applied", IMPAIRD_PID):
            (run_dir / name).unlink(missing_ok=True)
    if done.namespaces:
        log.info("netns: removed %d namespaces, %d processes", len(done.namespaces),
                 len(done.processes))
    return done
