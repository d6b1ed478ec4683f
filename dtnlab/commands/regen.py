"""`dtnlab regen` and `dtnlab watch`: bring a lab, running or not, in step with its inventory."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from dtnlab import regen
from dtnlab.inventory.model import Lab
from dtnlab.inventory.names import slugify
from dtnlab.inventory.netbox_client import NetBoxError
from dtnlab.inventory.netbox_hooks import ChangeLog, WatchScope, change_relevant, changed_type
from dtnlab.inventory.source import FileSource, lab_settings, read_inventory_file
from dtnlab.regen_clab import clab_commands, runs_on_clab
from dtnlab.regen_commit import staged_secrets
from dtnlab.regen_source import record_source as record_regen_source
from dtnlab.runtime.labfiles import read_json
from dtnlab.runtime.regen_record import STATUS_FILE

from .common import add_inventory_options, lab_dir, load_lab, platform_map
from .netbox import netbox_source

WATCH_STATE = Path("run/watch.json")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    text = ("read the inventory again and apply only what changed to the lab and the running "
            "lab; a failure leaves both as they were")
    parser = sub.add_parser("regen", help=text, description=text)
    add_inventory_options(parser)
    parser.add_argument("--trigger", choices=("cli", "webhook", "watch"), default="cli",
                        help="who asks, recorded in run/regen.json (default: %(default)s)")
    parser.add_argument("--no-apply", action="store_true",
                        help="write the files but do not signal the running lab")
    parser.add_argument("--wait", type=float, default=10.0,
                        help="seconds to wait for the running nodes to apply it (0: do not "
                             "wait; default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print run/regen.json's content")
    parser.set_defaults(func=cmd_regen)

    text = ("poll NetBox's change log and regen on every relevant change (the fallback when "
            "NetBox cannot reach the lab API for webhooks)")
    parser = sub.add_parser("watch", help=text, description=text)
    add_inventory_options(parser)
    parser.add_argument("--interval", type=float, default=2.0,
                        help="seconds between polls (default: %(default)s)")
    parser.add_argument("--debounce", type=float, default=1.0,
                        help="wait this long without new changes before a regen (default: "
                             "%(default)s)")
    parser.add_argument("--once", action="store_true",
                        help="poll once, regen if anything relevant changed, and exit")
    parser.set_defaults(func=cmd_watch)


def fallback_folder(args: argparse.Namespace) -> Path | None:
    """Where to record a regen that fails before the lab is known: --lab, else the file's name."""
    if args.lab:
        return Path(args.labs_dir) / slugify(args.lab)
    if getattr(args, "source_factory", None) is not None:
        sites = getattr(args, "site", []) or []
        return Path(args.labs_dir) / slugify(sites[0]) if len(sites) == 1 else None
    try:
        data = read_inventory_file(args.inventory)
        source = FileSource(args.inventory)
        default = source.path.parent.name if source.path.stem == "inventory" else source.path.stem
        return Path(args.labs_dir) / lab_settings(data, None, default, str(args.inventory)).lab
    except Exception:  # noqa: BLE001 - a guess only; the regen itself reports the real error
        return None


def run_regen(args: argparse.Namespace, trigger: str, apply: bool = True) -> regen.RegenResult:
    return regen.regenerate(lambda: load_lab(args), lambda lab: lab_dir(args, lab),
                            fallback_folder(args), trigger=trigger, apply=apply,
                            platforms=lambda folder: platform_map(args, folder))


def report(result: regen.RegenResult) -> None:
    """Print what a regen did: files, running objects, nodes signalled, or every problem."""
    if not result.ok:
        print(f"error: regen failed; the lab is left as it was\n  {result.error}",
              file=sys.stderr)
        for problem in result.problems:
            print(f"  {problem}", file=sys.stderr)
        if result.folder is not None:
            print(f"  (recorded in {result.folder / STATUS_FILE})", file=sys.stderr)
        return
    pv = result.preview
    assert pv is not None
    if not pv.changed:
        if not result.signalled:
            print(f"{pv.folder}: up to date, nothing to do")
            return
        # the files were written before, but the running lab could not be told then
        print(f"{pv.folder}: files up to date; the running lab is told again")
        print("signalled: " + " ".join(result.signalled))
        return
    files = pv.files
    print(f"{pv.folder}: {len(files.created)} created, {len(files.changed)} changed, "
          f"{len(files.removed)} removed, {len(files.unchanged)} unchanged")
    for line in pv.file_lines():
        print(f"  {line}")
    lines = pv.plan.lines()
    if lines:
        print(f"running objects ({len(pv.plan.unchanged)} twins untouched):")
        for line in lines:
            print(f"  {line}")
    if result.signalled:
        print("signalled: " + " ".join(result.signalled))
    elif runs_on_clab(pv.folder):
        commands = clab_commands(pv)
        if not commands:
            print("the lab runs under containerlab: its nodes need nothing")
            return
        print("the lab runs under containerlab: apply the change with (containerlab 0.78 or "
              "later; on 0.77 use `apply` instead of `deploy`)")
        for command in commands:
            print(f"  {command}")
    elif not result.running:
        print("the lab is not running: files only")


