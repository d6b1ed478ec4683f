"""Thin, logged wrappers over iproute2 (`ip`, `tc`) and the process table of a namespace."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

COMMAND_TIMEOUT_S = 60.0


class NetnsError(RuntimeError):
    """A namespace, link or impairment could not be made or changed; the message says why."""


def require_root() -> None:
    """The netns provider creates namespaces and links: that needs root (CAP_NET_ADMIN)."""
    if os.geteuid() != 0:
        raise NetnsError("the netns provider needs root (network namespaces and veth links); "
                         "run as root, or use the local provider")
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            raise NetnsError(f"`{tool}` not found: install iproute2 (apt-get install iproute2)")


def run(args: Sequence[str], stdin: str | None = None, check: bool = True,
        timeout: float = COMMAND_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """Run one command; a failure raises NetnsError with the command and its stderr."""
    log.debug("run: %s", " ".join(args))
    try:
        result = subprocess.run(list(args), input=stdin, capture_output=True, text=True,
                                timeout=timeout, check=False)
    except FileNotFoundError:
        raise NetnsError(f"`{args[0]}` not found") from None
    except subprocess.TimeoutExpired:
        raise NetnsError(f"`{' '.join(args)}` did not finish in {timeout:.0f}s") from None
    if check and result.returncode != 0:
        raise NetnsError(f"`{' '.join(args)}` failed: {result.stderr.strip() or result.stdout}")
    return result


def ip_batch(lines: Sequence[str], netns: str | None = None, force: bool = False) -> None:
    """Run many `ip` commands in one process (`ip -batch -`), in `netns` when given.

    Args:
        force: go on past a failing line (teardown), instead of stopping at the first one.
    """
    if not lines:
        return
    args = ["ip"] + (["-n", netns] if netns else []) + (["-force"] if force else [])
    result = run([*args, "-batch", "-"], stdin="\n".join(lines) + "\n", check=False)
    if result.returncode != 0 and not force:
        where = f" in {netns}" if netns else ""
        raise NetnsError(f"ip -batch{where} failed: {result.stderr.strip()}")


def namespaces() -> list[str]:
    """Every named network namespace (`ip netns list`)."""
    result = run(["ip", "-j", "netns", "list"], check=False)
    text = result.stdout.strip()
    if result.returncode != 0 or not text:
        return []
    return [str(entry["name"]) for entry in json.loads(text)]


def ns_alias(netns: str) -> str:
    """The alias of the namespace's `lo`: the lab that owns it (empty when unmarked)."""
    result = run(["ip", "-n", netns, "-j", "link", "show", "lo"], check=False)
    if result.returncode != 0 or not result.stdout.strip():
        return ""
    entries = json.loads(result.stdout)
    return str(entries[0].get("ifalias", "")) if entries else ""


def ns_pids(netns: str) -> list[int]:
    result = run(["ip", "netns", "pids", netns], check=False)
    return [int(p) for p in result.stdout.split() if p.strip().isdigit()]


def root_links(prefix: str) -> list[str]:
    """Interfaces of the host's namespace whose name starts with `prefix`."""
    result = run(["ip", "-j", "link", "show"], check=False)
    if result.returncode != 0 or not result.stdout.strip():
        return []
    return [str(e["ifname"]) for e in json.loads(result.stdout)
            if str(e.get("ifname", "")).startswith(prefix)]


def kill_pids(pids: Sequence[int], grace_s: float = 3.0) -> list[int]:
    """SIGTERM, then SIGKILL whatever is left after `grace_s`; the pids that were signalled."""
    signalled = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
            signalled.append(pid)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + grace_s
    alive = list(signalled)
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [pid for pid in alive if _alive(pid)]
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return signalled


def _alive(pid: int) -> bool:
    """Running, not a zombie (a zombie child is left for its owner to reap, not reaped here)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    try:
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except IndexError:
        return False


def sysctl(netns: str, settings: dict[str, str]) -> None:
    """Set sysctls inside a namespace (one `ip netns exec` for all of them)."""
    if not settings:
        return
    run(["ip", "netns", "exec", netns, "sysctl", "-q", "-w",
         *(f"{key}={value}" for key, value in settings.items())])
