"""Generation benchmark: time per stage and peak memory for synthetic inventories.

Each size runs in its own process so peak RSS is that size's alone.
Run: python bench/generate_bench.py [--sizes 1000,10000,50000]; prints a table and writes
bench/results/generate.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def run_one(devices: int) -> dict[str, float]:
    """Generate a lab of `devices` devices into a temporary folder, timing every stage."""
    from bench.synthetic import synthetic_inventory
    from dtnlab.generators import writer
    from dtnlab.generators.pipeline import render_lab
    from dtnlab.inventory.source import FileSource

    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        inventory = Path(tmp) / "inventory.json"
        inventory.write_bytes(orjson.dumps(synthetic_inventory(devices)))
        start = time.perf_counter()
        lab = FileSource(inventory, "bench").load()
        timings["load+validate"] = time.perf_counter() - start
        rendered = render_lab(lab, Path(tmp) / "lab")
        timings.update({f"render:{k}": v for k, v in rendered.timings.items()})
        t = time.perf_counter()
        writer.write(Path(tmp) / "lab", rendered.files, rendered.inventory_digest)
        timings["write"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - start
        t = time.perf_counter()
        writer.write(Path(tmp) / "lab", rendered.files, rendered.inventory_digest)
        timings["rewrite-unchanged"] = time.perf_counter() - t
        timings["devices"] = len(lab.devices)
        timings["files"] = len(rendered.files)
        timings["inventory_mb"] = inventory.stat().st_size / 1e6
    timings["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return timings


def yaml_vs_json(devices: int) -> dict[str, float]:
    """Baseline for the file format: the same inventory read as YAML (C loader) and as JSON."""
    from bench.synthetic import synthetic_inventory

    data = synthetic_inventory(devices)
    as_yaml = yaml.dump(data, Dumper=yaml.CSafeDumper)
    as_json = orjson.dumps(data)
    t = time.perf_counter()
    yaml.load(as_yaml, Loader=yaml.CSafeLoader)  # noqa: S506 - the C safe loader
    yaml_s = time.perf_counter() - t
    t = time.perf_counter()
    orjson.loads(as_json)
    return {"yaml_s": yaml_s, "json_s": time.perf_counter() - t}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one)))
        return
    results = {}
    for size in (int(s) for s in args.sizes.split(",")):
        out = subprocess.run([sys.executable, __file__, "--one", str(size)],
                             capture_output=True, text=True, check=True)
        results[size] = json.loads(out.stdout)
    stages = [k for k in next(iter(results.values()))
              if k not in ("devices", "files", "inventory_mb", "peak_rss_mb")]
    print(f"{'devices':>8} {'files':>7} {'MB in':>6} " + " ".join(f"{s:>14}" for s in stages)
          + f" {'peak MB':>8}")
    for r in results.values():
        print(f"{int(r['devices']):>8} {int(r['files']):>7} {r['inventory_mb']:>6.1f} "
              + " ".join(f"{r[s]:>13.3f}s" for s in stages) + f" {r['peak_rss_mb']:>8.0f}")
    sizes = sorted(results)
    if len(sizes) > 1:
        lo, hi = results[sizes[0]], results[sizes[-1]]
        per_device_us = (hi["total"] - lo["total"]) / (hi["devices"] - lo["devices"]) * 1e6
        ratio = (hi["total"] / hi["devices"]) / (lo["total"] / lo["devices"])
        print(f"growth: {per_device_us:.0f} us per extra device; time per device at "
              f"{sizes[-1]} is {ratio:.2f}x that at {sizes[0]} (1.0 = linear)")
    formats = yaml_vs_json(10_000)
    print(f"format baseline at 10,000 devices: YAML (C loader) {formats['yaml_s']:.2f}s, "
          f"JSON {formats['json_s']:.2f}s ({formats['yaml_s'] / formats['json_s']:.0f}x)")
    out_dir = REPO / "bench" / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "generate.json").write_text(json.dumps({"sizes": results, "formats": formats},
                                                      indent=1))


if __name__ == "__main__":
    main()
