"""Regenerate a lab and apply it: load, render, plan, write, signal; all or none."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dtnlab.generators import writer
from dtnlab.generators.pipeline import SECRETS_DIR, Rendered, paused_gc, render_lab
from dtnlab.generators.platforms import PlatformMap, PlatformMapError
from dtnlab.generators.secret_files import write_file
from dtnlab.inventory.errors import InventoryError, Problem
from dtnlab.inventory.model import Lab, Settings
from dtnlab.inventory.netbox_client import NetBoxError
from dtnlab.runtime.labfiles import RUNTIME_FILE, TWINS_DIR, TwinConfig, read_json
from dtnlab.runtime.providers.reload import reload_running_lab, running_nodes
from dtnlab.runtime.reconcile import BROKER_FILES, ReconcilePlan, plan_twins

log = logging.getLogger(__name__)

RUN_DIR = Path("run")
STATUS_FILE = RUN_DIR / "regen.json"  # the last attempt: read by `dtnlab status` and the API
SOURCE_FILE = RUN_DIR / "regen-source.json"  # how to regenerate: written by `up`, kept by regen
LOCK_FILE = RUN_DIR / "regen.lock"
STAGE_DIR = RUN_DIR / ".regen-stage"
TMP_SUFFIX = ".regen-tmp"
HISTORY = 20  # attempts kept in run/regen.json
# Files whose change the running processes must hear about (broker files are handled apart).
RUNTIME_INPUTS = (RUNTIME_FILE,)
# Settings the command line may override: none of them changes how the inventory is read.
OVERRIDABLE = ("mqtt_port", "mqtts_port", "api_port", "enterprise", "enterprise_name")


@dataclass
class Preview:
    """What a regen would do: files and running objects, computed without changing anything."""

    lab: Lab
    folder: Path
    rendered: Rendered
    files: writer.WriteResult
    plan: ReconcilePlan
    runtime_changed: bool

    @property
    def changed(self) -> bool:
        return bool(self.files.created or self.files.changed or self.files.removed)

    def file_lines(self) -> list[str]:
        out = [f"+ {p}" for p in self.files.created]
        out += [f"~ {p}" for p in self.files.changed]
        out += [f"- {p}" for p in self.files.removed]
        return out


@dataclass
class RegenResult:
    """The outcome of one regen attempt, as written to run/regen.json."""

    ok: bool
    lab: str | None
    folder: Path | None
    trigger: str
    error: str | None = None
    problems: list[str] = field(default_factory=list)
    preview: Preview | None = None
    signalled: list[str] = field(default_factory=list)
    running: bool = False
    seconds: dict[str, float] = field(default_factory=dict)
    exit_code: int = 0  # the CLI's: 2 for an inventory that does not validate, 3 for NetBox

    def status_doc(self, previous: dict[str, Any] | None = None) -> dict[str, Any]:
        now = time.time()
        doc: dict[str, Any] = {
            "ts": now, "ok": self.ok, "trigger": self.trigger, "lab": self.lab,
            "error": self.error, "problems": self.problems, "running": self.running,
            "signalled": self.signalled,
            "seconds": {k: round(v, 4) for k, v in self.seconds.items()},
            "last_success": now if self.ok else (previous or {}).get("last_success"),
        }
        if self.preview is not None:
            files = self.preview.files
            doc["changes"] = {"files": {"created": files.created, "changed": files.changed,
                                        "removed": files.removed},
                              "twins": self.preview.plan.summary()}
            doc["inventory_sha256"] = self.preview.rendered.inventory_digest
        return doc


# -- reading what is on disk ---------------------------------------------------------------------

def _twin_texts_on_disk(folder: Path) -> dict[str, str]:
    """Twin id -> the text of twins/<id>.json, for the twins runtime.json lists."""
    runtime = read_json(folder / RUNTIME_FILE) or {}
    texts = {}
    for twin_id in runtime.get("twins") or []:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            texts[str(twin_id)] = (folder / TWINS_DIR / f"{twin_id}.json").read_text()
    return texts


def _rendered_twin_texts(files: dict[str, str]) -> dict[str, str]:
    prefix, suffix = f"{TWINS_DIR}/", ".json"
    return {rel[len(prefix):-len(suffix)]: text for rel, text in files.items()
            if rel.startswith(prefix) and rel.endswith(suffix) and rel.count("/") == 1}


def twin_plan(old: dict[str, str], new: dict[str, str], broker_reload: bool) -> ReconcilePlan:
    """The running-object plan from twin file texts; identical texts are not even parsed."""
    same = {t for t in old.keys() & new.keys() if old[t] == new[t]}
    loaded = {t: TwinConfig.model_validate_json(s) for t, s in old.items() if t not in same}
    current = {t: TwinConfig.model_validate_json(s) for t, s in new.items() if t not in same}
    plan = plan_twins(loaded, current, broker_reload)
    return ReconcilePlan(plan.added, plan.removed, plan.moved, plan.reconfigured,
                         tuple(sorted({*plan.unchanged, *same})), broker_reload, plan.details)


# -- staged secrets: rendering must not change the lab's secrets before the regen commits ----------

def _link_tree(src: Path, dst: Path) -> None:
    """Hard-link every file of `src` into `dst`: thousands of device passwords in milliseconds.

    Safe because ensure_secrets replaces files atomically (a new inode) or creates new ones; it
    rewrites a device password in place only when the stored one is empty, which it never is.
    """
    for folder, _, names in os.walk(src):
        target = dst / Path(folder).relative_to(src)
        target.mkdir(parents=True, exist_ok=True, mode=0o700)
        for name in names:
            os.link(Path(folder) / name, target / name)


@contextlib.contextmanager
def staged_secrets(folder: Path) -> Iterator[Path]:
    """A private view of the lab's secrets to render against; removed afterwards.

    Inside the lab folder when it has secrets (hard links need the same file system), else in
    a temporary folder, so previewing a lab that does not exist yet creates nothing.
    """
    if not (folder / SECRETS_DIR).exists():
        with tempfile.TemporaryDirectory(prefix="dtnlab-regen-") as tmp:
            yield Path(tmp)
        return
    stage = folder / STAGE_DIR / str(os.getpid())
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True, mode=0o700)
    _link_tree(folder / SECRETS_DIR, stage / SECRETS_DIR)
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        with contextlib.suppress(OSError):
            (folder / STAGE_DIR).rmdir()


def _tree(root: Path) -> dict[str, Path]:
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p for p in root.rglob("*") if p.is_file()}


def sync_secrets(staged: Path, target: Path) -> list[str]:
    """Make `target` hold what `staged` holds (file content and mode); return what changed."""
    wanted, present = _tree(staged), _tree(target)
    changed = []
    for rel, src in sorted(wanted.items()):
        dst = target / rel
        if rel in present and src.samefile(dst):
            continue  # still the lab's own file, hard-linked into the stage
        data = src.read_bytes()
        if rel in present and dst.read_bytes() == data:
            continue
        dst.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_file(dst, data.decode(), src.stat().st_mode & 0o777)
        changed.append(rel)
    for rel in sorted(set(present) - set(wanted)):
        present[rel].unlink()
        changed.append(rel)
    return changed


# -- the preview and the commit -------------------------------------------------------------------

def preview(lab: Lab, folder: Path, stage: Path, platforms: PlatformMap | None = None) -> Preview:
    """Render `lab` against the staged secrets and compare with what the lab folder holds."""
    rendered = render_lab(lab, stage, platforms=platforms)
    files = writer.plan(folder, rendered.files, rendered.inventory_digest)
    touched = set(files.created) | set(files.changed) | set(files.removed)
    broker = any(p in touched for p in BROKER_FILES)
    plan = twin_plan(_twin_texts_on_disk(folder), _rendered_twin_texts(rendered.files), broker)
    return Preview(lab, folder, rendered, files, plan,
                   any(p in touched for p in RUNTIME_INPUTS))


def unified_diff(pv: Preview) -> str:
    return writer.unified_diff(pv.folder, pv.rendered.files, pv.rendered.inventory_digest)


def commit_files(folder: Path, files: dict[str, str], inventory_digest: str) -> writer.WriteResult:
    """Write the lab's files in two phases: every new file beside its target first, then renames.

    A failure while writing (disk full) removes the temporaries and leaves the lab as it was;
    renames cannot run out of space, so once they start the lab is moved in one sweep.
    """
    wanted = writer.with_manifest(files, inventory_digest)
    result = writer.plan_files(folder, wanted)
    # The manifest goes last, so a crash part-way is seen as a stale lab and regenerated.
    order = [p for p in result.created + result.changed if p != writer.MANIFEST]
    order += [p for p in (writer.MANIFEST,) if p in result.created + result.changed]
    temps: list[tuple[Path, Path]] = []
    try:
        for rel in order:
            target = folder / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}{TMP_SUFFIX}")
            tmp.write_text(wanted[rel])
            temps.append((tmp, target))
    except OSError:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, target in temps:
        tmp.replace(target)
    for rel in result.removed:
        (folder / rel).unlink(missing_ok=True)
    return result


@contextlib.contextmanager
def regen_lock(folder: Path) -> Iterator[None]:
    """One regen of a lab at a time (a webhook's and a person's may meet)."""
    path = folder / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_status(folder: Path, result: RegenResult) -> None:
    """run/regen.json: the last attempt in full, and a short history of the ones before."""
    path = folder / STATUS_FILE
    previous = read_json(path)
    doc = result.status_doc(previous)
    twins = (doc.get("changes") or {}).get("twins") or {}
    entry = {"ts": doc["ts"], "ok": doc["ok"], "trigger": doc["trigger"],
             "error": doc["error"], "signalled": doc["signalled"],
             **{k: twins.get(k, []) for k in ("added", "removed", "moved", "reconfigured")}}
    doc["history"] = [*((previous or {}).get("history") or []), entry][-HISTORY:]
    write_file(path, json.dumps(doc, indent=1, sort_keys=True) + "\n", 0o644)


def record_devices(folder: Path, lab: Lab) -> None:
    """Keep run/regen-source.json's device list current: the webhook filter reads it."""
    path = folder / SOURCE_FILE
    doc = read_json(path)
    if doc is None:
        return
    devices = {str(d.netbox_id): d.id for d in lab.devices if d.netbox_id is not None}
    if doc.get("devices") != devices or doc.get("device_names") != sorted(
            d.name for d in lab.devices):
        doc["devices"] = devices
        doc["device_names"] = sorted(d.name for d in lab.devices)
        write_file(path, json.dumps(doc, indent=1, sort_keys=True) + "\n", 0o644)


