"""Link impairments (delay, jitter, loss) parsed from cable custom fields and `dtnlab link`."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

_TIME = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s)?\s*$")
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%?\s*$")
_TIME_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, None: 1.0}


class ImpairmentError(ValueError):
    """An impairment value that cannot be read; the message names the value."""


def parse_ms(value: Any, what: str = "delay") -> float:
    """A time such as "50ms", "0.5s", "200us" or a bare number of milliseconds, in ms."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        ms = float(value)
    else:
        match = _TIME.match(str(value))
        if not match:
            raise ImpairmentError(f"{what} {value!r}: expected a time such as 50ms, 0.5s or 200us")
        ms = float(match.group(1)) * _TIME_UNITS_MS[match.group(2)]
    if ms < 0 or ms > 60_000:
        raise ImpairmentError(f"{what} {value!r}: must be between 0 and 60s")
    return ms


def parse_percent(value: Any, what: str = "loss") -> float:
    """A percentage such as "5%", "0.5%" or a bare number, 0..100."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        pct = float(value)
    else:
        match = _PERCENT.match(str(value))
        if not match:
            raise ImpairmentError(f"{what} {value!r}: expected a percentage such as 5%")
        pct = float(match.group(1))
    if not 0 <= pct <= 100:
        raise ImpairmentError(f"{what} {value!r}: must be between 0% and 100%")
    return pct


def _fmt_ms(ms: float) -> str:
    return f"{ms:g}ms"


@dataclass(frozen=True)
class Impairment:
    """One-way impairment of a cable, applied to each direction of it."""

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss_pct: float = 0.0

    @classmethod
    def from_fields(cls, fields: dict[str, Any] | None) -> Impairment:
        """From a cable's `impairment` dict ({delay, jitter, loss}, any may be missing)."""
        fields = fields or {}
        unknown = sorted(set(fields) - {"delay", "jitter", "loss"})
        if unknown:
            raise ImpairmentError(f"unknown impairment {', '.join(unknown)}; "
                                  "known: delay, jitter, loss")
        return cls(delay_ms=parse_ms(fields.get("delay", 0), "delay"),
                   jitter_ms=parse_ms(fields.get("jitter", 0), "jitter"),
                   loss_pct=parse_percent(fields.get("loss", 0), "loss"))

    @property
    def active(self) -> bool:
        return bool(self.delay_ms or self.jitter_ms or self.loss_pct)

    def with_setting(self, kind: str, value: str) -> Impairment:
        """This impairment with delay, jitter or loss changed (`dtnlab link A B delay 50ms`)."""
        if kind == "delay":
            return replace(self, delay_ms=parse_ms(value, "delay"))
        if kind == "jitter":
            return replace(self, jitter_ms=parse_ms(value, "jitter"))
        if kind == "loss":
            return replace(self, loss_pct=parse_percent(value, "loss"))
        raise ImpairmentError(f"unknown impairment {kind!r}; known: delay, jitter, loss")

    def to_fields(self) -> dict[str, str]:
        """Back to the cable-field form, omitting what is zero."""
        fields = {}
        if self.delay_ms:
            fields["delay"] = _fmt_ms(self.delay_ms)
        if self.jitter_ms:
            fields["jitter"] = _fmt_ms(self.jitter_ms)
        if self.loss_pct:
            fields["loss"] = f"{self.loss_pct:g}%"
        return fields

    def netem_args(self) -> list[str]:
        """Arguments after `tc qdisc replace dev X root netem`."""
        args = ["delay", _fmt_ms(self.delay_ms)]
        if self.jitter_ms:
            args.append(_fmt_ms(self.jitter_ms))
        if self.loss_pct:
            args += ["loss", f"{self.loss_pct:g}%"]
        return args

    def describe(self) -> str:
        return " ".join(f"{k} {v}" for k, v in self.to_fields().items()) or "none"