def cmd_regen(args: argparse.Namespace) -> int:
    result = run_regen(args, args.trigger, apply=not args.no_apply)
    if args.json:
        doc = read_json(result.folder / STATUS_FILE) if result.folder else None
        print(json.dumps(doc or result.status_doc(), indent=1, sort_keys=True))
    else:
        report(result)
    if result.ok and result.signalled and args.wait > 0 and result.preview is not None:
        waited = regen.wait_applied(result.preview.folder,
                                    result.preview.rendered.inventory_digest, args.wait)
        if waited is not None and not args.json:
            print(f"applied by the running lab in {waited:.2f}s")
        elif waited is None and not args.json:
            print(f"warning: the running lab did not confirm within {args.wait:g}s; "
                  "see `dtnlab logs`", file=sys.stderr)
    return result.exit_code


# -- watch ---------------------------------------------------------------------------------

def _scope(changes: ChangeLog, args: argparse.Namespace, lab: Lab | None) -> WatchScope:
    devices = [d.netbox_id for d in lab.devices if d.netbox_id is not None] if lab else []
    return changes.scope_of(args.site, devices)


def _save_state(folder: Path, last_id: int) -> None:
    path = folder / WATCH_STATE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"last_id": last_id, "ts": time.time()}) + "\n")


def _load_state(folder: Path | None) -> int | None:
    if folder is None:
        return None
    doc: dict[str, Any] | None = read_json(folder / WATCH_STATE)
    return int(doc["last_id"]) if doc and "last_id" in doc else None


def _stop_on_signals() -> threading.Event:
    """SIGTERM and SIGINT stop the watch between polls: a regen under way is never cut short."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def cmd_watch(args: argparse.Namespace) -> int:
    if getattr(args, "source_factory", None) is None:
        raise NetBoxError("watch reads NetBox's change log: pass --netbox (or DTN_SOURCE=netbox)")
    stop = threading.Event() if args.once else _stop_on_signals()
    changes = ChangeLog(netbox_source(args).client)
    folder = fallback_folder(args)
    saved = _load_state(folder)
    if saved is None:  # first start: get in step, then read the log from its end
        last_id = changes.latest_id()
        result = run_regen(args, "watch")
        report(result)
        folder = result.folder or folder
        lab = result.preview.lab if result.preview else None
    else:  # resume: every change since the last one seen is read from the log
        last_id, lab = saved, load_lab(args)
    scope = _scope(changes, args, lab)
    print(f"watching NetBox's change log from entry {last_id} every {args.interval:g}s",
          file=sys.stderr, flush=True)
    while not stop.is_set():
        batch = changes.since(last_id)
        relevant = [c for c in batch if change_relevant(c, scope)]
        if batch:
            last_id = max(int(c["id"]) for c in batch)
        while relevant and not args.once and not stop.wait(args.debounce):
            more = changes.since(last_id)  # let the burst of edits end first
            if not more:
                break
            last_id = max(int(c["id"]) for c in more)
            relevant += [c for c in more if change_relevant(c, scope)]
        if relevant:
            kinds = sorted({changed_type(c) for c in relevant})
            print(f"{len(relevant)} relevant change(s) ({', '.join(kinds)}): regen",
                  file=sys.stderr, flush=True)
            result = run_regen(args, "watch")
            report(result)
            sys.stdout.flush()
            folder = result.folder or folder
            if result.ok and result.preview is not None:
                scope = _scope(changes, args, result.preview.lab)
        if folder is not None and (folder / "runtime.json").exists():
            _save_state(folder, last_id)
        if args.once:
            return 0
        stop.wait(args.interval)
    print(f"watch stopped at change log entry {last_id}", file=sys.stderr)
    return 0


# -- recorded at `up` ------------------------------------------------------------------------

def source_argv(args: argparse.Namespace, lab: Lab) -> list[str]:
    """The inventory arguments that regenerate this lab, with absolute paths and its name.

    The NetBox token is never recorded: the regen subprocess inherits $NETBOX_TOKEN or reads
    the env file of `make netbox`, as `up` did.
    """
    argv: list[str] = []
    if getattr(args, "source_factory", None) is not None:
        argv.append("--netbox")
        if args.netbox_url:
            argv += ["--netbox-url", args.netbox_url]
        for name in ("site", "tag", "interface_tag"):
            for value in getattr(args, name, None) or []:
                argv += [f"--{name.replace('_', '-')}", value]
        if args.tenant:
            argv += ["--tenant", args.tenant]
        if args.ca_file:
            argv += ["--ca-file", str(Path(args.ca_file).resolve())]
        if args.no_verify:
            argv.append("--no-verify")
    else:
        argv += ["--inventory", str(Path(args.inventory).resolve())]
    if getattr(args, "platform_map", None) is not None:
        argv += ["--platform-map", str(Path(args.platform_map).resolve())]
    for setting in getattr(args, "settings", None) or []:
        argv += ["--set", setting]
    return [*argv, "--lab", lab.name, "--labs-dir", str(Path(args.labs_dir).resolve())]


def record_source(args: argparse.Namespace, lab: Lab, folder: Path) -> None:
    """Write run/regen-source.json, which the webhook receiver's regen subprocess replays."""
    netbox = getattr(args, "source_factory", None) is not None
    selection = {"sites": list(getattr(args, "site", None) or []) if netbox else [],
                 "tenant": getattr(args, "tenant", None) if netbox else None,
                 "tags": list(getattr(args, "tag", None) or []) if netbox else []}
    record_regen_source(folder, source_argv(args, lab), selection, lab, netbox)


