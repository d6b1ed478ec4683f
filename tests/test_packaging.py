"""Every Python package folder is listed in pyproject.toml, so a non-editable install is whole."""

from __future__ import annotations

import tomllib

from tests.conftest import REPO

ROOTS = {"dtnlab": "dtnlab", "inventory": "dtnlab.inventory", "generators": "dtnlab.generators",
         "runtime": "dtnlab.runtime"}


def test_every_package_folder_is_listed() -> None:
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"])
    found = set()
    for folder, package in ROOTS.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder).parts
            found.add(".".join((package, *rel)))
    assert found == listed
