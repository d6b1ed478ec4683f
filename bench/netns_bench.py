"""netns provider benchmark: the demo plant's network, up and down, and a lab's links at work.

Part 1, the demo plant (60 nodes, 59 cables, 58 twins) on netns: the network alone (namespaces,
veths, addresses, routes, netem) built and torn down (median of 3), then `up` until every twin
is healthy, then `down`. Baseline in the same script: the same lab folder on the local provider
(processes on loopback, no network), up until every twin is healthy, and down.
Part 2, two lines of the demo plant (telemetry every 1 s, heartbeat 3 s): the twin engine's
publish -> state lag (median of its status samples) as built (the baseline) and with 40 ms on
the services link; then line 1's uplink is cut until its twins are offline, and restored until
they are healthy again.
Needs root and iproute2 (network namespaces). Run: python bench/netns_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DEMO_LAB, SMALL_LAB = "nb-demo", "nb-small"
DELAY = "40ms"


def until(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until `check()` holds; fails the benchmark after `timeout`."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)
    return time.monotonic() - start


def all_healthy(provider: Any, expected: int) -> bool:
    states = provider.status(wait_s=1.0).twins.states
    return len(states) >= expected and set(states.values()) == {"healthy"}


def up_healthy(provider: Any, twins: int) -> float:
    """Seconds from `up` until every twin is healthy."""
    start = time.monotonic()
    provider.up(timeout=180)
    until(lambda: all_healthy(provider, twins), 120, "every twin healthy")
    return time.monotonic() - start


def timed_down(provider: Any) -> float:
    start = time.monotonic()
    provider.down()
    return time.monotonic() - start


def demo_plant(tmp: Path, builds: int) -> dict[str, float]:
    """Part 1: network build and teardown, up to healthy, down; local provider as baseline."""
    from dtnlab.runtime.netns import build as netns_build
    from dtnlab.runtime.providers.local import LocalProvider
    from dtnlab.runtime.providers.netns import NetnsProvider
    from tests.runtime.netns.netnslab import generate_demo_lab

    folder = generate_demo_lab(tmp / DEMO_LAB, DEMO_LAB)
    twins = len(json.loads((folder / "runtime.json").read_text())["twins"])
    netns = NetnsProvider(folder)
    netns.down()  # what an interrupted earlier run left
    plan = netns.plan()
    build_s, teardown_s = [], []
    for _ in range(builds):
        start = time.monotonic()
        netns_build.build(plan, netns.run_dir)
        build_s.append(time.monotonic() - start)
        start = time.monotonic()
        netns_build.teardown(plan.lab, netns.run_dir)
        teardown_s.append(time.monotonic() - start)
    out = {"nodes": len(plan.nodes), "links": len(plan.links), "twins": twins,
           "build_s": statistics.median(build_s), "teardown_s": statistics.median(teardown_s)}
    try:
        out["netns_up_healthy_s"] = up_healthy(netns, twins)
    finally:
        out["netns_down_s"] = timed_down(netns)
    local = LocalProvider(folder)
    try:
        out["local_up_healthy_s"] = up_healthy(local, twins)
    finally:
        out["local_down_s"] = timed_down(local)
    return out


def lag_ms(lab_dir: Path, count: int) -> float:
    """Median publish -> state lag over `count` engine status writes (one a second)."""
    from dtnlab.runtime.providers.states import engine_status

    samples: list[float] = []
    last = 0.0
    deadline = time.monotonic() + count * 2 + 10
    while len(samples) < count and time.monotonic() < deadline:
        status = engine_status(lab_dir)
        if status and status.get("ts") != last and status.get("lag_s") is not None:
            last = status["ts"]
            samples.append(float(status["lag_s"]) * 1000)
        time.sleep(0.2)
    if not samples:
        raise SystemExit(f"{lab_dir}: the engine reported no lag")
    return statistics.median(samples)


def small_lab(tmp: Path, samples: int) -> dict[str, float]:
    """Part 2: lag with and without 40 ms on the services link; a line's uplink cut."""
    from dtnlab.runtime.netns.links import change_link
    from dtnlab.runtime.providers.netns import NetnsProvider
    from tests.runtime.netns.netnslab import LINE1_TWINS, UPLINK_L1, generate_small_lab

    folder = generate_small_lab(tmp / SMALL_LAB, SMALL_LAB, period_s=1.0, heartbeat_s=3.0)
    twins = len(json.loads((folder / "runtime.json").read_text())["twins"])
    provider = NetnsProvider(folder)
    provider.down()
    line1 = (*LINE1_TWINS, UPLINK_L1[0])
    out: dict[str, float] = {}
    try:
        up_healthy(provider, twins)
        time.sleep(2.0)  # past the connect burst
        out["lag_ms"] = lag_ms(folder, samples)
        change_link(provider.run_dir, "svc", "aar-core-01", "delay", DELAY)
        time.sleep(1.5)
        out["lag_delayed_ms"] = lag_ms(folder, samples)
        change_link(provider.run_dir, "svc", "aar-core-01", "clear")

        def line1_is(state: str) -> bool:
            states = provider.status(wait_s=1.0).twins.states
            return all(states.get(t) == state for t in line1)

        change_link(provider.run_dir, *UPLINK_L1, "down")
        out["uplink_down_offline_s"] = until(lambda: line1_is("offline"), 30,
                                             "line 1 twins offline")
        change_link(provider.run_dir, *UPLINK_L1, "up")
        out["uplink_up_healthy_s"] = until(lambda: line1_is("healthy"), 60,
                                           "line 1 twins healthy")
    finally:
        provider.down()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="one network build, 3 lag samples each way")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("netns_bench needs root (network namespaces and veth links)", file=sys.stderr)
        return 2
    builds, samples = (1, 3) if args.quick else (3, 8)
    with tempfile.TemporaryDirectory(prefix="netns-bench-") as tmp:
        demo = demo_plant(Path(tmp), builds)
        print(f"demo plant on netns ({demo['nodes']} namespaces, {demo['links']} veth links "
              f"with the services', {demo['twins']} twins): network built in "
              f"{demo['build_s']:.2f} s and torn down in {demo['teardown_s']:.2f} s "
              f"(median of {builds}); up with every twin healthy in "
              f"{demo['netns_up_healthy_s']:.1f} s, down in {demo['netns_down_s']:.1f} s")
        print(f"baseline, the same lab on the local provider (no network): every twin healthy "
              f"in {demo['local_up_healthy_s']:.1f} s, down in {demo['local_down_s']:.1f} s")
        small = small_lab(Path(tmp), samples)
    print(f"two lines (1 s period, 3 s heartbeat): publish -> state lag median "
          f"{small['lag_ms']:.1f} ms as built (baseline), {small['lag_delayed_ms']:.1f} ms with "
          f"{DELAY} on the services link")
    print(f"line 1 uplink down: its twins offline after {small['uplink_down_offline_s']:.1f} s; "
          f"link up: healthy again after {small['uplink_up_healthy_s']:.1f} s")
    out = REPO / "bench" / "results" / f"netns{'-quick' if args.quick else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"demo": demo, "small": small}, indent=1) + "\n")
    print(f"wrote {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