def recorded_platform_map(folder: Path) -> Path | None:
    """The platform map the lab was brought up with: `--platform-map` in run/regen-source.json."""
    argv = [str(a) for a in (read_json(folder / SOURCE_FILE) or {}).get("argv") or []]
    if "--platform-map" in argv[:-1]:
        return Path(argv[argv.index("--platform-map") + 1])
    return None


def record_source(folder: Path, argv: list[str], selection: dict[str, Any], lab: Lab,
                  netbox: bool) -> None:
    """Record at `up` how this lab regenerates (the runtime re-runs `dtnlab regen ARGV`).

    Args:
        folder: the lab folder.
        argv: inventory arguments of `dtnlab regen`, with absolute paths and `--lab`.
        selection: {"sites": [...], "tenant": ..., "tags": [...]}: what the webhook filter keeps.
        lab: the lab as generated now (its devices' NetBox ids).
        netbox: whether the lab is read from NetBox.
    """
    doc = {"argv": argv, "cwd": str(Path.cwd()), "selection": selection, "netbox": netbox,
           "lab": lab.name, "devices": {}, "device_names": [], "ts": time.time()}
    write_file(folder / SOURCE_FILE, json.dumps(doc, indent=1, sort_keys=True) + "\n", 0o644)
    record_devices(folder, lab)


