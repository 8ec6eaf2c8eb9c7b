"""AppTest fixtures: a fresh SQLite per test (``sqlite_url``), people of each role, and an
app signed in as one of them. Helpers live in uikit.py."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from streamlit.testing.v1 import AppTest
from uikit import make_user, open_app


@pytest.fixture
def people(sqlite_url: str) -> dict[str, int]:
    """An admin, a lead and a volunteer, by role."""
    admin = make_user("admin")
    return {"admin": admin, "lead": make_user("lead"), "volunteer": make_user("volunteer")}


@pytest.fixture
def app_as(people: dict[str, int]) -> Callable[..., AppTest]:
    def _open(role: str, page: str | None = None) -> AppTest:
        return open_app(people[role], page)

    return _open
