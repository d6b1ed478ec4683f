"""Generation benchmark: time per stage and peak memory for synthetic inventories.

Each run is a process of its own so peak RSS is that size's alone; each size runs --runs
times and the run with the median total is shown. Every run writes into a new folder and no
run's folder is removed before all runs are done: this machine's disk is ext4 without a
journal, whose inode allocator skips inodes freed in the last 60 s (360 s while their inode
table is unwritten) by checking each one on every file creation, so creating files where many
were just deleted costs up to 1 ms a file instead of 0.03 ms. Baselines in the same script:
the same generation in one process (no forked worker), with the cyclic garbage collector left
on, on tmpfs, right after deleting a lab of the same size, and the inventory read as YAML.
Run: python bench/generate_bench.py [--sizes 1000,10000,50000] [--runs 3]; prints a table and
writes bench/results/generate.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import yaml

REPO = Path(__file__).resolve().parent.parent
TMPFS = "/dev/shm"  # the same generation without the disk: what creating 20,000 files costs
sys.path.insert(0, str(REPO))


def run_one(devices: int, where: str, gc_on: bool = False, after_delete: bool = False,
            one_process: bool = False) -> dict[str, float]:
    """Generate a lab of `devices` devices into a new folder in `where`, timing every stage.

    The folder stays: the caller removes `where` once every run is done. With `after_delete`,
    a lab of the same size is generated and deleted first, right before the timed one. With
    `one_process`, no worker is forked.
    """
    from bench.synthetic import synthetic_inventory
    from dtnlab.generators import pipeline, writer
    from dtnlab.generators.pipeline import generate_lab, paused_gc
    from dtnlab.inventory.source import FileSource

    if one_process:
        pipeline.FORK_FROM = sys.maxsize
    timings: dict[str, float] = {}
    gc_mode = contextlib.nullcontext() if gc_on else paused_gc()  # as `dtnlab generate` runs
    with gc_mode:
        tmp = tempfile.mkdtemp(dir=where)
        inventory = Path(tmp) / "inventory.json"
        inventory.write_bytes(orjson.dumps(synthetic_inventory(devices)))
        if after_delete:
            generate_lab(FileSource(inventory, "bench").load(), Path(tmp) / "deleted")
            shutil.rmtree(Path(tmp) / "deleted")
        start = time.perf_counter()
        lab = FileSource(inventory, "bench").load()
        timings["load+validate"] = time.perf_counter() - start
        t = time.perf_counter()
        rendered, _ = generate_lab(lab, Path(tmp) / "lab")
        timings["render+write"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - start
        # Each generator's own time; on a big lab they overlap across two processes.
        timings.update({f"render:{k}": v for k, v in rendered.timings.items()})
        t = time.perf_counter()
        writer.write(Path(tmp) / "lab", rendered.files, rendered.inventory_digest)
        timings["rewrite-unchanged"] = time.perf_counter() - t
        timings["devices"] = len(lab.devices)
        timings["files"] = len(rendered.files)
        timings["inventory_mb"] = inventory.stat().st_size / 1e6
    timings["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # The forked worker's peak, its pages shared with this process counted again.
    timings["worker_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
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


def median_run(devices: int, runs: int, where: str, gc_on: bool = False,
               after_delete: bool = False, one_process: bool = False) -> dict[str, Any]:
    """The run with the median total out of `runs`, each in a fresh process."""
    done = []
    for _ in range(runs):
        argv = [sys.executable, __file__, "--one", str(devices), "--dir", where]
        argv += (["--gc-on"] if gc_on else []) + (["--after-delete"] if after_delete else [])
        argv += ["--one-process"] if one_process else []
        out = subprocess.run(argv, capture_output=True, text=True, check=True)
        done.append(json.loads(out.stdout))
    done.sort(key=lambda r: r["total"])
    return {**done[len(done) // 2], "runs": [r["total"] for r in done]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--gc-on", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--after-delete", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--one-process", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.dir, args.gc_on, args.after_delete,
                                    args.one_process)))
        return
    disk = tempfile.mkdtemp(prefix="dtnlab-generate-bench-")
    memory = tempfile.mkdtemp(prefix="dtnlab-generate-bench-", dir=TMPFS)
    try:
        measure(args, disk, memory)
    finally:
        shutil.rmtree(disk)
        shutil.rmtree(memory)


def measure(args: argparse.Namespace, disk: str, memory: str) -> None:
    """Every series and baseline; runs write into `disk` (or `memory`), removed afterwards."""
    results = {size: median_run(size, args.runs, disk)
               for size in map(int, args.sizes.split(","))}
    stages = [k for k in next(iter(results.values()))
              if k not in ("devices", "files", "inventory_mb", "peak_rss_mb", "worker_rss_mb",
                           "runs")]
    print(f"{'devices':>8} {'files':>7} {'MB in':>6} " + " ".join(f"{s:>14}" for s in stages)
          + f" {'peak MB':>8} {'worker MB':>9}")
    for r in results.values():
        print(f"{int(r['devices']):>8} {int(r['files']):>7} {r['inventory_mb']:>6.1f} "
              + " ".join(f"{r[s]:>13.3f}s" for s in stages)
              + f" {r['peak_rss_mb']:>8.0f} {r['worker_rss_mb']:>9.0f}")
    sizes = sorted(results)
    if len(sizes) > 1:
        lo, hi = results[sizes[0]], results[sizes[-1]]
        per_device_us = (hi["total"] - lo["total"]) / (hi["devices"] - lo["devices"]) * 1e6
        ratio = (hi["total"] / hi["devices"]) / (lo["total"] / lo["devices"])
        print(f"growth: {per_device_us:.0f} us per extra device; time per device at "
              f"{sizes[-1]} is {ratio:.2f}x that at {sizes[0]} (1.0 = linear)")
    for size, r in results.items():
        print(f"totals of the {args.runs} runs at {size}: "
              + ", ".join(f"{t:.2f}s" for t in r["runs"]))
    base = 10_000 if 10_000 in results else sizes[0]
    on_disk = results[base]
    serial = median_run(base, args.runs, disk, one_process=True)
    print(f"one-process baseline at {base:,} devices: {serial['total']:.2f}s without the forked "
          f"worker vs {on_disk['total']:.2f}s with it "
          f"({serial['total'] / on_disk['total']:.2f}x)")
    with_gc = median_run(base, args.runs, disk, gc_on=True)
    print(f"garbage collector baseline at {base:,} devices: {with_gc['total']:.2f}s with the "
          f"collector on vs {on_disk['total']:.2f}s paused "
          f"({with_gc['total'] / on_disk['total']:.2f}x)")
    in_memory = median_run(base, args.runs, memory)
    print(f"tmpfs baseline at {base:,} devices: {in_memory['total']:.2f}s in {TMPFS} vs "
          f"{on_disk['total']:.2f}s on the disk (render + write there "
          f"{in_memory['render+write']:.2f}s vs {on_disk['render+write']:.2f}s)")
    churned = median_run(base, args.runs, disk, after_delete=True)
    print(f"deleted-files baseline at {base:,} devices: {churned['total']:.2f}s right after "
          f"deleting a lab of the same size in the same folder vs {on_disk['total']:.2f}s "
          f"({churned['total'] / on_disk['total']:.1f}x)")
    formats = yaml_vs_json(10_000)
    print(f"format baseline at 10,000 devices: YAML (C loader) {formats['yaml_s']:.2f}s, "
          f"JSON {formats['json_s']:.2f}s ({formats['yaml_s'] / formats['json_s']:.0f}x)")
    out_dir = REPO / "bench" / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "generate.json").write_text(json.dumps(
        {"sizes": results, "one_process": serial, "gc_on": with_gc, "tmpfs": in_memory,
         "after_delete": churned, "formats": formats}, indent=1))


if __name__ == "__main__":
    main()
