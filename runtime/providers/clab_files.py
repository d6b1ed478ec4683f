"""What a containerlab topology asks of the lab folder: who owns each bound file, which netem.

`dtnlab clab prepare` (and `dtnlab up --provider clab`, before deploying) gives every private
file a node binds (a file only its owner may read: server key, passwords, API keys) to the user
that node runs as (its `user`), keeping mode 0600, and creates each writable bound folder owned
by that user (0700). Only those files change; everything else in the lab stays as generated.
Mosquitto 2 and the postgres image read their files as their own unprivileged user, and the
dtnlab node image runs as uid 1000, so a root-owned 0600 file would be unreadable to all three.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..netns.impairment import Impairment, ImpairmentError

TOPOLOGY = "topology.clab.yml"
PRIVATE_MODE = 0o600
FOLDER_MODE = 0o700


class ClabFileError(Exception):
    """The topology or the lab folder cannot be prepared; the message names the file."""


def read_topology(lab_dir: Path) -> dict[str, Any]:
    """The lab's topology.clab.yml, parsed.

    Raises:
        ClabFileError: it is missing or not a YAML mapping.
    """
    path = lab_dir / TOPOLOGY
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ClabFileError(f"{path}: missing (generate the lab first)") from None
    except yaml.YAMLError as exc:
        raise ClabFileError(f"{path}: not YAML: {exc}") from None
    if not isinstance(doc, dict) or not isinstance((doc.get("topology") or {}), dict):
        raise ClabFileError(f"{path}: not a containerlab topology")
    return doc


def bind_parts(bind: str) -> tuple[str, str | None, str | None]:
    """(host path, container path, options) of a `host:container[:options]` bind."""
    parts = bind.split(":")
    if len(parts) == 1:
        return parts[0], None, None  # an anonymous volume: no host path at all
    return parts[0], parts[1], ":".join(parts[2:]) or None


def read_only(options: str | None) -> bool:
    return "ro" in (options or "").split(",")


def node_ids(user: object) -> tuple[int, int] | None:
    """(uid, gid) of a node's numeric `user` ("1000:1000", "1883", 999); None for a name."""
    uid, _, gid = str(user).partition(":")
    if not uid.isdigit() or (gid and not gid.isdigit()):
        return None
    return int(uid), int(gid or uid)


@dataclass(frozen=True)
class Ownership:
    """One path of the lab folder and the container user that must own it."""

    path: str  # relative to the lab folder
    uid: int
    gid: int
    mode: int
    folder: bool
    nodes: tuple[str, ...] = field(default=())  # who reads (file) or writes (folder) it


def _inside(lab_dir: Path, host: str) -> Path | None:
    """The bind's host path when it lies inside the lab folder, else None."""
    if host.startswith(("/", "~")):
        return None
    path = Path(os.path.normpath(lab_dir / host))
    return path if path == lab_dir or lab_dir in path.parents else None


def ownership_plan(doc: dict[str, Any], lab_dir: Path) -> list[Ownership]:
    """Which bound files and folders go to which container user, sorted by path.

    A private file (no read bit for others) bound read-only goes to its reader; a folder bound
    writable goes to its writer. Nodes without a numeric `user` are left as they are.

    Raises:
        ClabFileError: naming a private file or a folder that nodes of different users share,
            or a bound file that does not exist.
    """
    lab_dir = lab_dir.resolve()
    wanted: dict[str, dict[tuple[int, int], list[str]]] = {}
    folders: set[str] = set()
    missing: list[str] = []
    for name, node in sorted(((doc.get("topology") or {}).get("nodes") or {}).items()):
        ids = node_ids((node or {}).get("user"))
        if ids is None:
            continue
        for bind in (node or {}).get("binds") or []:
            host, container, options = bind_parts(str(bind))
            path = _inside(lab_dir, host) if container else None
            if path is None or path == lab_dir:
                continue
            rel = path.relative_to(lab_dir).as_posix()
            if not read_only(options):
                folders.add(rel)
            elif not path.exists():
                missing.append(f"{rel} (bound into {name})")
                continue
            elif path.is_dir() or path.stat().st_mode & stat.S_IROTH:
                continue  # anyone may read it: nothing to give
            wanted.setdefault(rel, {}).setdefault(ids, []).append(str(name))
    problems = [f"{TOPOLOGY}: bound file {m} does not exist" for m in missing]
    plan = []
    for rel, owners in sorted(wanted.items()):
        if len(owners) > 1:
            who = "; ".join(f"{', '.join(nodes)} as {uid}:{gid}"
                            for (uid, gid), nodes in sorted(owners.items()))
            problems.append(f"{TOPOLOGY}: {rel} is read by nodes of different users ({who}); "
                            "give each user its own copy")
            continue
        (uid, gid), nodes = next(iter(owners.items()))
        folder = rel in folders
        plan.append(Ownership(rel, uid, gid, FOLDER_MODE if folder else PRIVATE_MODE, folder,
                              tuple(nodes)))
    if problems:
        raise ClabFileError("\n".join(problems))
    return plan


def apply_ownership(plan: list[Ownership], lab_dir: Path) -> list[str]:
    """Create the folders and hand every path to its user; returns the paths changed.

    Raises:
        ClabFileError: a change needs root (containerlab itself runs as root).
    """
    changed = []
    for entry in plan:
        path = lab_dir / entry.path
        if entry.folder:
            path.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
        info = path.stat()
        if (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (entry.uid, entry.gid,
                                                                      entry.mode):
            continue
        try:
            os.chown(path, entry.uid, entry.gid)
            path.chmod(entry.mode)
        except PermissionError:
            raise ClabFileError(f"{path}: giving it to {entry.uid}:{entry.gid} (the user of "
                                f"{', '.join(entry.nodes)}) needs root: run "
                                "`sudo dtnlab clab prepare`") from None
        changed.append(entry.path)
    return changed


@dataclass(frozen=True)
class NetemSetting:
    """One `containerlab tools netem set` call: one end of an impaired cable."""

    container: str
    interface: str
    impairment: Impairment

    def argv(self) -> list[str]:
        """The flags; netem delays what leaves the interface, so each end delays one way."""
        args = ["tools", "netem", "set", "-n", self.container, "-i", self.interface]
        imp = self.impairment
        if imp.delay_ms:
            args += ["--delay", f"{imp.delay_ms:g}ms"]
            if imp.jitter_ms:  # containerlab refuses jitter without a delay
                args += ["--jitter", f"{imp.jitter_ms:g}ms"]
        if imp.loss_pct:
            args += ["--loss", f"{imp.loss_pct:g}"]
        return args


def netem_plan(doc: dict[str, Any]) -> list[NetemSetting]:
    """Both ends of every link whose `vars.impairment` (cable custom fields) is set.

    Raises:
        ClabFileError: naming the link whose impairment cannot be read.
    """
    lab = str(doc.get("name", ""))
    settings = []
    for number, link in enumerate((doc.get("topology") or {}).get("links") or []):
        fields = ((link or {}).get("vars") or {}).get("impairment")
        if not fields:
            continue
        endpoints = [str(e) for e in link.get("endpoints") or []]
        try:
            impairment = Impairment.from_fields(fields)
        except ImpairmentError as exc:
            raise ClabFileError(f"{TOPOLOGY}: link {number} ({' '.join(endpoints)}): "
                                f"{exc}") from None
        if not impairment.active:
            continue
        for endpoint in endpoints:
            node, _, interface = endpoint.partition(":")
            settings.append(NetemSetting(f"clab-{lab}-{node}", interface, impairment))
    return settings
