"""The `dtnlab` command line: one entry point, one subcommand per action."""

from __future__ import annotations

import argparse
import logging
import sys

from dtnlab.generators.platforms import PlatformMapError
from dtnlab.inventory.errors import InventoryError
from dtnlab.inventory.netbox_client import NetBoxError

from .commands import clab, generate, lab, link, netbox, regen

COMMAND_GROUPS = (generate, lab, link, netbox, regen, clab)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dtnlab", description="Digital Twin Network labs generated from a NetBox inventory."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except InventoryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except NetBoxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except PlatformMapError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return PlatformMapError.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
