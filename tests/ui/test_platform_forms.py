"""The Accounts page draws a connect form for every platform the registry offers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from streamlit.testing.v1 import AppTest
from uikit import texts

from amplify.ui import widgets
from connectors.base import PlatformInfo
from tests import made_up_platform as made_up


@pytest.fixture
def made_up_platform() -> Iterator[PlatformInfo]:
    with made_up.registered() as info:
        yield info


def test_the_accounts_page_offers_a_newly_registered_platform(
    app_as: Callable[..., AppTest], made_up_platform: PlatformInfo
) -> None:
    at = app_as("admin", "accounts.py")
    assert "Made Up" in [tab.label for tab in at.tabs]
    assert "Paste the madeup token below" in texts(at)
    assert at.text_input(key="acc_madeup_handle").label == "Made Up handle"
    assert at.text_input(key="acc_madeup_service").value == "https://madeup.example"
    token = at.text_input(key=widgets.secret_key("acc_madeup", "token"))
    assert token.label == "Made Up token"
    assert widgets.platform_label("madeup") == "Made Up"


def test_the_accounts_page_keeps_a_tab_per_shipped_platform(
    app_as: Callable[..., AppTest],
) -> None:
    at = app_as("admin", "accounts.py")
    assert [tab.label for tab in at.tabs][:4] == ["Sandbox (practice)", "X", "Bluesky", "Mastodon"]
