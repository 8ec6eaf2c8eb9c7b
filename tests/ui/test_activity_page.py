"""Activity reads like the rest of the dashboard: times in the workspace zone, no widget
jargon ("Choose options")."""

from __future__ import annotations

from collections.abc import Callable
from zoneinfo import ZoneInfo

from streamlit.testing.v1 import AppTest

from amplify.ui.pages.activity import _detail_text

CHICAGO = ZoneInfo("America/Chicago")


def test_a_time_in_an_events_details_is_shown_in_the_workspace_zone() -> None:
    text = _detail_text(
        {"account_ids": [1], "scheduled_for": "2026-12-02T00:00:00+00:00", "note": "2026-"},
        CHICAGO,
    )
    assert "scheduled_for=Tue 01 Dec 2026 18:00 CST" in text
    assert "+00:00" not in text
    assert text.startswith("account_ids=[1], ") and text.endswith("note=2026-")


def test_text_that_only_looks_like_a_date_is_left_as_typed() -> None:
    assert _detail_text({"note": "2026-13-45 was a typo"}, CHICAGO) == "note=2026-13-45 was a typo"
    assert _detail_text(None, CHICAGO) == ""


def test_the_action_filter_offers_all_actions_not_choose_options(
    app_as: Callable[..., AppTest],
) -> None:
    at = app_as("admin", "activity.py")
    assert not at.exception
    assert at.multiselect(key="act_actions").proto.placeholder == "All actions"
