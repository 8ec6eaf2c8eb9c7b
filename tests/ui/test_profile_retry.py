"""My account: a password change that is refused once (a typo in "again") can be tried
again; every later try used to read empty fields and fail, the right one included."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest
from uikit import PASSWORD, button, open_app, texts

from amplify import users
from amplify.db import session_scope

NEW = "purple tractor moonlight"


@pytest.fixture(autouse=True)
def _cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    from argon2 import PasswordHasher

    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(users, "_hasher", cheap)
    monkeypatch.setattr(users, "_DUMMY_HASH", cheap.hash("timing"))


def _fill(at: AppTest, **values: str) -> None:
    for name, value in values.items():
        [field] = [t for t in at.text_input if t.key and t.key.startswith(f"me_pw_{name}_")]
        field.input(value)


def test_a_refused_password_change_can_be_tried_again_and_then_succeeds(
    people: dict[str, int],
) -> None:
    at = open_app(people["volunteer"], "profile.py")
    _fill(at, current=PASSWORD, new=NEW, again=NEW + "x")
    button(at, "Change password").click().run()
    assert "The two new passwords are not the same" in texts(at)
    fields = [t for t in at.text_input if t.key and t.key.startswith("me_pw_")]
    assert fields and all(f.value == "" for f in fields), "typed passwords are not kept"
    _fill(at, current=PASSWORD, new=NEW, again=NEW)
    button(at, "Change password").click().run()
    assert "Your password is changed." in texts(at), texts(at)
    with session_scope() as s:
        assert users.authenticate(s, "volunteer@example.org", NEW) is not None
