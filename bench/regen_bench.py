"""Regeneration benchmark: NetBox save -> twin reconfigured, and a one-change regen vs a generate.

Part 1 (needs `make netbox`): a small lab read from NetBox runs locally with its webhook
installed; 20 times a config context's threshold is PATCHed through NetBox's REST API and the
time until the twin engine reports the new lab (run/engine/status.json) is taken: p50, p95.
Part 2 (no service): a synthetic 2,000-device lab; a full generate into an empty folder beside
a regen of the same lab with one device moved to another rack, both in-process.
Run: python bench/regen_bench.py [--quick] [--edits 20] [--devices 2000] [--skip-netbox]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def one_run(data: dict[str, Any], run: int, tmp: Path) -> dict[str, float]:
    """Seconds of a full generate, a no-change regen and a one-move regen, in one folder."""
    from dtnlab import regen
    from dtnlab.generators import writer
    from dtnlab.generators.pipeline import render_lab
    from dtnlab.inventory.model import Lab
    from dtnlab.inventory.source import FileSource

    inventory = tmp / "inventory.json"
    inventory.write_bytes(orjson.dumps(data))
    folder = tmp / "lab"
    out: dict[str, float] = {}
    start = time.perf_counter()
    lab = FileSource(inventory, "bench").load()
    rendered = render_lab(lab, folder)
    writer.write(folder, rendered.files, rendered.inventory_digest)
    out["generate"] = time.perf_counter() - start

    def load() -> Lab:
        return FileSource(inventory, "bench").load()

    def again(name: str) -> regen.RegenResult:
        start = time.perf_counter()
        result = regen.regenerate(load, lambda _: folder, folder)
        out[name] = time.perf_counter() - start
        assert result.ok, result.error
        assert result.preview is not None
        return result

    assert not again("regen, no change").preview.changed  # type: ignore[union-attr]
    moved = json.loads(orjson.dumps(data))
    device = moved["dcim.devices"][3 + run]  # a sensor
    other = moved["dcim.racks"][-1]
    device["rack"] = {"id": other["id"], "name": other["name"]}
    device["location"] = other["location"]
    inventory.write_bytes(orjson.dumps(moved))
    preview = again("regen, one device moved").preview
    assert preview is not None
    assert len(preview.plan.moved) == 1, preview.plan.summary()
    out["files rewritten by the one-change regen"] = float(len(preview.files.changed))
    return out


def generate_vs_regen(devices: int, runs: int) -> dict[str, float]:
    """Medians over `runs` of one_run on a synthetic lab of `devices` devices."""
    from bench.synthetic import synthetic_inventory

    data = synthetic_inventory(devices)
    results = []
    for run in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            results.append(one_run(data, run, Path(tmp)))
    return {k: statistics.median(r[k] for r in results) for k in results[0]}


def netbox_edits(edits: int) -> list[float]:
    """Seconds from a NetBox REST save to the engine running the regenerated lab, per edit."""
    from tests.regen.netboxlab import NetBoxLab

    with NetBoxLab(period_s=1.0) as nb:
        context = nb.context_id("temperature-sensor")
        latencies = []
        for n in range(edits):
            before = nb.engine_digest()
            normal = [16 + (n % 2), 29 - (n % 2)]  # never the seeded [15, 30]
            start = time.monotonic()
            nb.patch("extras/config-contexts", context, {"data": nb.context_data(
                "temperature-sensor", normal)})
            nb.wait(lambda b=before: nb.engine_digest() not in (None, b), timeout=30,
                    what="the engine to run the regenerated lab")
            latencies.append(time.monotonic() - start)
        return latencies


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer edits and runs")
    parser.add_argument("--edits", type=int, default=20)
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-netbox", action="store_true")
    args = parser.parse_args()
    edits, runs = (5, 1) if args.quick else (args.edits, args.runs)
    report: dict[str, object] = {}
    print(f"regen vs generate, {args.devices} devices (median of {runs}):")
    figures = generate_vs_regen(args.devices, runs)
    for name, value in figures.items():
        unit = "" if name.startswith("files") else " s"
        print(f"  {name:<40}{value:8.3f}{unit}" if unit else f"  {name:<40}{value:8.0f}")
    report["generate_vs_regen"] = figures
    if not args.skip_netbox:
        latencies = netbox_edits(edits)
        p50, p95 = percentile(latencies, 0.5), percentile(latencies, 0.95)
        print(f"NetBox save -> twin reconfigured, {edits} edits: p50 {p50:.2f} s, "
              f"p95 {p95:.2f} s (min {min(latencies):.2f}, max {max(latencies):.2f})")
        report["save_to_reconfigured_s"] = {"p50": p50, "p95": p95, "all": latencies}
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "regen.json").write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
