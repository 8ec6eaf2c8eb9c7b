"""Sign-in: first admin, local passwords, sign out, deactivation, single sign-on only if set."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest
from uikit import PASSWORD, button, make_user, open_app, texts

from amplify import users
from amplify.db import session_scope
from amplify.models import User


@pytest.fixture(autouse=True)
def _cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 at full cost takes ~0.4 s a hash on a busy machine; these tests are about the
    screens, so hash cheaply (tests/unit/test_users.py checks the real hasher)."""
    from argon2 import PasswordHasher

    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(users, "_hasher", cheap)
    monkeypatch.setattr(users, "_DUMMY_HASH", cheap.hash("timing"))


def _first_admin_form(at: AppTest, email: str, password: str, *, again: str | None = None) -> None:
    """Fill the first-admin form (the password twice, or ``again`` the second time)."""
    at.text_input(key="keep_first_name").input("Ada Admin")
    at.text_input(key="keep_first_email").input(email)
    at.text_input(key="first_pw").input(password)
    at.text_input(key="first_pw2").input(password if again is None else again)


def test_it_asks_an_empty_workspace_to_create_its_first_admin(sqlite_url: str) -> None:
    at = open_app(None)
    assert "Welcome to Amplify" in texts(at)
    _first_admin_form(at, "ada@example.org", "long enough password", again="long enough passwrod")
    button(at, "Create admin and sign in").click().run()
    assert "The two passwords are not the same" in texts(at)
    with session_scope() as s:
        assert not users.has_users(s)
    at.text_input(key="first_pw2").input("long enough password")
    button(at, "Create admin and sign in").click().run()
    with session_scope() as s:
        ada = users.get_by_email(s, "ada@example.org")
        assert ada is not None and ada.role == "admin"
        assert at.session_state["user_id"] == ada.id
    assert "Welcome to Amplify" not in texts(at)
    assert [b for b in at.button if b.label == "Sign out"]


def test_it_keeps_what_was_typed_when_the_first_admin_is_invalid(sqlite_url: str) -> None:
    at = open_app(None)
    _first_admin_form(at, "not-an-email", "short")
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

    app = Path(__file__).resolve().parents[2] / "app.py"
    at = AppTest.from_file(str(app), default_timeout=30)
    at.secrets["auth"] = {"client_id": "x", "client_secret": "y", "redirect_uri": "http://l"}
    at.run()
    assert [b for b in at.button if "single sign-on" in b.label]


def test_it_maps_a_verified_sso_email_to_an_existing_active_person(
    people: dict[str, int],
) -> None:
    from pathlib import Path

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

    app = Path(__file__).resolve().parents[2] / "app.py"
    at = AppTest.from_file(str(app), default_timeout=30)
    at.secrets["auth"] = {"client_id": "x", "client_secret": "y", "redirect_uri": "http://l"}
    at.user = {"is_logged_in": True, "email": "lead@example.org", "email_verified": False}
    at.run()
    assert "user_id" not in at.session_state
    assert "did not give a verified email address" in texts(at)


# --------------------------------------------------------------------------- sessions


def _sign_in(email: str, password: str = PASSWORD):
    at = open_app(None)
    at.text_input(key="keep_signin_email").input(email)
    at.text_input(key="signin_pw").input(password)
    button(at, "Sign in").click().run()
    return at


def _navigations(at) -> list[str]:
    return [h.proto.body for h in at.get("html") if "location.replace" in h.proto.body]


@pytest.fixture
def routes_served(monkeypatch: pytest.MonkeyPatch) -> None:
    """As under amplify/ui/server.py, which serves the cookie routes beside the app."""
    from amplify.ui import state

    monkeypatch.setattr(state, "_routes_served", True)


def test_it_sends_the_browser_to_fetch_an_httponly_cookie_after_sign_in(
    people: dict[str, int], routes_served: None
) -> None:
    from urllib.parse import parse_qs, urlsplit

    from amplify import sessions
    from amplify.models import UserSession
    from amplify.ui import state

    at = _sign_in("lead@example.org")
    token = at.session_state[state.TOKEN_KEY]
    [script] = _navigations(at)
    assert token not in script  # the token itself never goes into a URL
    url = script.split('var u="', 1)[1].split('"', 1)[0]
    assert urlsplit(url).path == "/auth/session"
    [handoff] = parse_qs(urlsplit(url).query)["h"]
    with session_scope() as s:
        row = s.query(UserSession).one()
        assert row.user_id == people["lead"] and row.token_hash == sessions.hash_token(token)
        assert sessions.claim_handoff(s, handoff) == token
    at.run()
    assert not _navigations(at)  # once only


def test_it_sends_the_browser_to_drop_its_cookie_after_signing_out(
    people: dict[str, int], routes_served: None
) -> None:
    at = _sign_in("volunteer@example.org")
    at.run()
    button(at, "Sign out").click().run()
    [script] = _navigations(at)
    assert 'var u="/auth/signout"' in script
    assert "Sign in to Amplify" in texts(at)


def test_it_keeps_the_sign_in_to_the_tab_when_served_without_the_cookie_routes(
    people: dict[str, int],
) -> None:
    at = _sign_in("lead@example.org")  # `streamlit run app.py`: no routes to send the browser to
    assert at.session_state["user_id"] == people["lead"]
    assert not _navigations(at)


