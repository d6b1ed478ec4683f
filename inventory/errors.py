"""Inventory problems: collected all at once, each naming the object and the field."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class Problem:
    endpoint: str
    obj: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.endpoint}[{self.obj}].{self.field}: {self.message}"


@dataclass
class Problems:
    """Collects problems so one bad object never hides the others."""

    items: list[Problem] = field(default_factory=list)

    def add(self, endpoint: str, obj: object, field_name: str, message: str) -> None:
        self.items.append(Problem(endpoint, printable(str(obj)), field_name, message))

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self, source: str) -> None:
        if self.items:
            raise InventoryError(source, sorted(set(self.items), key=_order(self.items)))


def _order(items: list[Problem]) -> Callable[[Problem], int]:
    first_seen = {p: i for i, p in reversed(list(enumerate(items)))}
    return lambda p: first_seen[p]


def printable(text: str) -> str:
    """Escape control characters so a hostile name cannot garble a terminal or a log."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class InventoryError(Exception):
    """Raised with every problem found in an inventory; the CLI exits with code 2."""

    exit_code = 2

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        lines = [f"{source}: {count}"] + [f"  {p}" for p in problems]
        super().__init__("\n".join(lines))
