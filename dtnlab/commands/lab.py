"""`dtnlab up`, `down`, `status`, `logs` and `fault`: run a generated lab and poke at it."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from dtnlab.generators.pipeline import generate_lab, paused_gc
from dtnlab.inventory.names import slugify
from dtnlab.runtime.emulator.control import applied_faults, request_fault
from dtnlab.runtime.emulator.faults import FAULT_KINDS
from dtnlab.runtime.labfiles import read_json
from dtnlab.runtime.providers import (
    PROVIDERS,
    LabStatus,
    ProviderError,
    ProviderUnavailable,
    provider_class,
)
from dtnlab.runtime.providers.base import Provider
from dtnlab.runtime.providers.commands import send_command
from dtnlab.runtime.providers.nodes import LOGS_DIR
from dtnlab.runtime.regen_record import STATUS_FILE

from .common import add_inventory_options, lab_dir, load_lab, platform_map, progress
from .regen import record_source, status_lines

PROVIDER_FILE = Path("run/provider.json")
NODE_LOGS = {"broker": [LOGS_DIR / "broker.log", Path("run/mosquitto/mosquitto.log")]}
TWIN_LINES = 60  # list every twin up to this many; past it, counts per state


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = _command(sub, "up", cmd_up, "generate the lab, start every node, wait until it reports")
    up.add_argument("--provider", choices=list(PROVIDERS), default="local",
                    help="how to run the lab (default: %(default)s)")
    up.add_argument("--shards", type=int, help="emulator processes (default: by lab size)")
    up.add_argument("--tls", action="store_true", help="emulators use the broker's TLS port")
    up.add_argument("--timeout", type=float, default=90.0,
                    help="seconds to wait for the twins to report (default: %(default)s)")
    up.add_argument("--no-generate", action="store_true",
                    help="run the lab folder as it is, without generating it first")
    _command(sub, "down", cmd_down, "stop every node `up` started")
    status = _command(sub, "status", cmd_status,
                      "nodes and twin states of the running lab (exit 3 when it is not running)")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    logs = _command(sub, "logs", cmd_logs, "show a node's log (all nodes without NODE)")
    logs.add_argument("node", nargs="?", help="broker, engine, emulator-0, supervisor, ...")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs.add_argument("-n", "--lines", type=int, default=40, help="lines of history per log")
    fault = _command(sub, "fault", cmd_fault, "inject a fault into an emulated device")
    fault.add_argument("device", help="the device's twin id or its NetBox name")
    fault.add_argument("kind", choices=FAULT_KINDS)
    fault.add_argument("--metric", help="spike/drift: the metric (default: the first banded)")
    fault.add_argument("--samples", type=int, help="spike: samples it lasts (default: 3)")
    fault.add_argument("--ramp-s", type=float,
                       help="drift: seconds to go from normal to the warning edge")
    fault.add_argument("--duration-s", type=float, help="recover by itself after this long")
    fault.add_argument("--via", choices=("file", "mqtt"), default="file",
                       help="control channel: run/faults/ (local) or the device's command "
                            "topic (any provider) (default: %(default)s)")
    fault.add_argument("--wait", type=float, default=5.0,
                       help="seconds to wait for the emulator to confirm (default: %(default)s)")


def _command(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
             func: object, text: str) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=text, description=text)
    add_inventory_options(parser)
    parser.set_defaults(func=func)
    return parser


def _folder(args: argparse.Namespace) -> Path:
    """The lab folder; with --lab the inventory need not be read at all."""
    if args.lab:
        return Path(args.labs_dir) / slugify(args.lab)
    return lab_dir(args, load_lab(args))


def _provider(folder: Path, name: str | None = None, **options: Any) -> Provider:
    if name is None:
        try:
            name = json.loads((folder / PROVIDER_FILE).read_text())["provider"]
        except (OSError, ValueError, KeyError):
            name = "local"
    return provider_class(str(name))(folder, **options)


def cmd_up(args: argparse.Namespace) -> int:
    if args.no_generate:
        folder = _folder(args)
    else:
        with paused_gc():
            platforms = platform_map(args)
            lab = load_lab(args)
            folder = lab_dir(args, lab)
            _, result = generate_lab(lab, folder, platforms=platforms)
        progress(f"generated {folder}: {len(result.created)} created, "
                 f"{len(result.changed)} changed")
        record_source(args, lab, folder)  # how the webhook receiver regenerates it
    provider = _provider(folder, args.provider, shards=args.shards, tls=args.tls)
    record = folder / PROVIDER_FILE
    before = record.read_text() if record.exists() else None
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"provider": args.provider}))
    progress(f"starting {folder} ({args.provider})")
    start = time.monotonic()
    try:
        status = provider.up(args.timeout)
    except ProviderUnavailable as exc:
        # nothing started: `down` and `status` keep finding what ran before, if anything
        if before is None:
            record.unlink(missing_ok=True)
        else:
            record.write_text(before)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ProviderError as exc:
        print(f"error: {exc}\n(the lab is left running to look at: `dtnlab status`, "
              f"`dtnlab logs`; stop it with `dtnlab down`)", file=sys.stderr)
        return 1
    _print_status(folder, status)
    print(f"{folder}: up in {time.monotonic() - start:.1f}s")
    runtime = json.loads((folder / "runtime.json").read_text())
    broker = runtime["broker"]
    print(f"broker: mqtt://{broker['host']}:{broker['port']} "
          f"(TLS {broker.get('tls_port')}, CA {folder / broker['ca_file']})")
    if any(n.name == "api" and n.alive for n in status.nodes):
        print(f"API and dashboard: http://127.0.0.1:{runtime['api']['port']}/")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    folder = _folder(args)
    try:
        stopped = _provider(folder).down()
    except ProviderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{folder}: stopped {', '.join(stopped) if stopped else 'nothing (not running)'}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    folder = _folder(args)
    try:
        status = _provider(folder).status()
    except ProviderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"nodes": [vars(n) for n in status.nodes],
                          "twins": status.twins.states, "source": status.twins.source,
                          "devices": status.twins.devices,
                          "regen": read_json(folder / STATUS_FILE)}, indent=1, sort_keys=True))
    else:
        _print_status(folder, status)
        for line in status_lines(folder):
            print(line)
    return 0 if status.running else 3


def _print_status(folder: Path, status: LabStatus) -> None:
    print(f"{'node':<14}{'pid':>8}  {'alive':<6}{'state':<12}{'restarts':>8}  last exit")
    for node in status.nodes:
        print(f"{node.name:<14}{node.pid or '-':>8}  {'yes' if node.alive else 'no':<6}"
              f"{node.state:<12}{node.restarts:>8}  "
              f"{'-' if node.last_exit is None else node.last_exit}")
    twins = status.twins
    if not twins.states:
        print("twins: no state (the broker is not running)" if not status.running
              else "twins: no state reported yet")
        return
    counts = Counter(twins.states.values())
    print(f"twins ({twins.source}): " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    if len(twins.states) <= TWIN_LINES:
        for twin, state in sorted(twins.states.items()):
            device = twins.devices.get(twin, "?")
            print(f"  {twin:<32}{state:<14}device {device}")


def _log_files(folder: Path, node: str | None) -> list[tuple[str, Path]]:
    """(node, log file) pairs; the broker writes its own log beside its captured output."""
    nodes = [node] if node else sorted(p.stem for p in (folder / LOGS_DIR).glob("*.log"))
    return [(name, folder / path) for name in nodes
            for path in NODE_LOGS.get(name, [LOGS_DIR / f"{name}.log"])
            if (folder / path).exists()]


def cmd_logs(args: argparse.Namespace) -> int:
    folder = _folder(args)
    files = _log_files(folder, args.node)
    if not files:
        print(f"no log for {args.node or 'any node'} under {folder / LOGS_DIR}", file=sys.stderr)
        return 1

    def show(name: str, text: str) -> None:
        for line in text.splitlines():
            print(f"{name}| {line}" if args.node is None else line, flush=True)

    offsets = {}
    for name, path in files:
        show(name, "\n".join(path.read_text(errors="replace").splitlines()[-args.lines:]))
        offsets[path] = path.stat().st_size
    while args.follow:
        time.sleep(0.5)
        for name, path in files:
            size = path.stat().st_size if path.exists() else 0
            if size < offsets[path]:
                offsets[path] = 0  # truncated or replaced
            if size > offsets[path]:
                with path.open("rb") as handle:
                    handle.seek(offsets[path])
                    show(name, handle.read().decode(errors="replace"))
                    offsets[path] = handle.tell()
    return 0


def twin_id_of(device: str, twins: list[str]) -> str | None:
    """The twin id `device` names: the id itself, or the NetBox device name it is the slug of."""
    return next((candidate for candidate in (device, slugify(device)) if candidate in twins), None)


def cmd_fault(args: argparse.Namespace) -> int:
    folder = _folder(args)
    twins = json.loads((folder / "runtime.json").read_text())["twins"]
    device = twin_id_of(args.device, twins)
    if device is None:
        print(f"error: device {args.device!r} (twin id {slugify(args.device)!r}) is not a twin "
              f"of {folder.name}; twins are {', '.join(twins[:10])}"
              f"{', ...' if len(twins) > 10 else ''}", file=sys.stderr)
        return 2
    fault_args = {k: v for k, v in (("metric", args.metric), ("samples", args.samples),
                                    ("ramp_s", args.ramp_s), ("duration_s", args.duration_s))
                  if v is not None}
    if args.via == "mqtt":
        try:
            ack = send_command(folder, device, "fault", {"fault": args.kind, **fault_args},
                               timeout=args.wait)
        except TimeoutError:
            print(f"error: {device} did not acknowledge within {args.wait}s",
                  file=sys.stderr)
            return 1
        print(f"{device}: {args.kind} {ack['result']} ({ack['detail']})")
        return 0 if ack["result"] == "ok" else 1
    request = request_fault(folder, device, args.kind, fault_args)
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline:
        applied = applied_faults(folder).get(device, {})
        if applied.get("id") == request["id"]:
            print(f"{device}: {args.kind} {applied['result']}")
            return 0 if applied["result"] == "applied" else 1
        time.sleep(0.1)
    print(f"error: no running emulator took the {args.kind} fault for {device} within "
          f"{args.wait}s (is the lab up?); the request stays in "
          f"{folder / 'run' / 'faults'} and applies when its emulator starts", file=sys.stderr)
    return 1
