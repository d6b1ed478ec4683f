"""`make bench`: run every benchmark script in bench/ in turn and collect their reports.

Each script prints its own figures beside its own baseline; this runner only sequences them
(one at a time: the machine has two cores) and writes bench/results/REPORT.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
# NetBox's last: seeding thousands of objects leaves its worker busy (netbox_bench waits for it).
ORDER = ("generate_bench", "ingest_bench", "emulators_bench", "api_bench", "netns_bench",
         "netbox_bench", "regen_bench")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="pass --quick to every script")
    parser.add_argument("--only", help="comma-separated script names, e.g. generate_bench")
    args = parser.parse_args()
    scripts = sorted(BENCH.glob("*_bench.py"),
                     key=lambda p: (ORDER.index(p.stem) if p.stem in ORDER else 99, p.stem))
    if args.only:
        chosen = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = [name for name in chosen if name not in {s.stem for s in scripts}]
        if unknown:
            parser.error(f"unknown benchmark {', '.join(unknown)}; the benchmarks are "
                         f"{', '.join(s.stem for s in scripts)}")
        scripts = [s for s in scripts if s.stem in chosen]
    report = ["# dtnlab benchmark report", ""]
    failed = 0
    for script in scripts:
        command = [sys.executable, str(script)] + (["--quick"] if args.quick else [])
        print(f"== {script.name}", flush=True)
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=BENCH.parent)
        took = time.perf_counter() - start
        print(done.stdout, end="", flush=True)
        if done.returncode:
            failed += 1
            print(done.stderr[-4000:], file=sys.stderr)
        report += [f"## {script.stem} ({took:.0f} s, exit {done.returncode})", "",
                   "```", done.stdout.rstrip(), "```", ""]
    out = BENCH / "results"
    out.mkdir(exist_ok=True)
    (out / "REPORT.md").write_text("\n".join(report) + "\n")
    print(f"report: {out / 'REPORT.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
