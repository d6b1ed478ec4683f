"""Providers run a lab: an explicit registry of kinds sharing one base (up, down, status)."""

from __future__ import annotations

from .base import LabStatus, NodeStatus, Provider, ProviderError, ProviderUnavailable
from .clab import ClabProvider
from .local import LocalProvider
from .netns import NetnsProvider

PROVIDERS: dict[str, type[Provider]] = {
    "local": LocalProvider,
    "netns": NetnsProvider,
    "clab": ClabProvider,
}


def provider_class(name: str) -> type[Provider]:
    """The provider called `name`; an unknown name lists the valid ones."""
    try:
        return PROVIDERS[name]
    except KeyError:
        raise ProviderError(f"unknown provider {name!r}; supported providers are "
                            f"{', '.join(PROVIDERS)}") from None


__all__ = ["PROVIDERS", "LabStatus", "NodeStatus", "Provider", "ProviderError",
           "ProviderUnavailable", "provider_class"]
