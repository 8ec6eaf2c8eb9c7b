"""Every page, every role: the page for those allowed, a refusal for the others (even by URL)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from streamlit.testing.v1 import AppTest
from uikit import texts

from amplify.ui.nav import PAGES
from amplify.ui.widgets import REFUSAL_HINT

MINE = [p for p in PAGES if p.file != "reach.py"]
ALLOWED = {
    "volunteer": {"share.py", "my_stories.py", "amplify_page.py", "profile.py"},
    "lead": {
        "share.py",
        "my_stories.py",
        "amplify_page.py",
        "review.py",
        "calendar.py",
        "activity.py",
        "system.py",
        "profile.py",
    },
    "admin": {p.file for p in MINE},
}


@pytest.mark.parametrize("role", ["volunteer", "lead", "admin"])
@pytest.mark.parametrize("spec", MINE, ids=lambda p: p.file)
def test_it_shows_each_page_only_to_the_roles_allowed_it(
    app_as: Callable[..., AppTest], role: str, spec: object
) -> None:
    at = app_as(role, spec.file)  # type: ignore[attr-defined]
    assert not at.exception, [e.value for e in at.exception]
    shown = texts(at)
    if spec.file in ALLOWED[role]:  # type: ignore[attr-defined]
        assert spec.title in [t.value for t in at.title], shown  # type: ignore[attr-defined]
        assert REFUSAL_HINT not in shown
    else:
        assert REFUSAL_HINT in shown, shown
        assert spec.title not in [t.value for t in at.title]  # type: ignore[attr-defined]


def test_it_lands_a_volunteer_on_share_a_story(app_as: Callable[..., AppTest]) -> None:
    at = app_as("volunteer")
    assert [t.value for t in at.title] == ["Share a story"]


def test_it_refuses_a_volunteer_the_review_page_by_url(app_as: Callable[..., AppTest]) -> None:
    at = app_as("volunteer", "review.py")
    assert "Only leads and admins can approve stories." in texts(at)
    assert not [b for b in at.button if b.label == "Approve"]
