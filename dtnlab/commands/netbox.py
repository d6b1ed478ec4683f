"""`dtnlab netbox export|seed`, and the `--netbox` source option of validate, generate and diff."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from dtnlab.inventory import netbox_export
from dtnlab.inventory.netbox_client import NetBoxError
from dtnlab.inventory.netbox_seed import seed
from dtnlab.inventory.netbox_source import NetBoxSource
from dtnlab.inventory.source import read_inventory_file

REPO = Path(__file__).resolve().parents[2]
DEFAULT_INVENTORY = Path("labs/demo-plant/inventory.yaml")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    text = "read a lab's inventory from NetBox, or load an inventory into NetBox"
    parser = sub.add_parser("netbox", help=text, description=text)
    actions = parser.add_subparsers(dest="netbox_command", metavar="ACTION", required=True)

    text = "write the selection as a NetBox-shaped inventory (JSON for .json or > 1000 devices)"
    export = actions.add_parser("export", help=text, description=text)
    export.add_argument("--out", "-o", type=Path, required=True, help="the file to write")
    export.add_argument("--format", choices=("auto", "json", "yaml"), default="auto",
                        help="auto: JSON when --out ends in .json or the selection is large")
    export.add_argument("--lab", "-l", help="lab name written into the file's dtnlab settings")
    add_connection_options(export)
    add_selection_options(export)
    export.set_defaults(func=cmd_export)

    text = "create or update NetBox objects from an inventory file (idempotent)"
    seeder = actions.add_parser("seed", help=text, description=text)
    seeder.add_argument("--inventory", "-i", type=Path,
                        default=Path(os.environ.get("DTN_INVENTORY", DEFAULT_INVENTORY)),
                        help="NetBox-shaped inventory, .yaml or .json (default: %(default)s)")
    add_connection_options(seeder)
    seeder.set_defaults(func=cmd_seed)

    from .regen import register_hook  # late: regen imports this module

    register_hook(actions)


def add_netbox_options(parser: argparse.ArgumentParser) -> None:
    """`--netbox` and its options, for the commands that load a lab (see common.load_lab)."""
    group = parser.add_argument_group("NetBox source (instead of --inventory)")
    from_env = os.environ.get("DTN_SOURCE", "").lower() == "netbox"
    group.add_argument("--netbox", dest="source_factory", action="store_const",
                       const=netbox_source, default=netbox_source if from_env else None,
                       help="read the lab from NetBox (default when DTN_SOURCE=netbox)")
    add_connection_options(group)
    add_selection_options(group)


def add_connection_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument("--netbox-url", help="NetBox URL (default: $NETBOX_URL, else "
                        ".netbox/netbox.env written by `make netbox`)")
    parser.add_argument("--netbox-token", help="API token (default: $NETBOX_TOKEN, else "
                        ".netbox/netbox.env); prefer the environment to the command line")
    parser.add_argument("--ca-file", help="CA bundle (PEM) that signed NetBox's certificate")
    parser.add_argument("--no-verify", action="store_true",
                        help="do not verify NetBox's TLS certificate (lab instances only)")


def add_selection_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument("--site", action="append", default=[], metavar="SLUG",
                        help="select the devices of this site (repeatable: any of them)")
    parser.add_argument("--tenant", metavar="SLUG", help="select the devices of this tenant")
    parser.add_argument("--tag", action="append", default=[], metavar="SLUG",
                        help="select devices with this tag (repeatable: any of them)")
    parser.add_argument("--interface-tag", action="append", default=[], metavar="SLUG",
                        help="only interfaces with this tag join the lab (repeatable)")


def env_file() -> Path:
    """netboxctl's env file: $DTN_NETBOX_HOME/netbox.env, else .netbox/ here or in the repo."""
    home = os.environ.get("DTN_NETBOX_HOME")
    if home:
        return Path(home) / "netbox.env"
    local = Path(".netbox/netbox.env")
    return local if local.exists() else REPO / ".netbox" / "netbox.env"


def credentials(args: argparse.Namespace) -> tuple[str, str]:
    """URL and token: the flags, else the environment, else the env file of `make netbox`."""
    saved: dict[str, str] = {}
    path = env_file()
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            name, sep, value = line.partition("=")
            if sep and not name.startswith("#"):
                saved[name.strip()] = value.strip()
    url = args.netbox_url or os.environ.get("NETBOX_URL") or saved.get("NETBOX_URL", "")
    token = args.netbox_token or os.environ.get("NETBOX_TOKEN") or saved.get("NETBOX_TOKEN", "")
    if not url:
        raise NetBoxError(f"no NetBox URL: pass --netbox-url, set NETBOX_URL, or run "
                          f"`make netbox` (writes {path})")
    return url, token


def netbox_source(args: argparse.Namespace) -> NetBoxSource:
    url, token = credentials(args)
    return NetBoxSource(url, token, sites=args.site, tenant=args.tenant, tags=args.tag,
                        interface_tags=args.interface_tag, ca_file=args.ca_file,
                        verify=not args.no_verify, lab=getattr(args, "lab", None))


def cmd_export(args: argparse.Namespace) -> int:
    source = netbox_source(args)
    data = source.fetch()
    devices = len(data.get("dcim.devices") or [])
    if not devices:
        raise NetBoxError(f"the selection ({source.describe()}) matches no device")
    out = netbox_export.choose_path(args.out, devices, args.format)
    if out != args.out:
        print(f"note: {devices} devices: writing JSON to {out} (YAML this large loads 30-90x "
              "slower)", file=sys.stderr)
    netbox_export.write(data, out)
    counts = ", ".join(f"{n} {ep.split('.')[-1]}" for ep, n in source.stats.objects.items() if n)
    print(f"{out}: {counts}; read in {source.stats.seconds:.2f}s with "
          f"{source.stats.requests} requests")
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    url, token = credentials(args)
    data = read_inventory_file(args.inventory)
    report = seed(data, url, token, verify=not args.no_verify, ca_file=args.ca_file)
    print(f"{'endpoint':<28}{'created':>9}{'updated':>9}{'unchanged':>11}")
    for endpoint, counts in report.counts.items():
        print(f"{endpoint:<28}{counts['created']:>9}{counts['updated']:>9}"
              f"{counts['unchanged']:>11}")
    print(f"{args.inventory} -> {url}: {report.total('created')} created, "
          f"{report.total('updated')} updated, {report.total('unchanged')} unchanged in "
          f"{report.seconds:.1f}s with {report.requests} requests")
    if report.problems:
        lines = "\n".join(f"  {p}" for p in report.problems)
        print(f"error: NetBox did not take {len(report.problems)} object(s):\n{lines}",
              file=sys.stderr)
        return int(NetBoxError.exit_code)
    return 0
