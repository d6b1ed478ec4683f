"""Atomic file writes for the lab's secrets folder, shared by secrets.py and tls.py."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from pathlib import Path

# Writes held back until the caller commits (a lab refused by a check must leave no file).
Pending = list[Callable[[], None]]


def write_file(path: Path, text: str, mode: int) -> None:
    """Write `text` to `path` atomically with `mode`, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    tmp.chmod(mode)  # O_CREAT's mode is filtered by the umask and ignored for an old file
    tmp.replace(path)


def write_secret(path: Path, text: str) -> None:
    """Write a file readable by its owner only, atomically."""
    write_file(path, text, 0o600)


def later(pending: Pending | None, write: Callable[..., None], *args: object) -> None:
    """Run a write now, or queue it on `pending` when the caller commits later."""
    if pending is None:
        write(*args)
    else:
        pending.append(partial(write, *args))
