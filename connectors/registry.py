"""Platform name → connector class and description, each module imported on first use.

Adding a platform: one module in ``connectors/`` exporting its connector class and
``INFO`` (a :class:`connectors.base.PlatformInfo`), and one line in ``_MODULES``."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from connectors.base import Connector, ConnectorContext, PlatformInfo

_MODULES = {
    "sandbox": "connectors.sandbox:SandboxConnector",
    "x": "connectors.x:XConnector",
    "bluesky": "connectors.bluesky:BlueskyConnector",
    "mastodon": "connectors.mastodon:MastodonConnector",
}

PLATFORMS: tuple[str, ...] = tuple(_MODULES)

# Connectors passed in at run time (tests bring their own); offered to people only when
# registered with a description.
_REGISTERED: dict[str, Callable[[ConnectorContext], Connector]] = {}
_REGISTERED_INFO: dict[str, PlatformInfo] = {}


def register(
    platform: str,
    connector: Callable[[ConnectorContext], Connector],
    info: PlatformInfo | None = None,
) -> None:
    """Make ``platform`` buildable by name; with ``info`` it is also offered (``platforms()``)."""
    if platform in _MODULES:
        raise ValueError(f"{platform!r} is already a platform")
    _REGISTERED[platform] = connector
    if info is not None:
        _REGISTERED_INFO[platform] = info


def unregister(platform: str) -> None:
    _REGISTERED.pop(platform, None)
    _REGISTERED_INFO.pop(platform, None)


def platforms() -> tuple[str, ...]:
    """The platforms offered to people: PLATFORMS and any registered with a description."""
    return (*PLATFORMS, *_REGISTERED_INFO)


def info(platform: str) -> PlatformInfo:
    """What ``platform``'s connector module says about it (ValueError if unknown)."""
    if platform in _REGISTERED_INFO:
        return _REGISTERED_INFO[platform]
    description: PlatformInfo = _module(platform).INFO
    return description


def _module(platform: str) -> Any:
    try:
        target = _MODULES[platform]
    except KeyError:
        raise ValueError(
            f"unknown platform {platform!r}; choose one of: {', '.join(platforms())}"
        ) from None
    return importlib.import_module(target.partition(":")[0])


def buildable() -> tuple[str, ...]:
    """PLATFORMS and whatever was registered at run time."""
    return (*PLATFORMS, *_REGISTERED)


def connector_class(platform: str) -> Any:
    if platform in _REGISTERED:
        return _REGISTERED[platform]
    return getattr(_module(platform), _MODULES[platform].partition(":")[2])


def build(platform: str, context: ConnectorContext) -> Connector:
    connector: Connector = connector_class(platform)(context)
    return connector
