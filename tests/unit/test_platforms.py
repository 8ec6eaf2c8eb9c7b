"""Each platform is described once, by its connector module, and read through the registry."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta

import pytest

from amplify.errors import ValidationFailed
from connectors import registry
from connectors.base import (
    Connector,
    PlatformInfo,
    Receipt,
    Reshare,
    WriteBudget,
)
from connectors.sandbox import SandboxConnector
from tests import made_up_platform as made_up


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


@pytest.fixture
def made_up_platform() -> Iterator[PlatformInfo]:
    with made_up.registered() as info:
        yield info


def test_the_cli_offers_a_newly_registered_platform(made_up_platform: PlatformInfo) -> None:
    from typer.testing import CliRunner

    from amplify.cli import app, credential_prompts

    refused = CliRunner().invoke(app, ["accounts", "add", "--platform", "nowhere", "--handle", "a"])
    assert refused.exit_code == 2
    assert "'nowhere' is not one of" in refused.output and "madeup" in refused.output
    assert credential_prompts("madeup") == ["Made Up token"]


def test_accounts_read_a_new_platforms_credentials_and_server_from_its_description(
    made_up_platform: PlatformInfo,
) -> None:
    from amplify import accounts

    assert accounts.parse_credentials("madeup", "tok-123\n") == {"token": "tok-123"}
    with pytest.raises(ValidationFailed) as refused:
        accounts.parse_credentials("madeup", "sekrit-a\nsekrit-b\n")
    assert made_up_platform.how_to in str(refused.value) and "sekrit" not in str(refused.value)
    help_ = accounts.platform_help("madeup")
    assert help_.service_url_default == "https://madeup.example"
    assert not help_.service_url_required


def test_a_new_platform_is_budgeted_from_its_description() -> None:
    from amplify import ratelimit

    budgeted = dataclasses.replace(
        made_up.MADE_UP, write_budgets=(WriteBudget("account", 50, timedelta(hours=1)),)
    )
    registry.register("madeup", SandboxConnector, budgeted)
    try:
        [limit] = ratelimit.LIMITS["madeup"]
        assert (limit.scope, limit.capacity, limit.window) == ("account", 50, timedelta(hours=1))
        assert "madeup" in ratelimit.LIMITS
    finally:
        registry.unregister("madeup")
    assert "madeup" not in ratelimit.LIMITS and "sandbox" not in ratelimit.LIMITS


def test_advocates_reshare_as_each_platform_says() -> None:
    from amplify import amplification

    assert amplification.reshare_on("x") == Reshare.SHARE_LINK
    assert amplification.reshare_on("bluesky") == Reshare.AUTOMATIC
    assert amplification.reshare_on("not-a-platform") == Reshare.NONE
    assert amplification.share_link("x", "42") == "https://x.com/intent/retweet?tweet_id=42"
    with pytest.raises(ValueError, match="no share links"):
        amplification.share_link("mastodon", "42")


@pytest.mark.parametrize("platform", registry.PLATFORMS)
def test_each_shipped_connector_implements_the_whole_contract(platform: str) -> None:
    contract = [
        name for name in vars(Connector) if callable(getattr(Connector, name)) and name[0] != "_"
    ]
    assert {"validate", "text_limit", "publish"} <= set(contract)
    missing = [
        name
        for name in contract
        if not callable(getattr(registry.connector_class(platform), name, None))
    ]
    assert missing == []