@paused_gc()
def regenerate(load: Callable[[], Lab], folder_of: Callable[[Lab], Path],
               fallback_folder: Path | None, trigger: str = "cli",
               apply: bool = True,
               platforms: Callable[[Path], PlatformMap] | None = None) -> RegenResult:
    """Read the inventory again and bring the lab folder and the running lab in step with it.

    Args:
        load: reads the inventory (file or NetBox) into a Lab; raises InventoryError/NetBoxError.
        folder_of: the lab folder of a loaded lab.
        fallback_folder: where to record a failure when the inventory cannot even be loaded.
        trigger: who asked (cli, webhook, watch), recorded in run/regen.json.
        apply: signal the running lab (False: write the files only).
        platforms: the platform map for a lab folder (None: the shipped map).

    Returns:
        The result; on failure nothing in the lab folder but run/regen.json has changed.
    """
    start = time.perf_counter()
    seconds: dict[str, float] = {}
    try:
        lab = load()
    except InventoryError as exc:
        result = RegenResult(False, None, fallback_folder, trigger,
                             error=f"{exc.source}: the inventory does not validate",
                             problems=[str(p) for p in exc.problems], exit_code=exc.exit_code)
    except NetBoxError as exc:
        result = RegenResult(False, None, fallback_folder, trigger, error=str(exc),
                             exit_code=exc.exit_code)
    else:
        seconds["load"] = time.perf_counter() - start
        folder = folder_of(lab)
        try:
            platform_map = platforms(folder) if platforms is not None else None
        except PlatformMapError as exc:
            result = RegenResult(False, lab.name, folder, trigger, error=str(exc).splitlines()[0],
                                 problems=exc.problems, exit_code=exc.exit_code)
        else:
            result = _apply(lab, folder, trigger, apply, seconds, platform_map)
    result.seconds = {**seconds, **result.seconds, "total": time.perf_counter() - start}
    if result.folder is not None and (result.folder / RUNTIME_FILE).exists():
        result.running = result.running or bool(running_nodes(result.folder))
        write_status(result.folder, result)
    return result


