"""The one writer: atomic replace, unchanged files untouched, stale files removed, a manifest."""

from __future__ import annotations

import difflib
import hashlib
import json
import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST = "manifest.json"


@dataclass
class WriteResult:
    created: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def touched(self) -> bool:
        return bool(self.created or self.changed or self.removed)

    def paths(self) -> list[str]:
        """Every file this result planned or wrote (not the removed ones)."""
        return self.created + self.changed + self.unchanged

    def merged(self, parts: Sequence[WriteResult]) -> WriteResult:
        """This result with `parts` (written ahead of it) folded in, each list sorted."""
        every = [self, *parts]
        return WriteResult(*(sorted(p for r in every for p in getattr(r, name))
                             for name in ("created", "changed", "unchanged", "removed")))


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def manifest_text(files: dict[str, str], inventory_digest: str) -> str:
    manifest = {
        "inventory_sha256": inventory_digest,
        "files": {path: sha256(text) for path, text in sorted(files.items())},
    }
    return json.dumps(manifest, indent=1, sort_keys=True) + "\n"


def read_manifest(lab_dir: Path) -> dict[str, str]:
    try:
        files = json.loads((lab_dir / MANIFEST).read_text())["files"]
    except (FileNotFoundError, KeyError, json.JSONDecodeError):
        return {}
    return {str(k): str(v) for k, v in files.items()}


def _current(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, UnicodeDecodeError):
        return None


def with_manifest(files: dict[str, str], inventory_digest: str) -> dict[str, str]:
    """The files a write leaves in the lab folder: the generated ones and their manifest."""
    return {**files, MANIFEST: manifest_text(files, inventory_digest)}


def _planned_writes(lab_dir: Path, wanted: dict[str, str],
                    skip: Collection[str] = ()) -> WriteResult:
    """Which of `wanted` (but `skip`) are new, changed or unchanged on disk."""
    result = WriteResult()
    folders: dict[str, bool] = {}  # a folder that is not there holds no file: nothing to read
    for rel, text in sorted(wanted.items()):
        if rel in skip:
            continue
        folder = rel.rpartition("/")[0]
        if folder not in folders:
            folders[folder] = (lab_dir / folder).is_dir()
        current = _current(lab_dir / rel) if folders[folder] else None
        bucket = result.created if current is None else (
            result.unchanged if current == text else result.changed)
        bucket.append(rel)
    return result


def _stale(lab_dir: Path, wanted: dict[str, str]) -> list[str]:
    """Files the last write left that `wanted` no longer has."""
    return sorted(p for p in read_manifest(lab_dir) if p not in wanted)


def plan_files(lab_dir: Path, wanted: dict[str, str]) -> WriteResult:
    """What writing `wanted` (manifest included) would do."""
    result = _planned_writes(lab_dir, wanted)
    result.removed = _stale(lab_dir, wanted)
    return result


def plan(lab_dir: Path, files: dict[str, str], inventory_digest: str) -> WriteResult:
    """What writing `files` would do, without touching anything."""
    return plan_files(lab_dir, with_manifest(files, inventory_digest))


def create_file(path: str, data: bytes, mode: int = 0o666) -> None:
    """Create (or truncate) `path` with `data`: plain system calls, as a big lab makes
    thousands of files and a file object for each costs as much as the writing."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _apply(lab_dir: Path, wanted: dict[str, str], result: WriteResult) -> None:
    """Write the created and changed files of `result`."""
    made_dirs: set[str] = set()
    for rel in result.created:  # nobody reads a file that did not exist yet
        folder = rel.rpartition("/")[0]
        if folder not in made_dirs:
            (lab_dir / folder).mkdir(parents=True, exist_ok=True)
            made_dirs.add(folder)
        create_file(f"{lab_dir}/{rel}", wanted[rel].encode())
    for rel in result.changed:
        target = lab_dir / rel
        tmp = target.with_name(f".{target.name}.tmp")
        create_file(str(tmp), wanted[rel].encode())
        tmp.replace(target)  # readers see the old file or the new one, never half of one


def write_part(lab_dir: Path, files: dict[str, str]) -> WriteResult:
    """Write some of a lab's files ahead of `write`, which is then told to leave them alone."""
    result = _planned_writes(lab_dir, files)
    _apply(lab_dir, files, result)
    return result


def write(lab_dir: Path, files: dict[str, str], inventory_digest: str,
          done: Sequence[WriteResult] = ()) -> WriteResult:
    """Write the lab's generated files; rewrite only those whose content changed.

    Args:
        lab_dir: the lab folder.
        files: every generated file by relative path.
        inventory_digest: the inventory's digest, for the manifest.
        done: what `write_part` already wrote of `files`.
    """
    wanted = with_manifest(files, inventory_digest)
    result = _planned_writes(lab_dir, wanted, {p for part in done for p in part.paths()})
    result.removed = _stale(lab_dir, wanted)  # from the old manifest, before it is replaced
    _apply(lab_dir, wanted, result)
    for rel in result.removed:
        (lab_dir / rel).unlink(missing_ok=True)
    return result.merged(done)


def unified_diff(lab_dir: Path, files: dict[str, str], inventory_digest: str) -> str:
    """A unified diff from what is on disk to what a write would leave there."""
    wanted = with_manifest(files, inventory_digest)
    result = plan_files(lab_dir, wanted)
    chunks: list[str] = []
    for rel in result.created + result.changed + result.removed:
        old = _current(lab_dir / rel) or ""
        new = wanted.get(rel, "")
        chunks.extend(difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True),
            fromfile=f"a/{rel}" if rel not in result.created else "/dev/null",
            tofile=f"b/{rel}" if rel not in result.removed else "/dev/null",
        ))
    return "".join(chunks)
