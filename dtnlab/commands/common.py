"""Options and helpers shared by commands: where the inventory and the lab folder are."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from dtnlab.inventory.model import Lab
from dtnlab.inventory.source import FileSource
from dtnlab.regen_source import override_settings

from .netbox import add_netbox_options

DEFAULT_INVENTORY = Path("labs/demo-plant/inventory.yaml")


def add_inventory_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--inventory", "-i", type=Path,
                        default=Path(os.environ.get("DTN_INVENTORY", DEFAULT_INVENTORY)),
                        help="NetBox-shaped inventory file, .yaml or .json "
                             "(default: $DTN_INVENTORY or %(default)s)")
    parser.add_argument("--lab", "-l", help="lab name (default: from the inventory)")
    parser.add_argument("--labs-dir", type=Path, default=Path("labs"),
                        help="folder that holds one folder per lab (default: %(default)s)")
    parser.add_argument("--set", dest="settings", action="append", default=[],
                        metavar="KEY=VALUE", help="override a lab setting: mqtt_port, "
                        "mqtts_port, api_port, enterprise, enterprise_name (repeatable)")
    add_netbox_options(parser)


def load_lab(args: argparse.Namespace) -> Lab:
    """Load the lab from the chosen source; the NetBox source plugs in here."""
    source = getattr(args, "source_factory", None)
    lab: Lab = source(args).load() if source is not None else FileSource(
        args.inventory, args.lab).load()
    return override_settings(lab, getattr(args, "settings", None) or [])


def lab_dir(args: argparse.Namespace, lab: Lab) -> Path:
    return Path(args.labs_dir) / lab.name


def progress(message: str) -> None:
    """Progress lines go to stderr, and only on a terminal."""
    if sys.stderr.isatty():
        print(message, file=sys.stderr)
