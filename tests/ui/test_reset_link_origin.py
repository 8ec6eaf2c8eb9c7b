"""A reset link that starts with another address than the one the admin opened Amplify at
(AMPLIFY_PUBLIC_URL left at its default, the dashboard on another port or behind a proxy)
is flagged beside the link, with what to do, instead of a link that cannot open."""

from __future__ import annotations

import pytest
from streamlit.runtime.context import ContextProxy
from streamlit.testing.v1 import AppTest
from uikit import button, open_app

from amplify.ui.pages.team import _origin


def _reset_link_page(
    monkeypatch: pytest.MonkeyPatch, opened_at: str, people: dict[str, int]
) -> AppTest:
    monkeypatch.setattr(ContextProxy, "url", property(lambda self: opened_at))
    at = open_app(people["admin"], "team.py")
    at.selectbox(key="tm_person").set_value(people["volunteer"]).run()
    button(at, "Make a password reset link").click().run()
    assert [c for c in at.code if "?reset=" in c.value]
    return at


def test_it_warns_when_the_link_starts_with_another_address_than_the_one_opened(
    monkeypatch: pytest.MonkeyPatch, people: dict[str, int]
) -> None:
    at = _reset_link_page(monkeypatch, "http://127.0.0.1:8611/team", people)
    [warning] = [w.value for w in at.warning if "AMPLIFY_PUBLIC_URL" in w.value]
    assert "http://localhost:8501" in warning and "http://127.0.0.1:8611" in warning


def test_it_says_nothing_when_the_link_matches_the_address_opened(
    monkeypatch: pytest.MonkeyPatch, people: dict[str, int]
) -> None:
    at = _reset_link_page(monkeypatch, "http://LOCALHOST:8501/team", people)
    assert not [w for w in at.warning if "AMPLIFY_PUBLIC_URL" in w.value]


def test_an_origin_is_scheme_host_and_port_only() -> None:
    assert _origin("https://amplify.example.org/team?x=1") == "https://amplify.example.org"
    assert _origin(None) == "" and _origin("not a url") == ""
