"""The twin engine: validation, health state, quality, anomalies, alerts, aggregates, commands."""

from __future__ import annotations

from .commands import CommandTimeout, UnknownDevice
from .engine import Engine, EngineConfig
from .health import STATES, Hysteresis

__all__ = ["STATES", "CommandTimeout", "Engine", "EngineConfig", "Hysteresis", "UnknownDevice"]
