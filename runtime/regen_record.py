"""run/regen.json: the last regen attempt in full and a short history, read by status and the API.

`dtnlab regen` writes it; the webhook receiver writes it too when a regen dies before it could
(it did not start, crashed or timed out), so no failure is left only in a log.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from .labfiles import read_json

STATUS_FILE = Path("run/regen.json")
SOURCE_FILE = Path("run/regen-source.json")  # how to regenerate: written by `up`, kept by regen
HISTORY = 20  # attempts kept in run/regen.json


def last_attempt(folder: Path) -> dict[str, Any] | None:
    """The last attempt recorded in `folder` (None before the first)."""
    return read_json(folder / STATUS_FILE)


def record_attempt(folder: Path, doc: dict[str, Any]) -> dict[str, Any]:
    """Write one attempt as the last, keep the last success's time and a short history.

    Args:
        folder: the lab folder.
        doc: the attempt: ts, ok, trigger, error, problems, signalled, and optionally
            changes {files, twins}; anything else is kept as it is.

    Returns:
        The document written.
    """
    previous = last_attempt(folder) or {}
    doc = {"problems": [], "signalled": [], "error": None, **doc}
    doc["last_success"] = doc["ts"] if doc["ok"] else previous.get("last_success")
    twins = (doc.get("changes") or {}).get("twins") or {}
    entry = {"ts": doc["ts"], "ok": doc["ok"], "trigger": doc["trigger"], "error": doc["error"],
             "signalled": doc["signalled"],
             **{k: twins.get(k, []) for k in ("added", "removed", "moved", "reconfigured")}}
    doc["history"] = [*(previous.get("history") or []), entry][-HISTORY:]
    path = folder / STATUS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # the receiver and a regen may race
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)
    return doc


def record_failure(folder: Path, trigger: str, error: str, problems: list[str]) -> None:
    """Record a regen that failed before it could record itself (the lab files are untouched)."""
    record_attempt(folder, {"ts": time.time(), "ok": False, "trigger": trigger, "error": error,
                            "problems": problems, "running": True})
