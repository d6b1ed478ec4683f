"""`python -m dtnlab.runtime emulator`: run a lab's device emulators (all, some, or a shard)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .runner import EmulatorOptions, run
from .signals import DAY_S
from .spec import parse_shard


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dtnlab.runtime emulator",
        description="Emulate a lab's twinned devices, each with its own MQTT connection.")
    parser.add_argument("--lab", type=Path, required=True, help="the generated lab folder")
    parser.add_argument("--device", action="append", default=[], metavar="ID",
                        help="emulate only this device (repeatable; default: every twin)")
    parser.add_argument("--shard", type=parse_shard, metavar="K/N",
                        help="only the devices whose id hashes to K of N (0 <= K < N)")
    parser.add_argument("--tls", action="store_true", help="use the broker's TLS listener")
    parser.add_argument("--day-s", type=float, default=DAY_S,
                        help="length of the daily cycle in seconds (default: %(default)s)")
    parser.add_argument("--name", default="", help="process name in run/emulator/<name>.json")
    args = parser.parse_args(argv)
    options = EmulatorOptions(device_ids=tuple(args.device), shard=args.shard, tls=args.tls,
                              day_s=args.day_s, name=args.name)
    return run(args.lab.resolve(), options)
