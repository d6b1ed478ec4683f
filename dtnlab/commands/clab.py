"""`dtnlab clab prepare`: make a generated lab folder ready for a plain `containerlab deploy`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dtnlab.inventory.names import slugify
from dtnlab.runtime.providers import ProviderError
from dtnlab.runtime.providers.clab import prepare
from dtnlab.runtime.providers.clab_files import TOPOLOGY

from .common import add_inventory_options, lab_dir, load_lab

PREPARE_TEXT = ("give each container user the bound files it reads (0600) and the folders it "
                "writes (run/clab/), as `dtnlab up --provider clab` does before deploying; "
                "run as root before `containerlab deploy`")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    clab = sub.add_parser("clab", help="containerlab helpers for a generated lab",
                          description="containerlab helpers for a generated lab")
    actions = clab.add_subparsers(dest="clab_command", metavar="ACTION", required=True)
    prep = actions.add_parser("prepare", help=PREPARE_TEXT, description=PREPARE_TEXT)
    add_inventory_options(prep)
    prep.set_defaults(func=cmd_prepare)


def cmd_prepare(args: argparse.Namespace) -> int:
    folder = Path(args.labs_dir) / slugify(args.lab) if args.lab else lab_dir(args,
                                                                               load_lab(args))
    try:
        changed = prepare(folder)
    except ProviderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{folder}: {len(changed)} bound files and folders given to their container users"
          if changed else f"{folder}: every bound file and folder already belongs to its "
          "container user")
    print(f"deploy with: cd {folder} && containerlab deploy -t {TOPOLOGY}")
    return 0
