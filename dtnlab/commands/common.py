"""Options and helpers shared by commands: where the inventory and the lab folder are."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from dtnlab.generators.platforms import PlatformMap, load_platform_map
from dtnlab.inventory.model import Lab
from dtnlab.inventory.source import FileSource
from dtnlab.regen_source import override_settings, recorded_platform_map

from .netbox import add_netbox_options

DEFAULT_INVENTORY = Path("labs/demo-plant/inventory.yaml")
PLATFORM_MAP_ENV = "DTN_PLATFORM_MAP"


def add_inventory_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--inventory", "-i", type=Path,
                        default=Path(os.environ.get("DTN_INVENTORY", DEFAULT_INVENTORY)),
                        help="NetBox-shaped inventory file, .yaml or .json "
                             "(default: $DTN_INVENTORY or %(default)s)")
    parser.add_argument("--lab", "-l", help="lab name (default: from the inventory)")
    parser.add_argument("--labs-dir", type=Path, default=Path("labs"),
                        help="folder that holds one folder per lab (default: %(default)s)")
    parser.add_argument("--set", dest="settings", action="append", default=[],
                        metavar="KEY=VALUE", help="override a lab setting of the inventory's "
                        "`dtnlab` key, e.g. api_port=9000, telemetry_qos=1, "
                        "'api_users={alice: operator}' (repeatable)")
    parser.add_argument("--platform-map", type=Path, metavar="FILE",
                        default=_env_path(PLATFORM_MAP_ENV),
                        help="YAML platform map merged over the shipped one (default: "
                             f"${PLATFORM_MAP_ENV}; regen and diff: the map the lab was "
                             "brought up with)")
    add_netbox_options(parser)


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def load_lab(args: argparse.Namespace) -> Lab:
    """Load the lab from the chosen source; the NetBox source plugs in here."""
    source = getattr(args, "source_factory", None)
    lab: Lab = source(args).load() if source is not None else FileSource(
        args.inventory, args.lab).load()
    return override_settings(lab, getattr(args, "settings", None) or [])


def lab_dir(args: argparse.Namespace, lab: Lab) -> Path:
    return Path(args.labs_dir) / lab.name


def platform_map(args: argparse.Namespace, folder: Path | None = None) -> PlatformMap:
    """The platform map: --platform-map or $DTN_PLATFORM_MAP, else (given a lab folder) the one
    the lab was brought up with, else the shipped one.

    Raises:
        PlatformMapError: naming the file and each bad platform and field.
    """
    path = getattr(args, "platform_map", None)
    if path is None and folder is not None:
        path = recorded_platform_map(folder)
    return load_platform_map(path)


def progress(message: str) -> None:
    """Progress lines go to stderr, and only on a terminal."""
    if sys.stderr.isatty():
        print(message, file=sys.stderr)
