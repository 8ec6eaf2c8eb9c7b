"""Sign-in: first admin, local passwords, sign out, deactivation, single sign-on only if set."""

from __future__ import annotations

from uikit import PASSWORD, button, open_app, texts

from amplify import users
from amplify.db import session_scope
from amplify.models import User


def test_it_asks_an_empty_workspace_to_create_its_first_admin(sqlite_url: str) -> None:
    at = open_app(None)
    assert "Welcome to Amplify" in texts(at)
    at.text_input(key="keep_first_name").input("Ada Admin")
    at.text_input(key="keep_first_email").input("ada@example.org")
    at.text_input(key="first_pw").input("long enough password")
    button(at, "Create admin and sign in").click().run()
    with session_scope() as s:
        ada = users.get_by_email(s, "ada@example.org")
        assert ada is not None and ada.role == "admin"
        assert at.session_state["user_id"] == ada.id
    assert "Welcome to Amplify" not in texts(at)
    assert [b for b in at.button if b.label == "Sign out"]


def test_it_keeps_what_was_typed_when_the_first_admin_is_invalid(sqlite_url: str) -> None:
    at = open_app(None)
    at.text_input(key="keep_first_name").input("Ada Admin")
    at.text_input(key="keep_first_email").input("not-an-email")
    at.text_input(key="first_pw").input("short")
    button(at, "Create admin and sign in").click().run()
    assert at.error, "a problem should be shown"
    assert at.text_input(key="keep_first_name").value == "Ada Admin"
    assert at.text_input(key="keep_first_email").value == "not-an-email"
    with session_scope() as s:
        assert not users.has_users(s)


def test_it_signs_in_with_the_right_password_only(people: dict[str, int]) -> None:
    at = open_app(None)
    assert "Sign in to Amplify" in texts(at)
    at.text_input(key="keep_signin_email").input("lead@example.org")
    at.text_input(key="signin_pw").input("wrong password!")
    button(at, "Sign in").click().run()
    assert "do not match" in texts(at)
    assert at.session_state["keep_signin_email"] == "lead@example.org"
    at.text_input(key="signin_pw").input(PASSWORD)
    button(at, "Sign in").click().run()
    assert at.session_state["user_id"] == people["lead"]


def test_it_signs_out(people: dict[str, int]) -> None:
    at = open_app(people["volunteer"])
    button(at, "Sign out").click().run()
    assert "user_id" not in at.session_state
    assert "Sign in to Amplify" in texts(at)


def test_it_bounces_a_person_deactivated_since_signing_in(people: dict[str, int]) -> None:
    at = open_app(people["volunteer"])
    with session_scope() as s:
        admin = s.get(User, people["admin"])
        users.set_active(s, admin, people["volunteer"], False)
    at.run()
    assert "deactivated" in texts(at)
    assert "Sign in to Amplify" in texts(at)


def test_it_hides_single_sign_on_unless_configured(people: dict[str, int]) -> None:
    at = open_app(None)
    assert not [b for b in at.button if "single sign-on" in b.label]


def test_it_offers_single_sign_on_when_auth_secrets_exist(people: dict[str, int]) -> None:
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    app = Path(__file__).resolve().parents[2] / "app.py"
    at = AppTest.from_file(str(app), default_timeout=30)
    at.secrets["auth"] = {"client_id": "x", "client_secret": "y", "redirect_uri": "http://l"}
    at.run()
    assert [b for b in at.button if "single sign-on" in b.label]


def test_it_maps_a_verified_sso_email_to_an_existing_active_person(
    people: dict[str, int],
) -> None:
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    app = Path(__file__).resolve().parents[2] / "app.py"
    at = AppTest.from_file(str(app), default_timeout=30)
    at.secrets["auth"] = {"client_id": "x", "client_secret": "y", "redirect_uri": "http://l"}
    at.user = {"is_logged_in": True, "email": "lead@example.org", "email_verified": True}
    at.run()
    assert at.session_state["user_id"] == people["lead"]
    stranger = AppTest.from_file(str(app), default_timeout=30)
    stranger.secrets["auth"] = {"client_id": "x", "client_secret": "y", "redirect_uri": "http://l"}
    stranger.user = {"is_logged_in": True, "email": "who@example.org", "email_verified": True}
    stranger.run()
    assert "user_id" not in stranger.session_state
    assert "not an active person" in texts(stranger)


def test_it_opens_the_page_the_url_asked_for_after_sign_in(people: dict[str, int]) -> None:
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    app = Path(__file__).resolve().parents[2] / "app.py"
    at = AppTest.from_file(str(app), default_timeout=30)
    at.context = {"url": "http://localhost:8501/review"}
    at.run()
    at.text_input(key="keep_signin_email").input("volunteer@example.org")
    at.text_input(key="signin_pw").input(PASSWORD)
    button(at, "Sign in").click().run()
    assert "Only leads and admins can approve stories." in texts(at)


def test_it_refuses_single_sign_on_without_a_verified_email(people: dict[str, int]) -> None:
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    app = Path(__file__).resolve().parents[2] / "app.py"
    at = AppTest.from_file(str(app), default_timeout=30)
    at.secrets["auth"] = {"client_id": "x", "client_secret": "y", "redirect_uri": "http://l"}
    at.user = {"is_logged_in": True, "email": "lead@example.org", "email_verified": False}
    at.run()
    assert "user_id" not in at.session_state
    assert "did not give a verified email address" in texts(at)
