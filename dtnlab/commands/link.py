"""`dtnlab link`: list a netns lab's links, or take one down, bring it up, or impair it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dtnlab.inventory.names import slugify
from dtnlab.runtime.netns.iproute import NetnsError
from dtnlab.runtime.netns.links import ACTIONS, VALUE_ACTIONS, change_link, link_state
from dtnlab.runtime.netns.state import load_plan, netns_dir

from .common import add_inventory_options, lab_dir, load_lab

EPILOG = """examples:
  dtnlab link                                   list the links of the running lab
  dtnlab link aar-l1-sw-01 aar-proc-gw-01 down  unplug the line's uplink
  dtnlab link aar-l1-sw-01 aar-proc-gw-01 up
  dtnlab link aar-core-01 brn-core-01 delay 50ms   (also: jitter 5ms, loss 5%, clear)
Needs the lab up on the netns provider (root)."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    text = "change a link of a lab running on netns: down, up, delay, jitter, loss, clear"
    parser = sub.add_parser("link", help=text, description=text, epilog=EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    add_inventory_options(parser)
    parser.add_argument("a", nargs="?", help="one end: node id (`svc` is the services node)")
    parser.add_argument("b", nargs="?", help="the other end")
    parser.add_argument("action", nargs="?", choices=ACTIONS, help="what to do")
    parser.add_argument("value", nargs="?", help="delay/jitter: 50ms, 0.5s; loss: 5%%")
    parser.add_argument("--interface", help="pick one of several links between a and b")
    parser.set_defaults(func=cmd_link)


def _folder(args: argparse.Namespace) -> Path:
    if args.lab:
        return Path(args.labs_dir) / slugify(args.lab)
    return lab_dir(args, load_lab(args))


def cmd_link(args: argparse.Namespace) -> int:
    folder = _folder(args)
    try:
        if args.a is None:
            return _list(folder)
        if args.b is None or args.action is None:
            print("error: give both ends and an action: dtnlab link A B "
                  f"{'|'.join(ACTIONS)} [VALUE]", file=sys.stderr)
            return 2
        if args.action in VALUE_ACTIONS and args.value is None:
            print(f"error: `{args.action}` needs a value, e.g. "
                  f"{'5%' if args.action == 'loss' else '50ms'}", file=sys.stderr)
            return 2
        change = change_link(netns_dir(folder.resolve()), args.a, args.b, args.action,
                             args.value, args.interface)
    except NetnsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(change.describe())
    return 0


def _list(folder: Path) -> int:
    plan = load_plan(netns_dir(folder.resolve()))
    print(f"{'a':<22}{'':<8}{'b':<22}{'':<8}{'label':<18}state")
    for link in plan.links:
        print(f"{link.a:<22}{link.a_netbox or link.a_dev:<8}{link.b:<22}"
              f"{link.b_netbox or link.b_dev:<8}{link.label[:17]:<18}{link_state(link)}")
    print(f"impairments by {plan.shaper or 'none'}; addresses from {plan.addresses_from}; "
          f"broker at {plan.broker_address} in namespace {plan.nodes[plan.service].ns}")
    return 0