def test_it_keeps_a_person_signed_in_after_a_reload_or_in_a_new_tab(
    people: dict[str, int], monkeypatch, routes_served: None
) -> None:
    from amplify.ui import state

    first = _sign_in("lead@example.org")
    token = first.session_state[state.TOKEN_KEY]
    # A reload or a new tab is a fresh Streamlit session that only has the browser's cookie.
    monkeypatch.setattr(state, "cookie_token", lambda: token)
    reloaded = open_app(None)
    assert reloaded.session_state["user_id"] == people["lead"]
    assert "Sign in to Amplify" not in texts(reloaded)
    assert not _navigations(reloaded)  # a cookie already held is not fetched again
    # Signing out in the first tab ends the session the second one is using, on its next click.
    button(first, "Sign out").click().run()
    reloaded.run()
    assert "Sign in to Amplify" in texts(reloaded)
    assert "user_id" not in reloaded.session_state


def test_it_ignores_a_cookie_whose_session_was_ended(people: dict[str, int], monkeypatch) -> None:
    from amplify.ui import state

    monkeypatch.setattr(state, "cookie_token", lambda: "made-up-or-revoked-token")
    at = open_app(None)
    assert "Sign in to Amplify" in texts(at)
    assert "user_id" not in at.session_state


def test_it_signs_a_deactivated_person_out_of_every_browser_at_once(
    people: dict[str, int],
) -> None:
    at = _sign_in("volunteer@example.org")
    assert at.session_state["user_id"] == people["volunteer"]
    with session_scope() as s:
        users.set_active(s, s.get(User, people["admin"]), people["volunteer"], False)
    at.run()
    assert "deactivated" in texts(at)
    assert "Sign in to Amplify" in texts(at)


def test_it_tells_password_managers_which_password_is_which(sqlite_url: str) -> None:
    at = open_app(None)
    assert at.text_input(key="first_pw").proto.autocomplete == "new-password"
    make_user("admin")
    at = open_app(None)
    assert at.text_input(key="signin_pw").proto.autocomplete == "current-password"
    assert at.text_input(key="keep_signin_email").proto.autocomplete == "username"


# --------------------------------------------------------------------------- throttling


def test_it_makes_the_sixth_try_wait_with_a_clear_message(people: dict[str, int]) -> None:
    at = open_app(None)
    at.text_input(key="keep_signin_email").input("lead@example.org")
    for _ in range(5):
        at.text_input(key="signin_pw").input("wrong password!")
        button(at, "Sign in").click().run()
        assert "do not match" in texts(at)
    at.text_input(key="signin_pw").input(PASSWORD)
    button(at, "Sign in").click().run()
    assert "Too many sign-in attempts" in texts(at)
    assert "try again at" in texts(at)
    assert "user_id" not in at.session_state


def test_admins_see_failed_sign_ins_on_activity_and_leads_do_not(people: dict[str, int]) -> None:
    bad = open_app(None)
    bad.text_input(key="keep_signin_email").input("lead@example.org")
    bad.text_input(key="signin_pw").input("wrong password!")
    button(bad, "Sign in").click().run()
    admin = open_app(people["admin"], "activity.py")
    [expander] = [e for e in admin.expander if "Failed sign-ins" in e.label]
    assert expander.label.endswith(": 1")
    frame = admin.dataframe[0].value
    assert list(frame["email"]) == ["lead@example.org"]
    lead = open_app(people["lead"], "activity.py")
    assert not [e for e in lead.expander if "Failed sign-ins" in e.label]


# --------------------------------------------------------------------------- setup code


def test_it_asks_for_the_setup_code_when_the_dashboard_is_reachable_from_elsewhere(
    sqlite_url: str, monkeypatch
) -> None:
    from amplify import signin
    from amplify.config import reset_settings

    monkeypatch.setenv("AMPLIFY_PUBLIC_URL", "https://amplify.example.org")
    reset_settings()
    signin.forget_setup_code()
    at = open_app(None)
    assert "setup code" in texts(at)
    _first_admin_form(at, "ada@example.org", "long enough password")
    at.text_input(key="first_code").input("0000-0000-0000")
    button(at, "Create admin and sign in").click().run()
    assert "setup code is not right" in texts(at)
    with session_scope() as s:
        assert not users.has_users(s)
    at.text_input(key="first_code").input(signin.setup_code())
    button(at, "Create admin and sign in").click().run()
    with session_scope() as s:
        assert users.has_users(s)
    signin.forget_setup_code()


def test_it_needs_no_setup_code_on_this_machine(sqlite_url: str) -> None:
    at = open_app(None)
    assert "Welcome to Amplify" in texts(at)
    assert "setup code" not in texts(at)
    assert not [t for t in at.text_input if t.key == "first_code"]


def test_it_refuses_a_weak_first_admin_password_saying_why(sqlite_url: str) -> None:
    at = open_app(None)
    _first_admin_form(at, "ada@example.org", "password12")
    button(at, "Create admin and sign in").click().run()
    assert "This is a very common password." in texts(at)
    with session_scope() as s:
        assert not users.has_users(s)
