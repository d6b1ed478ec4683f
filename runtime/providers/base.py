"""What every provider does: bring a lab up, tear it down, say how it is (lifecycle hooks)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from .states import TwinStates, twin_states


class ProviderError(Exception):
    """The lab could not be brought up or down; the message says what to look at."""


class ProviderUnavailable(ProviderError):
    """This host cannot run the provider at all (a tool is missing); nothing was started."""


@dataclass(frozen=True)
class NodeStatus:
    name: str
    pid: int | None
    alive: bool
    state: str = ""
    restarts: int = 0
    last_exit: int | None = None


@dataclass
class LabStatus:
    nodes: list[NodeStatus] = field(default_factory=list)
    twins: TwinStates = field(default_factory=TwinStates)

    @property
    def running(self) -> bool:
        return any(n.alive for n in self.nodes)


class Provider(ABC):
    """One way of running a lab. Subclasses override the hooks; `status` is shared.

    Args:
        lab_dir: the generated lab folder.
    """

    name: ClassVar[str]

    def __init__(self, lab_dir: Path) -> None:
        self.lab_dir = lab_dir.resolve()

    @abstractmethod
    def up(self, timeout: float = 60.0) -> LabStatus:
        """Start every node and wait until the broker answers and the twins report."""

    @abstractmethod
    def down(self) -> list[str]:
        """Stop what `up` started, and only that; return the nodes stopped."""

    @abstractmethod
    def nodes(self) -> list[NodeStatus]:
        """Each node and whether it runs."""

    def status(self, wait_s: float = 5.0) -> LabStatus:
        """Nodes, and each twin's state as the running lab reports it."""
        nodes = self.nodes()
        broker_alive = any(n.alive for n in nodes if n.name == "broker")
        twins = twin_states(self.lab_dir, wait_s) if broker_alive else TwinStates()
        return LabStatus(nodes, twins)
