"""A platform no module ships, for tests that prove one registry call is all a new one needs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from connectors import registry
from connectors.base import CredentialField, PlatformInfo
from connectors.sandbox import SandboxConnector

MADE_UP = PlatformInfo(
    name="madeup",
    label="Made Up",
    steps="1. Open *Made Up → Settings → Tokens*.\n2. Paste the madeup token below.",
    how_to="Paste one line: the token from Made Up's Settings → Tokens.",
    handle_label="Made Up handle",
    credentials=(CredentialField("token", "Made Up token"),),
    service_label="Made Up server",
    default_service_url="https://madeup.example",
)


@contextmanager
def registered() -> Iterator[PlatformInfo]:
    """Register the made-up platform (as a new module's registry line would) for a while."""
    registry.register("madeup", SandboxConnector, MADE_UP)
    try:
        yield MADE_UP
    finally:
        registry.unregister("madeup")
