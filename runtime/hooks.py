"""NetBox webhooks: verify X-Hook-Signature, keep the lab's objects, debounce, run a regen.

NetBox signs a webhook's body with HMAC-SHA512 of the shared secret (hex in X-Hook-Signature).
Edits come in bursts (a device saved in the UI updates the device, its interfaces and its IP
addresses), so events are coalesced: one regen runs once no event came for `debounce_s`, or at
the latest `max_delay_s` after the first; events during a regen queue exactly one more. The
regen is `dtnlab regen` as a subprocess with the inventory arguments `up` recorded in
run/regen-source.json: the runtime never imports the inventory or the generators.
The routes are in api/routes/regen.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .labfiles import read_json
from .regen_record import SOURCE_FILE, last_attempt, record_failure

log = logging.getLogger(__name__)

SECRET_FILE = Path("secrets/netbox-webhook.secret")  # written by generators/secrets.py
REGEN_LOG = Path("run/logs/regen.log")
SIGNATURE_HEADER = "X-Hook-Signature"
# Objects that place devices or shape twins anywhere: always worth a (cheap, no-op) regen.
GLOBAL_TYPES = frozenset({"extras.configcontext", "extras.tag"})
REGEN_TIMEOUT_S = 300.0
FAILURE_LINES = 20  # of a failed regen's output, kept with its record


def signature(secret: bytes, body: bytes) -> str:
    """NetBox's X-Hook-Signature of `body`: hex HMAC-SHA512 keyed with the secret."""
    return hmac.new(secret, body, hashlib.sha512).hexdigest()


def signature_ok(secret: bytes, body: bytes, header: str | None) -> bool:
    """Constant-time check of a webhook's signature; no secret or no header is never ok."""
    if not secret or not header:
        return False
    return hmac.compare_digest(signature(secret, body), header.strip().lower())


def read_secret(lab_dir: Path) -> bytes:
    try:
        return (lab_dir / SECRET_FILE).read_bytes().strip()
    except OSError:
        return b""


# -- which objects belong to the lab ---------------------------------------------------------------

@dataclass(frozen=True)
class Selection:
    """What the lab reads from NetBox (as `up` recorded it) and which devices it holds now."""

    sites: frozenset[str] = frozenset()
    tenant: str | None = None
    tags: frozenset[str] = frozenset()
    device_ids: frozenset[int] = frozenset()  # NetBox ids of the lab's devices
    device_names: frozenset[str] = frozenset()

    @classmethod
    def from_source(cls, doc: dict[str, Any]) -> Selection:
        sel = doc.get("selection") or {}
        return cls(frozenset(sel.get("sites") or ()), sel.get("tenant") or None,
                   frozenset(sel.get("tags") or ()),
                   frozenset(int(k) for k in (doc.get("devices") or {})),
                   frozenset(doc.get("device_names") or ()))

    def device_selected(self, data: dict[str, Any]) -> bool:
        """Whether a device (REST shape) falls inside the selection: site, tenant, tags."""
        if self.sites and _slug(data.get("site")) not in self.sites:
            return False
        if self.tenant and _slug(data.get("tenant")) != self.tenant:
            return False
        return not self.tags or bool(self.tags & {_slug(t) for t in data.get("tags") or ()})

    def has_device(self, ref: Any) -> bool | None:
        """Whether a nested device reference is one of the lab's; None when it names none."""
        if not isinstance(ref, dict):
            return None
        if ref.get("id") in self.device_ids:
            return True
        return ref.get("name") in self.device_names if ref.get("name") else False


def _slug(ref: Any) -> str | None:
    if isinstance(ref, dict):
        return ref.get("slug")
    return ref if isinstance(ref, str) else None


def _snapshot(event: dict[str, Any], which: str) -> dict[str, Any]:
    snaps = event.get("snapshots") or {}
    snap = snaps.get(which) if isinstance(snaps, dict) else None
    return snap if isinstance(snap, dict) else {}


def relevant(event: dict[str, Any], sel: Selection) -> bool:
    """Whether a NetBox event can change the lab; when in doubt, yes (a no-op regen is cheap).

    Args:
        event: the webhook body NetBox sends by default: event, object_type, data, snapshots.
        sel: the lab's selection and devices.
    """
    kind = str(event.get("object_type") or event.get("model") or "")
    raw = event.get("data")
    data: dict[str, Any] = raw if isinstance(raw, dict) else {}
    if kind in GLOBAL_TYPES:
        return True
    if kind == "dcim.site":
        return not sel.sites or bool({data.get("slug"), _snapshot(event, "prechange").get("slug")}
                                     & sel.sites)
    if kind == "dcim.device":
        return data.get("id") in sel.device_ids or sel.device_selected(data)
    if kind in ("dcim.rack", "dcim.location"):
        return not sel.sites or data.get("site") is None or (
            _slug(data.get("site")) or "") in sel.sites
    if kind == "dcim.interface":
        known = sel.has_device(data.get("device"))
        return known is not False
    if kind == "dcim.cable":
        ends = [*(data.get("a_terminations") or []), *(data.get("b_terminations") or [])]
        devices = [(e.get("object") or {}).get("device") for e in ends if isinstance(e, dict)]
        answers = [sel.has_device(d) for d in devices]
        return not answers or None in answers or any(answers)
    if kind == "ipam.ipaddress":
        assigned = data.get("assigned_object")
        known = sel.has_device(assigned.get("device")) if isinstance(assigned, dict) else None
        # unassigned now, or assigned before this edit: it may have left a lab interface
        return known is not False or bool(_snapshot(event, "prechange").get("assigned_object_id"))
    return True


