"""Write a regen into the lab folder all or nothing: files and secrets in two phases.

Secrets are rendered against a private stage (hard links of the lab's own), so rendering never
changes them. The commit then writes every new file and secret beside its target before the
first is renamed into place: a failure while writing (disk full) removes what it wrote and
leaves the lab folder as it was; renames cannot run out of space.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dtnlab.generators import writer
from dtnlab.generators.pipeline import SECRETS_DIR

LOCK_FILE = Path("run/regen.lock")
STAGE_DIR = Path("run/.regen-stage")
TMP_SUFFIX = ".regen-tmp"
SECRET_DIR_MODE = 0o700


@dataclass
class Committed:
    """What a commit changed: the lab's files, and its secrets (relative to secrets/)."""

    files: writer.WriteResult
    secrets: list[str] = field(default_factory=list)


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


def _link_tree(src: Path, dst: Path) -> None:
    """Hard-link every file of `src` into `dst`: thousands of device passwords in milliseconds.

    Safe because ensure_secrets replaces files atomically (a new inode) or creates new ones; it
    rewrites a device password in place only when the stored one is empty, which it never is.
    """
    for folder, _, names in os.walk(src):
        target = dst / Path(folder).relative_to(src)
        target.mkdir(parents=True, exist_ok=True, mode=SECRET_DIR_MODE)
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
    stage.mkdir(parents=True, mode=SECRET_DIR_MODE)
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


def secret_changes(staged: Path, target: Path) -> tuple[dict[str, Path], list[str]]:
    """What making `target` hold what `staged` holds takes: (rel -> staged file, rels to delete)."""
    wanted, present = _tree(staged), _tree(target)
    copy = {}
    for rel, src in sorted(wanted.items()):
        dst = target / rel
        if rel in present and (src.samefile(dst) or (
                dst.read_bytes() == src.read_bytes()
                and dst.stat().st_mode & 0o777 == src.stat().st_mode & 0o777)):
            continue  # still the lab's own file (hard-linked into the stage), or equal
        copy[rel] = src
    return copy, sorted(set(present) - set(wanted))


def write_temp(target: Path, data: bytes, mode: int | None) -> Path:
    """Write `data` beside `target` under a temporary name; `mode` None: the umask's default."""
    tmp = target.with_name(f".{target.name}{TMP_SUFFIX}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if mode is not None else 0o666)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    if mode is not None:
        tmp.chmod(mode)  # O_CREAT's mode is filtered by the umask and ignored for an old file
    return tmp


def _make_dirs(path: Path, made: list[Path], mode: int) -> None:
    """mkdir -p that remembers what it created, so an aborted commit can remove it again."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        folder.mkdir(mode=mode)
        made.append(folder)


def commit(folder: Path, files: dict[str, str], inventory_digest: str,
           staged: Path | None = None) -> Committed:
    """Bring the lab folder to `files` (and its secrets to `staged`), all or nothing.

    Args:
        folder: the lab folder.
        files: every generated file, by path relative to the lab folder.
        inventory_digest: recorded in the manifest.
        staged: the staged secrets folder to commit into `folder`/secrets (None: leave them).

    Raises:
        OSError: a write failed; every temporary and new folder is removed, nothing changed.
    """
    wanted = writer.with_manifest(files, inventory_digest)
    result = writer.plan_files(folder, wanted)
    secrets_dir = folder / SECRETS_DIR
    copy, gone = secret_changes(staged, secrets_dir) if staged is not None else ({}, [])
    # Secrets first, the manifest last: a crash during the renames leaves a lab whose
    # manifest is stale, which the next regen rewrites.
    writes: list[tuple[Path, bytes, int | None]] = [
        (secrets_dir / rel, src.read_bytes(), src.stat().st_mode & 0o777)
        for rel, src in copy.items()]
    order = [p for p in result.created + result.changed if p != writer.MANIFEST]
    order += [p for p in (writer.MANIFEST,) if p in result.created + result.changed]
    writes += [(folder / rel, wanted[rel].encode(), None) for rel in order]
    temps: list[tuple[Path, Path]] = []
    made: list[Path] = []
    try:
        for target, data, mode in writes:
            _make_dirs(target.parent, made, SECRET_DIR_MODE if mode is not None else 0o777)
            temps.append((write_temp(target, data, mode), target))
    except BaseException:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)
        for made_dir in reversed(made):
            with contextlib.suppress(OSError):
                made_dir.rmdir()
        raise
    for tmp, target in temps:
        tmp.replace(target)
    for rel in gone:
        (secrets_dir / rel).unlink(missing_ok=True)
    for rel in result.removed:
        (folder / rel).unlink(missing_ok=True)
    return Committed(result, sorted([*copy, *gone]))
