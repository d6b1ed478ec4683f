"""Regenerate a lab and apply it: load, render, plan, write, signal; all or none.

Every attempt ends in run/regen.json, ok or not: a failure at any stage (the inventory does not
validate, a generator or topology check refuses the lab, a write fails) leaves the lab folder
and the running lab as they were, and says why there, in `dtnlab status` and in GET /regen.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dtnlab.generators import writer
from dtnlab.generators.pipeline import SECRETS_DIR, Rendered, paused_gc, render_lab
from dtnlab.generators.platforms import PlatformMap, PlatformMapError
from dtnlab.inventory.errors import InventoryError
from dtnlab.inventory.model import Lab
from dtnlab.inventory.netbox_client import NetBoxError
from dtnlab.runtime.labfiles import RUN_DIR, RUNTIME_FILE, TWINS_DIR, TwinConfig, read_json
from dtnlab.runtime.providers.reload import reload_running_lab, running_nodes
from dtnlab.runtime.reconcile import BROKER_FILES, ReconcilePlan, plan_twins
from dtnlab.runtime.regen_record import last_attempt, record_attempt

from .regen_commit import commit, regen_lock, staged_secrets
from .regen_source import record_devices

log = logging.getLogger(__name__)

# Files whose change the running processes must hear about (broker files are handled apart).
RUNTIME_INPUTS = (RUNTIME_FILE,)


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
    apply_pending: bool = False  # the files are written but the running lab was not told

    def status_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "ts": time.time(), "ok": self.ok, "trigger": self.trigger, "lab": self.lab,
            "error": self.error, "problems": self.problems, "running": self.running,
            "signalled": self.signalled, "apply_pending": self.apply_pending,
            "seconds": {k: round(v, 4) for k, v in self.seconds.items()},
        }
        if self.preview is not None:
            files = self.preview.files
            doc["changes"] = {"files": {"created": files.created, "changed": files.changed,
                                        "removed": files.removed},
                              "twins": self.preview.plan.summary()}
            doc["inventory_sha256"] = self.preview.rendered.inventory_digest
        return doc


def _failed(lab: Lab | None, folder: Path | None, trigger: str, error: str,
            problems: list[str] | None = None, exit_code: int = 1) -> RegenResult:
    return RegenResult(False, lab.name if lab else None, folder, trigger, error=error,
                       problems=problems or [], exit_code=exit_code)


def _refused(exc: InventoryError, lab: Lab | None, folder: Path | None, trigger: str,
             what: str) -> RegenResult:
    return _failed(lab, folder, trigger, f"{exc.source}: {what}", [str(p) for p in exc.problems],
                   exc.exit_code)


# -- the preview: what a regen would change ------------------------------------------------------

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


def preview(lab: Lab, folder: Path, stage: Path, platforms: PlatformMap | None = None) -> Preview:
    """Render `lab` against the staged secrets and compare with what the lab folder holds.

    Raises:
        InventoryError: a generator's checks refuse the lab (a topology that cannot be built).
        ValueError, KeyError: a generator cannot render the model.
    """
    rendered = render_lab(lab, stage, platforms=platforms)
    files = writer.plan(folder, rendered.files, rendered.inventory_digest)
    touched = set(files.created) | set(files.changed) | set(files.removed)
    broker = any(p in touched for p in BROKER_FILES)
    plan = twin_plan(_twin_texts_on_disk(folder), _rendered_twin_texts(rendered.files), broker)
    return Preview(lab, folder, rendered, files, plan,
                   any(p in touched for p in RUNTIME_INPUTS))


def unified_diff(pv: Preview) -> str:
    return writer.unified_diff(pv.folder, pv.rendered.files, pv.rendered.inventory_digest)


# -- the regen ------------------------------------------------------------------------------------

def write_status(folder: Path, result: RegenResult) -> None:
    """run/regen.json: the last attempt in full, and a short history of the ones before."""
    record_attempt(folder, result.status_doc())


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
        The result, recorded in run/regen.json of a generated lab whatever the outcome; on
        failure nothing in the lab folder but run/regen.json has changed.
    """
    start = time.perf_counter()
    seconds: dict[str, float] = {}
    lab: Lab | None = None
    folder = fallback_folder
    try:
        lab = load()
        seconds["load"] = time.perf_counter() - start
        folder = folder_of(lab)
        platform_map = platforms(folder) if platforms is not None else None
        result = _apply(lab, folder, trigger, apply, seconds, platform_map)
    except PlatformMapError as exc:
        result = _failed(lab, folder, trigger, str(exc).splitlines()[0], exc.problems,
                         exc.exit_code)
    except InventoryError as exc:
        result = _refused(exc, lab, folder, trigger, "the inventory does not validate")
    except NetBoxError as exc:
        result = _failed(None, folder, trigger, str(exc), exit_code=exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - whatever it was, it is recorded, not lost
        log.exception("regen of %s failed", folder)
        result = _failed(lab, folder, trigger, f"regen failed: {type(exc).__name__}: {exc}")
    result.seconds = {**seconds, **result.seconds, "total": time.perf_counter() - start}
    if result.folder is not None and (result.folder / RUNTIME_FILE).exists():
        result.running = result.running or bool(running_nodes(result.folder))
        if not result.ok:  # a failure changes nothing: a lab still untold stays untold
            result.apply_pending = result.apply_pending or bool(
                (last_attempt(result.folder) or {}).get("apply_pending"))
        write_status(result.folder, result)
    return result


def _apply(lab: Lab, folder: Path, trigger: str, apply: bool,
           seconds: dict[str, float], platforms: PlatformMap | None = None) -> RegenResult:
    folder.mkdir(parents=True, exist_ok=True)
    with regen_lock(folder), staged_secrets(folder) as stage:
        pending = bool((last_attempt(folder) or {}).get("apply_pending"))
        mark = time.perf_counter()
        try:
            pv = preview(lab, folder, stage, platforms)
        except InventoryError as exc:  # a topology check: the lab loads but cannot be built
            return _refused(exc, lab, folder, trigger, "the regenerated lab fails its checks")
        except (ValueError, KeyError) as exc:  # a generator refused the model
            return _failed(lab, folder, trigger, f"render failed: {exc}")
        seconds["render"] = time.perf_counter() - mark
        result = RegenResult(True, lab.name, folder, trigger, preview=pv, apply_pending=pending)
        if not pv.changed and not (apply and pending):
            return result  # nothing changed: no file, no secret, no process is touched
        mark = time.perf_counter()
        try:
            commit(folder, pv.rendered.files, pv.rendered.inventory_digest, stage / SECRETS_DIR)
        except OSError as exc:
            return _failed(lab, folder, trigger, f"writing {folder} failed, nothing was "
                           f"changed: {exc}")
        try:
            record_devices(folder, lab)
        except OSError as exc:  # only narrows the webhook filter; the next regen retries
            log.warning("could not update %s's device list: %s", folder, exc)
        seconds["write"] = time.perf_counter() - mark
    if apply:
        _signal(result, pv, everything=pending)
    return result


def _signal(result: RegenResult, pv: Preview, everything: bool) -> None:
    """Tell the running lab; a failure is recorded and retried by the next regen.

    Args:
        result: updated with what was signalled, or the failure.
        pv: the preview that was committed.
        everything: the last attempt could not tell the running lab: tell every node now.
    """
    mark = time.perf_counter()
    try:
        result.signalled = reload_running_lab(
            pv.folder, broker=pv.plan.broker_reload or everything,
            processes=bool(pv.plan.touched) or pv.runtime_changed or everything)
        result.apply_pending = False
    except OSError as exc:
        result.ok, result.exit_code, result.apply_pending = False, 1, True
        result.error = (f"the files are written, but telling the running lab failed: {exc}; "
                        "the next `dtnlab regen` tells it again")
    result.running = bool(running_nodes(pv.folder))
    result.seconds["signal"] = time.perf_counter() - mark


# -- did the running lab apply it? ---------------------------------------------------------------

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
