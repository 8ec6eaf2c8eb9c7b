"""Platform name → connector class, each module imported on first use."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from connectors.base import Connector, ConnectorContext

_MODULES = {
    "sandbox": "connectors.sandbox:SandboxConnector",
    "x": "connectors.x:XConnector",
    "bluesky": "connectors.bluesky:BlueskyConnector",
    "mastodon": "connectors.mastodon:MastodonConnector",
}

PLATFORMS: tuple[str, ...] = tuple(_MODULES)

# Connectors passed in at run time (tests bring their own); never offered to users.
_REGISTERED: dict[str, Callable[[ConnectorContext], Connector]] = {}


def register(platform: str, connector: Callable[[ConnectorContext], Connector]) -> None:
    """Make ``platform`` buildable by name without adding it to PLATFORMS."""
    if platform in _MODULES:
        raise ValueError(f"{platform!r} is already a platform")
    _REGISTERED[platform] = connector


def unregister(platform: str) -> None:
    _REGISTERED.pop(platform, None)


def buildable() -> tuple[str, ...]:
    """PLATFORMS and whatever was registered at run time."""
    return (*PLATFORMS, *_REGISTERED)


def connector_class(platform: str) -> Any:
    if platform in _REGISTERED:
        return _REGISTERED[platform]
    try:
        target = _MODULES[platform]
    except KeyError:
        raise ValueError(
            f"unknown platform {platform!r}; choose one of: {', '.join(PLATFORMS)}"
        ) from None
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def build(platform: str, context: ConnectorContext) -> Connector:
    connector: Connector = connector_class(platform)(context)
    return connector
