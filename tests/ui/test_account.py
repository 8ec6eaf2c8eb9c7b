"""My account (own password, sign out everywhere) and password reset links (Team page, link)."""

from __future__ import annotations

import pytest
from uikit import PASSWORD, button, open_app, texts

from amplify import resets, sessions, users
from amplify.db import session_scope
from amplify.models import User
from amplify.ui import state

NEW = "purple tractor moonlight"


@pytest.fixture(autouse=True)
def _cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 at full cost takes ~0.4 s a hash on a busy machine; these tests are about the
    screens, so hash cheaply (tests/unit/test_users.py checks the real hasher)."""
    from argon2 import PasswordHasher

    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(users, "_hasher", cheap)
    monkeypatch.setattr(users, "_DUMMY_HASH", cheap.hash("timing"))


def _signed_in(email: str):
    at = open_app(None)
    at.text_input(key="keep_signin_email").input(email)
    at.text_input(key="signin_pw").input(PASSWORD)
    button(at, "Sign in").click().run()
    at.switch_page("amplify/ui/pages/profile.py").run()
    assert "My account" in texts(at)
    return at


def _fill(at, **values: str) -> None:
    for name, value in values.items():
        [field] = [t for t in at.text_input if t.key and t.key.startswith(f"me_pw_{name}_")]
        field.input(value)


def test_a_person_changes_their_own_password(people: dict[str, int]) -> None:
    at = _signed_in("volunteer@example.org")
    with session_scope() as s:
        elsewhere = sessions.start(s, s.get(User, people["volunteer"]))
    _fill(at, current=PASSWORD, new=NEW, again=NEW)
    button(at, "Change password").click().run()
    assert "Your password is changed. 1 other browser(s) were signed out." in texts(at)
    with session_scope() as s:
        assert users.authenticate(s, "volunteer@example.org", NEW) is not None
        assert sessions.resume(s, sessions.hash_token(elsewhere)) is None
    assert at.session_state["user_id"] == people["volunteer"]  # this browser stays in
    fields = [t for t in at.text_input if t.key and t.key.startswith("me_pw_")]
    assert all(f.value == "" for f in fields)  # typed passwords are not kept
    assert [f.proto.autocomplete for f in fields] == [
        "current-password",
        "new-password",
        "new-password",
    ]


def test_it_refuses_a_weak_new_password_or_a_wrong_current_one(people: dict[str, int]) -> None:
    at = _signed_in("lead@example.org")
    _fill(at, current=PASSWORD, new="password12", again="password12")
    button(at, "Change password").click().run()
    assert "This is a very common password." in texts(at)
    _fill(at, current="not my password", new=NEW, again=NEW)
    button(at, "Change password").click().run()
    assert "current password is not right" in texts(at)
    with session_scope() as s:
        assert users.authenticate(s, "lead@example.org", PASSWORD) is not None


def test_sign_out_everywhere_ends_every_session_this_one_included(
    people: dict[str, int],
) -> None:
    at = _signed_in("lead@example.org")
    with session_scope() as s:
        other = sessions.start(s, s.get(User, people["lead"]))
        assert len(sessions.live_sessions(s, people["lead"])) == 2
    at.run()
    assert len(at.dataframe[0].value) == 2  # both browsers are listed
    button(at, "Sign out everywhere").click().run()
    assert "Sign in to Amplify" in texts(at)
    assert "signed out everywhere" in texts(at)
    with session_scope() as s:
        assert sessions.live_sessions(s, people["lead"]) == []
        assert sessions.resume(s, sessions.hash_token(other)) is None


def test_an_admin_makes_a_reset_link_that_is_shown_once(people: dict[str, int]) -> None:
    at = open_app(people["admin"], "team.py")
    at.selectbox(key="tm_person").set_value(people["volunteer"]).run()
    button(at, "Make a password reset link").click().run()
    [code] = [c for c in at.code if "?reset=" in c.value]
    assert code.value.startswith("http://localhost:8501/?reset=")
    token = code.value.split("reset=", 1)[1]
    with session_scope() as s:
        assert resets.person_for(s, token) is not None
    at.run()
    assert not [c for c in at.code if "?reset=" in c.value]


def test_a_reset_link_opens_the_choose_a_new_password_screen(people: dict[str, int]) -> None:
    with session_scope() as s:
        link = resets.issue(s, s.get(User, people["admin"]), people["volunteer"])
    token = link.split("reset=", 1)[1]
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "app.py"), default_timeout=30)
    at.query_params[resets.QUERY_KEY] = token
    at.run()
    assert "Choose a new password" in texts(at)
    assert "volunteer@example.org" in texts(at).replace("\\", "")
    assert at.text_input(key="reset_pw1").proto.autocomplete == "new-password"
    at.text_input(key="reset_pw1").input("password12")
    at.text_input(key="reset_pw2").input("password12")
    button(at, "Save new password").click().run()
    assert "This is a very common password." in texts(at)
    at.text_input(key="reset_pw1").input(NEW)
    at.text_input(key="reset_pw2").input(NEW)
    button(at, "Save new password").click().run()
    assert "Sign in to Amplify" in texts(at)
    assert "Your new password is saved" in texts(at)
    with session_scope() as s:
        assert users.authenticate(s, "volunteer@example.org", NEW) is not None
    again = AppTest.from_file(
        str(Path(__file__).resolve().parents[2] / "app.py"), default_timeout=30
    )
    again.query_params[resets.QUERY_KEY] = token
    again.run()
    assert "expired or was already used" in texts(again)


def test_a_reset_ends_the_session_of_a_browser_signed_in_as_that_person(
    people: dict[str, int],
) -> None:
    at = open_app(None)
    at.text_input(key="keep_signin_email").input("volunteer@example.org")
    at.text_input(key="signin_pw").input(PASSWORD)
    button(at, "Sign in").click().run()
    assert state.TOKEN_KEY in at.session_state
    with session_scope() as s:
        resets.issue(s, s.get(User, people["admin"]), people["volunteer"])
    at.run()
    assert "Sign in to Amplify" in texts(at)
    assert "You were signed out" in texts(at)
