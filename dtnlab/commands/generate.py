"""`dtnlab validate`, `generate` and `diff`: inventory in, lab files out."""

from __future__ import annotations

import argparse
import time

from dtnlab.generators.pipeline import generate_lab, paused_gc
from dtnlab.generators.topology import topology_document

from .common import add_inventory_options, lab_dir, load_lab, platform_map, progress
from .regen import cmd_diff as diff_with_plan


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, func, text in (
        ("validate", cmd_validate, "check the inventory and report every problem (exit 2)"),
        ("generate", cmd_generate, "render every output into labs/<lab>/"),
        ("diff", cmd_diff, "show what a generate would change (exit 1 when anything would)"),
    ):
        parser = sub.add_parser(name, help=text, description=text)
        add_inventory_options(parser)
        parser.set_defaults(func=func)


def cmd_validate(args: argparse.Namespace) -> int:
    """The inventory, then what generate checks: containerlab's limits and JSON schema."""
    platforms = platform_map(args)
    lab = load_lab(args)
    topology_document(lab, platforms)  # raises TopologyError with every problem
    print(f"{lab.name}: {len(lab.devices)} devices ({len(lab.twins)} twins), "
          f"{len(lab.links)} links, {len(lab.levels)} hierarchy levels: valid")
    return 0


@paused_gc()
def cmd_generate(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    platforms = platform_map(args)
    lab = load_lab(args)
    loaded = time.perf_counter()
    progress(f"loaded {args.inventory} in {loaded - start:.2f}s")
    folder = lab_dir(args, lab)
    rendered, result = generate_lab(lab, folder, platforms=platforms)
    for stage, seconds in rendered.timings.items():
        progress(f"  {stage:<10} {seconds:.3f}s")
    print(f"{'generator':<12}{'files':>7}{'created':>9}{'changed':>9}")
    created, changed = set(result.created), set(result.changed)
    for name, paths in rendered.by_generator.items():
        print(f"{name:<12}{len(paths):>7}{sum(p in created for p in paths):>9}"
              f"{sum(p in changed for p in paths):>9}")
    print(f"{folder}: {len(result.created)} created, {len(result.changed)} changed, "
          f"{len(result.unchanged)} unchanged, {len(result.removed)} removed "
          f"in {time.perf_counter() - start:.2f}s")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    return diff_with_plan(args)  # files, then the running lab's twins; writes nothing
