"""Platform name → connector class, each module imported on first use."""

from __future__ import annotations

import importlib
from typing import Any

from connectors.base import Connector, ConnectorContext

_MODULES = {
    "sandbox": "connectors.sandbox:SandboxConnector",
    "x": "connectors.x:XConnector",
    "bluesky": "connectors.bluesky:BlueskyConnector",
    "mastodon": "connectors.mastodon:MastodonConnector",
}

PLATFORMS: tuple[str, ...] = tuple(_MODULES)

# For tests only: buildable by name, but not in PLATFORMS, so never offered to users.
_MODULES["memory"] = "connectors.memory:MemoryConnector"


def connector_class(platform: str) -> Any:
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