# -- debounce and the regen subprocess -------------------------------------------------------------

@dataclass
class HookStats:
    received: int = 0
    refused: int = 0
    ignored: int = 0
    accepted: int = 0
    regens: int = 0
    last_event: float | None = None
    last_regen_exit: int | None = None
    last_regen_s: float | None = None
    running: bool = False

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class RegenScheduler:
    """Coalesces events into regens: one runs at a time, and events during it queue one more.

    Args:
        lab_dir: the lab folder.
        debounce_s: quiet time after the last event before a regen starts.
        max_delay_s: the longest a regen waits for the burst to end.
        trigger: recorded in run/regen.json (webhook, watch).
    """

    lab_dir: Path
    debounce_s: float = 0.4
    max_delay_s: float = 3.0
    trigger: str = "webhook"
    stats: HookStats = field(default_factory=HookStats)
    _pending_since: float | None = None
    _last: float = 0.0
    _task: asyncio.Task[None] | None = None
    _wake: asyncio.Event | None = None

    def poke(self) -> None:
        """An event that matters arrived: make sure a regen follows it."""
        now = time.monotonic()
        self._last = now
        if self._pending_since is None:
            self._pending_since = now
        if self._wake is None:
            self._wake = asyncio.Event()
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="regen")

    async def _loop(self) -> None:
        assert self._wake is not None
        while self._pending_since is not None:
            first = self._pending_since
            while True:  # wait for the burst to end
                now = time.monotonic()
                quiet_at = self._last + self.debounce_s
                latest = first + self.max_delay_s
                if now >= min(quiet_at, latest):
                    break
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), min(quiet_at, latest) - now)
                except TimeoutError:
                    pass
            self._pending_since = None  # events from here on queue the next regen
            await self.run_regen()

    def command(self) -> tuple[list[str], Path]:
        """The regen command line and its working directory, from run/regen-source.json."""
        source = read_json(self.lab_dir / SOURCE_FILE)
        if source is None:
            raise FileNotFoundError(f"{self.lab_dir / SOURCE_FILE}: missing; the lab was not "
                                    "started with `dtnlab up`, so how to regenerate it is unknown")
        argv = [sys.executable, "-m", "dtnlab", "regen", *map(str, source.get("argv") or []),
                "--trigger", self.trigger]
        return argv, Path(source.get("cwd") or self.lab_dir)

    async def run_regen(self) -> int:
        """Run one `dtnlab regen`, its output appended to run/logs/regen.log.

        The regen records itself in run/regen.json; when it cannot (it did not start, crashed
        or timed out), the failure is recorded here with the end of its output.
        """
        self.stats.running = True
        start, started_at = time.monotonic(), time.time()
        log_path = self.lab_dir / REGEN_LOG
        offset = 0
        error = None
        try:
            argv, cwd = self.command()
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with log_path.open("ab") as output:
                output.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} {self.trigger}: "
                             f"{' '.join(argv[1:])}\n".encode())
                output.flush()
                offset = output.tell()
                proc = await asyncio.create_subprocess_exec(
                    *argv, cwd=cwd, stdin=asyncio.subprocess.DEVNULL, stdout=output,
                    stderr=output, env={**os.environ, "PYTHONUNBUFFERED": "1"})
                try:
                    code = await asyncio.wait_for(proc.wait(), REGEN_TIMEOUT_S)
                except TimeoutError:
                    proc.kill()
                    code = await proc.wait()
                    error = f"the regen took over {REGEN_TIMEOUT_S:g}s and was stopped"
        except OSError as exc:
            log.error("regen could not start: %s", exc)
            code, error = -1, f"the regen could not start: {exc}"
        finally:
            self.stats.running = False
        self.stats.regens += 1
        self.stats.last_regen_exit = code
        self.stats.last_regen_s = round(time.monotonic() - start, 3)
        log.info("regen (%s) exited with %s in %.2fs", self.trigger, code,
                 self.stats.last_regen_s)
        if code != 0 and float((last_attempt(self.lab_dir) or {}).get("ts") or 0) < started_at:
            self._record_failure(error or f"the regen exited with code {code} before it "
                                 f"recorded the attempt (see {REGEN_LOG})", log_path, offset)
        return code

    def _record_failure(self, error: str, log_path: Path, offset: int) -> None:
        try:
            with log_path.open("rb") as output:
                output.seek(offset)
                tail = output.read().decode(errors="replace").splitlines()
        except OSError:
            tail = []
        try:
            record_failure(self.lab_dir, self.trigger, error,
                           [line for line in tail if line.strip()][-FAILURE_LINES:])
        except OSError as exc:
            log.error("could not record the failed regen in %s: %s", self.lab_dir, exc)

    async def drain(self) -> None:
        """Wait for a pending or running regen (tests, shutdown)."""
        if self._task is not None:
            await self._task
