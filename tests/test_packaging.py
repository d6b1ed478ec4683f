"""A non-editable install is whole: every package, the templates and the data files ship in the
wheel, and the installed layout generates a lab on its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.conftest import DEMO_INVENTORY, REPO

ROOTS = {"dtnlab": "dtnlab", "inventory": "dtnlab.inventory", "generators": "dtnlab.generators",
         "runtime": "dtnlab.runtime", "templates": "dtnlab.templates"}
# Folders of data, not code: shipped as packages of their own (pyproject's `packages`).
DATA_FOLDERS = ("templates", "runtime/dashboard")


def test_every_package_folder_is_listed() -> None:
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"])
    folders = {init.parent for root in ROOTS for init in (REPO / root).rglob("__init__.py")}
    folders |= {d for data in DATA_FOLDERS for d in [REPO / data, *(REPO / data).rglob("*")]
                if d.is_dir() and d.name != "__pycache__"}
    found = set()
    for folder in folders:
        root = next(r for r in ROOTS if folder.is_relative_to(REPO / r))
        found.add(".".join((ROOTS[root], *folder.relative_to(REPO / root).parts)))
    assert found == listed


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # setuptools builds in the source tree: build a copy, so the checkout is left as it was.
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for folder in ROOTS:
        shutil.copytree(REPO / folder, source / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
         "--wheel-dir", str(out), str(source)],
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    (path,) = out.glob("dtnlab-*.whl")
    return path


def shipped(source: Path) -> set[str]:
    """Where each file under a folder of the repository lands in the installed package."""
    root = next(r for r in ROOTS if source.is_relative_to(REPO / r))
    base = Path(*ROOTS[root].split("."))
    return {str(base / p.relative_to(REPO / root)) for p in source.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


def test_the_wheel_holds_templates_and_data_files(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = (shipped(REPO / "templates") | shipped(REPO / "runtime" / "dashboard")
              | {"dtnlab/generators/platforms.yml", "dtnlab/generators/clab.schema.json"})
    assert any(n.endswith(".j2") for n in wanted)
    assert wanted <= names, sorted(wanted - names)


def test_the_installed_layout_generates_a_lab(wheel: Path, tmp_path: Path) -> None:
    # A wheel install is the wheel unpacked onto the path: put it first, run from elsewhere.
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run(
        [sys.executable, "-c", "import dtnlab.generators.jinja as j; print(j.TEMPLATES)"],
        cwd=work, env=env, capture_output=True, text=True, check=True)
    assert where.stdout.strip() == str(site / "dtnlab" / "templates")
    done = subprocess.run(
        [sys.executable, "-m", "dtnlab", "generate", "--inventory", str(DEMO_INVENTORY),
         "--labs-dir", str(work / "labs")],
        cwd=work, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    conf = work / "labs" / "demo-plant" / "mosquitto" / "mosquitto.conf"
    assert "listener 11883" in conf.read_text()  # rendered from templates/mosquitto/
