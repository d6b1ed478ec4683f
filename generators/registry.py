"""The explicit registry of generators: name -> render(lab, secrets) -> {relative path: text}."""

from __future__ import annotations

from collections.abc import Callable

from dtnlab.inventory.model import Lab

from . import ansible, mosquitto, topology, twins, uns
from .secrets import LabSecrets

Renderer = Callable[[Lab, LabSecrets], dict[str, str]]

GENERATORS: dict[str, Renderer] = {
    "topology": topology.render,
    "mosquitto": mosquitto.render,
    "uns": uns.render,
    "twins": twins.render,
    "ansible": ansible.render,
}


def select(names: list[str] | None) -> dict[str, Renderer]:
    """Return the chosen generators (all when `names` is empty); unknown names list the valid."""
    if not names:
        return GENERATORS
    unknown = [n for n in names if n not in GENERATORS]
    if unknown:
        raise KeyError(f"unknown generator {', '.join(unknown)}; "
                       f"supported generators are {', '.join(GENERATORS)}")
    return {n: GENERATORS[n] for n in names}
