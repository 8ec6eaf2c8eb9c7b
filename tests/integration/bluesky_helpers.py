"""Shared pieces of the Bluesky integration tests (imported by conftest and tests)."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass

from atproto_net.network import TestAccount
from PIL import Image

from connectors.bluesky import BlueskyConnector

ConnectorFactory = Callable[..., BlueskyConnector]


@dataclass
class BlueskyAccounts:
    """Three accounts for a test module: the team account and two advocates."""

    team: TestAccount
    bob: TestAccount
    carol: TestAccount


def png_bytes(size: tuple[int, int] = (64, 48), noise: bool = False) -> bytes:
    """A PNG; ``noise`` makes it incompressible (a 1000×1000 one is about 3 MB)."""
    if noise:
        image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    else:
        image = Image.new("RGB", size, (30, 120, 200))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@dataclass
class LinkPage:
    base_url: str
    requests: list[str]

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"
