"""The one writer: atomic replace, unchanged files untouched, stale files removed, a manifest."""

from __future__ import annotations

import difflib
import hashlib
import json
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
        return path.read_text()
    except (FileNotFoundError, IsADirectoryError, UnicodeDecodeError):
        return None


def with_manifest(files: dict[str, str], inventory_digest: str) -> dict[str, str]:
    """The files a write leaves in the lab folder: the generated ones and their manifest."""
    return {**files, MANIFEST: manifest_text(files, inventory_digest)}


def plan_files(lab_dir: Path, wanted: dict[str, str]) -> WriteResult:
    """What writing `wanted` (manifest included) would do."""
    result = WriteResult()
    for rel, text in sorted(wanted.items()):
        current = _current(lab_dir / rel)
        bucket = result.created if current is None else (
            result.unchanged if current == text else result.changed)
        bucket.append(rel)
    result.removed = sorted(p for p in read_manifest(lab_dir) if p not in wanted)
    return result


def plan(lab_dir: Path, files: dict[str, str], inventory_digest: str) -> WriteResult:
    """What writing `files` would do, without touching anything."""
    return plan_files(lab_dir, with_manifest(files, inventory_digest))


def write(lab_dir: Path, files: dict[str, str], inventory_digest: str) -> WriteResult:
    """Write the lab's generated files; rewrite only those whose content changed."""
    wanted = with_manifest(files, inventory_digest)
    result = plan_files(lab_dir, wanted)
    made_dirs: set[Path] = set()
    created = set(result.created)
    for rel in result.created + result.changed:
        target = lab_dir / rel
        if target.parent not in made_dirs:
            target.parent.mkdir(parents=True, exist_ok=True)
            made_dirs.add(target.parent)
        if rel in created:
            target.write_text(wanted[rel])  # nobody reads a file that did not exist yet
            continue
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(wanted[rel])
        tmp.replace(target)  # readers see the old file or the new one, never half of one
    for rel in result.removed:
        (lab_dir / rel).unlink(missing_ok=True)
    return result


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
