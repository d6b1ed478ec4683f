"""The explicit registry of generators: name -> render(lab, secrets) -> {relative path: text}."""

from __future__ import annotations

from collections.abc import Callable

from dtnlab.inventory.model import Lab

from . import ansible, mosquitto, topology, twins, uns
from .platforms import PlatformMap
from .secrets import LabSecrets

Renderer = Callable[[Lab, LabSecrets], dict[str, str]]

GENERATORS: dict[str, Renderer] = {
    "topology": topology.render,
    "mosquitto": mosquitto.render,
    "uns": uns.render,
    "twins": twins.render,
    "ansible": ansible.render,
}
# Generators that may refuse a lab (containerlab's limits and schema): they run before the lab's
# secrets are written, so a refused lab leaves nothing behind.
CHECKING = frozenset({"topology"})


def select(names: list[str] | None, platforms: PlatformMap | None = None) -> dict[str, Renderer]:
    """Return the chosen generators (all when `names` is empty); unknown names list the valid.

    Args:
        names: generator names, or None for every generator.
        platforms: the platform map the topology uses (None: the shipped one).
    """
    chosen = dict(GENERATORS)
    if platforms is not None:
        chosen["topology"] = topology.renderer(platforms)
    if not names:
        return chosen
    unknown = [n for n in names if n not in GENERATORS]
    if unknown:
        raise KeyError(f"unknown generator {', '.join(unknown)}; "
                       f"supported generators are {', '.join(GENERATORS)}")
    return {n: chosen[n] for n in names}
