"""Each platform is described once, by its connector module, and read through the registry."""

from __future__ import annotations

import pytest

from connectors import registry
from connectors.base import PlatformInfo, Receipt, Reshare


@pytest.mark.parametrize("platform", registry.PLATFORMS)
def test_each_connector_module_describes_its_own_platform(platform: str) -> None:
    info = registry.info(platform)
    assert isinstance(info, PlatformInfo)
    assert info.name == platform == registry.connector_class(platform).platform
    assert info.label and info.steps and info.how_to and info.handle_label


@pytest.mark.parametrize("platform", registry.PLATFORMS)
def test_share_link_platforms_bring_their_link_builder(platform: str) -> None:
    info = registry.info(platform)
    assert (info.share_link is not None) == (info.reshare == Reshare.SHARE_LINK)
    if info.share_link is not None:
        assert "123" in info.share_link(Receipt(remote_id="123"))


def test_a_registered_platform_is_offered_only_with_a_description() -> None:
    described = PlatformInfo(
        name="madeup", label="Made Up", steps="s", how_to="h", handle_label="Handle"
    )
    registry.register("quiet", lambda ctx: None)  # type: ignore[arg-type,return-value]
    registry.register("madeup", lambda ctx: None, described)  # type: ignore[arg-type,return-value]
    try:
        assert "madeup" in registry.platforms() and "quiet" not in registry.platforms()
        assert registry.info("madeup") is described
    finally:
        registry.unregister("quiet")
        registry.unregister("madeup")
    assert "madeup" not in registry.platforms()
    with pytest.raises(ValueError, match="unknown platform"):
        registry.info("madeup")
