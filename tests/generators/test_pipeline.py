"""Big labs render and write in a forked worker: the same files as in one process, a refused lab
still leaves nothing, and a worker that fails costs time, never the result."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

from dtnlab.generators import pipeline
from dtnlab.generators.forked import Forked, can_fork
from dtnlab.generators.pipeline import WORKER, generate_lab, render_lab
from dtnlab.generators.topology import TopologyError
from dtnlab.inventory.model import Lab
from dtnlab.inventory.source import FileSource
from tests.conftest import DEMO_INVENTORY, REPO


def files_under(folder: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file: bytes, mode and mtime."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mode, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def contents(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {path: (data, mode) for path, (data, mode, _) in files_under(folder).items()}


def no_child_left() -> bool:
    """No forked copy of this process is left, running or unreaped (other children may be)."""
    me = Path("/proc/self/cmdline").read_bytes()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines()
                          if ":\t" in line)
            cmdline = (status.parent / "cmdline").read_bytes()
        except OSError:
            continue  # gone meanwhile
        if fields.get("PPid") == str(os.getpid()) and cmdline in (me, b""):
            return False  # a zombie's cmdline is empty
    return True


@pytest.fixture(scope="module")
def demo() -> Lab:
    return FileSource(DEMO_INVENTORY).load()


@pytest.fixture
def forking(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo plant is far below FORK_FROM: fork for it all the same."""
    monkeypatch.setattr(pipeline, "FORK_FROM", 1)


def test_forked_generate_writes_what_one_process_writes(
        tmp_path: Path, demo: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    one, forked = tmp_path / "one", tmp_path / "forked"
    _, serial_result = generate_lab(demo, one)
    shutil.copytree(one / "secrets", forked / "secrets")  # the same secrets: the same files
    monkeypatch.setattr(pipeline, "FORK_FROM", 1)
    rendered, result = generate_lab(demo, forked)
    assert contents(forked) == contents(one)
    assert result == serial_result  # every file created, each list sorted
    assert set(WORKER) <= set(rendered.by_generator)
    assert rendered.files == render_lab(demo, forked).files
    assert no_child_left()


def test_forked_generate_rewrites_nothing_the_second_time(
        tmp_path: Path, demo: Lab, forking: None) -> None:
    generate_lab(demo, tmp_path)
    first = files_under(tmp_path)
    _, result = generate_lab(demo, tmp_path)
    assert not result.touched
    assert len(result.unchanged) == len([p for p in first if not p.startswith("secrets/")])
    assert files_under(tmp_path) == first  # same bytes, modes and mtimes


def test_forked_generate_of_a_refused_lab_writes_nothing(tmp_path: Path, forking: None) -> None:
    refused = FileSource(REPO / "tests" / "errors" / "containerlab.yaml").load()
    with pytest.raises(TopologyError, match="reserved by containerlab"):
        generate_lab(refused, tmp_path / "lab")
    assert not (tmp_path / "lab").exists()  # neither the worker's files nor the secrets
    assert no_child_left()


def test_a_changed_lab_removes_stale_files_when_the_worker_writes(
        tmp_path: Path, demo: Lab, forking: None) -> None:
    generate_lab(demo, tmp_path)
    gone = demo.twins[0].id
    smaller = demo.model_copy(update={"devices": tuple(d for d in demo.devices if d.id != gone),
                                      "links": tuple(lk for lk in demo.links
                                                     if gone not in (lk.a.device, lk.b.device))})
    _, result = generate_lab(smaller, tmp_path)
    assert f"twins/{gone}.json" in result.removed
    assert not (tmp_path / "twins" / f"{gone}.json").exists()
    assert {"mosquitto/passwd", "mosquitto/acl", "manifest.json"} <= set(result.changed)


def test_no_fork_while_other_threads_run(tmp_path: Path, demo: Lab, forking: None) -> None:
    """A server's threads may hold locks a forked child would wait for forever."""
    release = threading.Event()
    thread = threading.Thread(target=release.wait)
    thread.start()
    try:
        assert not can_fork()
        forks: list[int] = []
        real_fork = os.fork
        os.fork = lambda: forks.append(1) or real_fork()  # type: ignore[assignment]
        try:
            generate_lab(demo, tmp_path)
        finally:
            os.fork = real_fork
        assert forks == []
        assert (tmp_path / "mosquitto" / "passwd").exists()
    finally:
        release.set()
        thread.join()


def test_forked_result_comes_back_through_the_pipe() -> None:
    parent = os.getpid()
    assert Forked(lambda: {"pid": os.getpid(), "big": "x" * 1_000_000}).result()["pid"] != parent


def test_a_failing_worker_is_done_again_here() -> None:
    parent = os.getpid()

    def dies_in_the_child() -> str:
        if os.getpid() != parent:
            os._exit(3)
        return "done here"

    assert Forked(dies_in_the_child).result() == "done here"

    def fails() -> str:
        raise ValueError("twin profile of pump-1 is broken")

    with pytest.raises(ValueError, match="pump-1 is broken"):  # raised here, real traceback
        Forked(fails).result()
    assert no_child_left()


def test_a_failure_after_the_gate_opened_leaves_no_worker_behind(
        tmp_path: Path, demo: Lab, forking: None, monkeypatch: pytest.MonkeyPatch) -> None:
    parent, real_write_part = os.getpid(), pipeline.writer.write_part

    def disk_full_here(lab_dir: Path, files: dict[str, str]) -> object:
        if os.getpid() == parent:
            raise OSError(28, "No space left on device")
        return real_write_part(lab_dir, files)

    monkeypatch.setattr(pipeline.writer, "write_part", disk_full_here)
    with pytest.raises(OSError, match="No space left"):
        generate_lab(demo, tmp_path)
    assert no_child_left()