def _apply(lab: Lab, folder: Path, trigger: str, apply: bool,
           seconds: dict[str, float], platforms: PlatformMap | None = None) -> RegenResult:
    folder.mkdir(parents=True, exist_ok=True)
    with regen_lock(folder), staged_secrets(folder) as stage:
        mark = time.perf_counter()
        try:
            pv = preview(lab, folder, stage, platforms)
        except InventoryError as exc:  # containerlab's limits or schema refused the lab
            return RegenResult(False, lab.name, folder, trigger,
                               error=f"{exc.source}: the lab cannot be generated",
                               problems=[str(p) for p in exc.problems], exit_code=exc.exit_code)
        except (ValueError, KeyError) as exc:  # a generator refused the model
            return RegenResult(False, lab.name, folder, trigger, error=f"render failed: {exc}",
                               exit_code=1)
        seconds["render"] = time.perf_counter() - mark
        result = RegenResult(True, lab.name, folder, trigger, preview=pv)
        if not pv.changed:
            return result  # nothing changed: no file, no secret, no process is touched
        mark = time.perf_counter()
        sync_secrets(stage / SECRETS_DIR, folder / SECRETS_DIR)
        commit_files(folder, pv.rendered.files, pv.rendered.inventory_digest)
        record_devices(folder, lab)
        seconds["write"] = time.perf_counter() - mark
    if apply:
        mark = time.perf_counter()
        result.signalled = reload_running_lab(
            folder, broker=pv.plan.broker_reload,
            processes=bool(pv.plan.touched) or pv.runtime_changed)
        result.running = bool(running_nodes(folder))
        seconds["signal"] = time.perf_counter() - mark
    return result


def applied_by(folder: Path) -> dict[str, str | None]:
    """Which lab (manifest digest) each running process reports it has loaded."""
    seen: dict[str, str | None] = {}
    engine = read_json(folder / RUN_DIR / "engine" / "status.json")
    if engine is not None:
        seen["engine"] = engine.get("lab_sha256")
    for path in sorted((folder / RUN_DIR / "emulator").glob("*.json")):
        doc = read_json(path)
        if doc is not None:
            seen[path.stem] = doc.get("lab_sha256")
    return seen


def wait_applied(folder: Path, inventory_digest: str, timeout: float) -> float | None:
    """Seconds until every running engine and emulator reports `inventory_digest`, or None.

    Processes that do not report a digest at all (not yet able to reload) are not waited for.
    """
    start = time.monotonic()
    live = running_nodes(folder)
    while True:
        seen = {n: d for n, d in applied_by(folder).items() if n in live and d is not None}
        if all(d == inventory_digest for d in seen.values()):
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            return None
        time.sleep(0.05)


def override_settings(lab: Lab, pairs: list[str]) -> Lab:
    """The lab with `KEY=VALUE` settings from the command line (ports of a NetBox lab).

    Raises:
        InventoryError: naming each unknown key or invalid value.
    """
    if not pairs:
        return lab
    raw = lab.settings.model_dump()
    problems = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in OVERRIDABLE:
            problems.append(Problem("--set", pair, key or pair, "expected KEY=VALUE with KEY "
                                    "one of " + ", ".join(OVERRIDABLE)))
            continue
        raw[key] = value
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        problems += [Problem("--set", ".".join(map(str, e["loc"])), "value", e["msg"])
                     for e in exc.errors()]
    if problems:
        raise InventoryError("--set", problems)
    return lab.model_copy(update={"settings": settings})