def status_lines(folder: Path) -> list[str]:
    """What `dtnlab status` shows of the last regen (run/regen.json); nothing before the first."""
    doc = read_json(folder / STATUS_FILE)
    if doc is None:
        return []
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(doc.get("ts", 0))))
    if doc.get("ok"):
        return [f"regen: ok at {when} ({doc.get('trigger')})"]
    lines = [f"regen failed at {when} ({doc.get('trigger')}); the lab runs as it was "
             f"before: {doc.get('error')}"]
    lines += [f"  {problem}" for problem in doc.get("problems") or []]
    return lines


# -- `dtnlab netbox hook install|uninstall` ------------------------------------------------

def register_hook(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `hook` action of `dtnlab netbox` (called by commands/netbox.py)."""
    from .netbox import add_connection_options

    text = "install or remove the lab's webhook and event rule in NetBox"
    hook = actions.add_parser("hook", help=text, description=text)
    hook_actions = hook.add_subparsers(dest="hook_command", metavar="ACTION", required=True)
    for name, func, text in (
        ("install", cmd_hook_install, "create or update the webhook to the lab API and its "
                                      "event rule (idempotent)"),
        ("uninstall", cmd_hook_uninstall, "delete the lab's webhook and event rule"),
    ):
        parser = hook_actions.add_parser(name, help=text, description=text)
        parser.add_argument("--lab", "-l", required=True, help="the lab's name")
        parser.add_argument("--labs-dir", type=Path, default=Path("labs"),
                            help="folder that holds one folder per lab (default: %(default)s)")
        add_connection_options(parser)
        parser.set_defaults(func=func)
        if name == "install":
            parser.add_argument("--url", help="the receiver as NetBox reaches it (default: "
                                "http://127.0.0.1:<the lab's API port>/hooks/netbox)")


def _client(args: argparse.Namespace) -> Any:
    from dtnlab.inventory.netbox_client import NetBoxClient

    from .netbox import credentials

    url, token = credentials(args)
    return NetBoxClient(url, token, verify=not args.no_verify, ca_file=args.ca_file)


def cmd_hook_install(args: argparse.Namespace) -> int:
    from dtnlab.inventory.netbox_hooks import hook_name, install_hook

    folder = Path(args.labs_dir) / slugify(args.lab)
    try:
        secret = (folder / "secrets" / "netbox-webhook.secret").read_text().strip()
        port = json.loads((folder / "runtime.json").read_text())["api"]["port"]
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {folder} has no webhook secret or API port ({exc}); generate the lab "
              "first (`dtnlab up` or `dtnlab regen`)", file=sys.stderr)
        return 1
    url = args.url or f"http://127.0.0.1:{port}/hooks/netbox"
    done = install_hook(_client(args), slugify(args.lab), url, secret)
    print(f"{hook_name(slugify(args.lab))}: webhook {done.actions['webhook']} "
          f"(id {done.webhook_id}), event rule {done.actions['event rule']} "
          f"(id {done.event_rule_id}) -> {url}")
    return 0


def cmd_hook_uninstall(args: argparse.Namespace) -> int:
    from dtnlab.inventory.netbox_hooks import uninstall_hook

    gone = uninstall_hook(_client(args), slugify(args.lab))
    print(f"deleted {', '.join(gone)}" if gone else "nothing to delete")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    """`dtnlab diff`: the unified diff per file, then what the running lab would go through.

    Nothing is written, not even the secrets a new device would get.
    """
    lab = load_lab(args)
    folder = lab_dir(args, lab)
    platforms = platform_map(args, folder)
    with staged_secrets(folder) as stage:
        pv = regen.preview(lab, folder, stage, platforms)
        sys.stdout.write(regen.unified_diff(pv))
    lines = pv.plan.lines()
    if lines and (folder / "runtime.json").exists():
        print(f"# running lab, if regenerated now ({len(pv.plan.unchanged)} twins untouched):")
        for line in lines:
            print(f"#   {line}")
    return 1 if pv.changed else 0
