"""Apply a link's impairment: tc netem on both veth ends, or the nfqueue daemon without netem."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from .iproute import NetnsError, run
from .plan import Link, NetworkPlan
from .state import IMPAIR_FILE, IMPAIRD_LOG, IMPAIRD_PID, write_atomic

log = logging.getLogger(__name__)

NETEM, NFQUEUE, NONE = "netem", "nfqueue", "none"
DAEMON_MODULE = "dtnlab.runtime.netns.nfqueue"


def choose_shaper(probe_ns: str) -> str:
    """netem when the kernel has sch_netem, else nfqueue when iptables is there, else none."""
    probe = run(["tc", "-n", probe_ns, "qdisc", "add", "dev", "lo", "root", "netem",
                 "delay", "1ms"], check=False)
    if probe.returncode == 0:
        run(["tc", "-n", probe_ns, "qdisc", "del", "dev", "lo", "root"], check=False)
        return NETEM
    if shutil.which("iptables"):
        log.info("sch_netem is not in this kernel (%s); impairments go through NFQUEUE",
                 probe.stderr.strip())
        return NFQUEUE
    log.warning("link impairments unavailable: the kernel has no sch_netem and iptables is "
                "missing (apt-get install iptables for the userspace fallback)")
    return NONE


def _routed_end(plan: NetworkPlan, link: Link) -> tuple[str, str]:
    for node_id, dev in ((link.a, link.a_dev), (link.b, link.b_dev)):
        if plan.nodes[node_id].kind != "bridge":
            return plan.nodes[node_id].ns, dev
    raise NetnsError(f"link {link.a}:{link.a_dev} - {link.b}:{link.b_dev} joins two bridges: "
                     "impairing it needs sch_netem in the kernel")


def _queue_rules(ns: str, dev: str, queue: int) -> list[list[str]]:
    target = ["-j", "NFQUEUE", "--queue-num", str(queue), "--queue-bypass"]
    return [["PREROUTING", "-i", dev, *target], ["POSTROUTING", "-o", dev, *target]]


def _iptables(ns: str, op: str, rule: list[str]) -> bool:
    result = run(["ip", "netns", "exec", ns, "iptables", "-w", "5", "-t", "mangle", op, *rule],
                 check=op != "-C")
    return result.returncode == 0


def apply_link(plan: NetworkPlan, index: int, run_dir: Path) -> None:
    """Make link `index` of the plan carry its impairment (an empty one clears it)."""
    link = plan.links[index]
    impairment = link.impaired
    if plan.shaper == NETEM:
        for node_id, dev in ((link.a, link.a_dev), (link.b, link.b_dev)):
            ns = plan.nodes[node_id].ns
            if impairment.active:
                run(["tc", "-n", ns, "qdisc", "replace", "dev", dev, "root", "netem",
                     *impairment.netem_args()])
            else:
                run(["tc", "-n", ns, "qdisc", "del", "dev", dev, "root"], check=False)
    elif plan.shaper == NFQUEUE:
        ns, dev = _routed_end(plan, link)
        for rule in _queue_rules(ns, dev, index + 1):
            present = _iptables(ns, "-C", rule)
            if impairment.active and not present:
                _iptables(ns, "-A", rule)
            elif not impairment.active and present:
                _iptables(ns, "-D", rule)
        sync_daemon(plan, run_dir)
    elif impairment.active:
        raise NetnsError("link impairments need sch_netem in the kernel, or iptables for the "
                         "userspace fallback (apt-get install iptables)")


def apply_all(plan: NetworkPlan, run_dir: Path) -> int:
    """Apply every link's impairment at `up`; the number of impaired links."""
    impaired = [i for i, link in enumerate(plan.links) if link.impaired.active]
    if plan.shaper == NONE:
        if impaired:
            log.warning("%d link impairments not applied (no sch_netem, no iptables)",
                        len(impaired))
        return 0
    if plan.shaper == NFQUEUE:
        skipped = []
        for index in impaired:
            try:
                _routed_end(plan, plan.links[index])
            except NetnsError as exc:
                skipped.append(index)
                log.warning("%s", exc)
        impaired = [i for i in impaired if i not in skipped]
    for index in impaired:
        apply_link(plan, index, run_dir)
    return len(impaired)


def daemon_pid(run_dir: Path) -> int | None:
    try:
        pid = int((run_dir / IMPAIRD_PID).read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return None
    return pid if DAEMON_MODULE.encode() in cmdline else None


def sync_daemon(plan: NetworkPlan, run_dir: Path) -> None:
    """Write the queues of every impaired link and have the daemon (re)read them."""
    entries = []
    for index, link in enumerate(plan.links):
        impairment = link.impaired
        if not impairment.active:
            continue
        try:
            ns, _dev = _routed_end(plan, link)
        except NetnsError:
            continue
        entries.append({"ns": ns, "queue": index + 1, "delay_ms": impairment.delay_ms,
                        "jitter_ms": impairment.jitter_ms, "loss_pct": impairment.loss_pct})
    config = run_dir / IMPAIR_FILE
    generation = time.time_ns()
    write_atomic(config, json.dumps({"generation": generation, "links": entries}, indent=1)
                 + "\n")
    pid = daemon_pid(run_dir)
    if pid is not None:
        os.kill(pid, signal.SIGHUP)
        _wait_applied(config, generation)
        return
    if not entries:
        return
    service_ns = plan.nodes[plan.service].ns
    # `setsid -f` forks the daemon off and returns: it outlives this process, and no one
    # of ours has to reap it; `down` finds it in the services namespace
    with (run_dir / IMPAIRD_LOG).open("ab") as logfile:
        subprocess.run(
            ["ip", "netns", "exec", service_ns, "setsid", "-f", sys.executable, "-m",
             DAEMON_MODULE, str(config), "--pid-file", str(run_dir / IMPAIRD_PID)],
            stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=True,
            timeout=10)
    deadline = time.monotonic() + 10
    while daemon_pid(run_dir) is None:
        if time.monotonic() > deadline:
            raise NetnsError(f"the impairment daemon did not start; see {run_dir / IMPAIRD_LOG}")
        time.sleep(0.05)
    _wait_applied(config, generation)


def _wait_applied(config: Path, generation: int, timeout: float = 5.0) -> None:
    """Return once the daemon has bound the queues of this version of its config."""
    applied = config.with_name(config.name + ".applied")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if int(applied.read_text().strip() or 0) >= generation:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    log.warning("the impairment daemon has not confirmed the new settings in %.0fs", timeout)
