"""The HTTP routes beside the dashboard that set and drop the HttpOnly session cookie."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from amplify import crypto, sessions, users
from amplify.db import session_scope
from amplify.models import UserSession, utcnow
from amplify.ui import cookie_routes

PW = "correct horse battery"
FOUR_HUNDRED_DAYS = 400 * 24 * 3600


@pytest.fixture(autouse=True)
def _cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    from argon2 import PasswordHasher

    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(users, "_hasher", cheap)
    monkeypatch.setattr(users, "_DUMMY_HASH", cheap.hash("timing"))


@pytest.fixture
def client(sqlite_url: str) -> Iterator[TestClient]:
    app = Starlette(routes=cookie_routes.routes())
    with TestClient(app, follow_redirects=False) as c:
        yield c


def _signed_in(ago: timedelta = timedelta(seconds=1)) -> str:
    """A session started ``ago`` by the sign-in form; returns its token."""
    with session_scope() as s:
        person = users.get_by_email(s, "val@example.org") or users.create_user(
            s, None, email="val@example.org", name="Val", role="admin", password=PW
        )
        return sessions.start(s, person, now=utcnow() - ago)


def _cookie_header(response) -> str:
    [header] = [v for k, v in response.headers.multi_items() if k == "set-cookie"]
    return header


def _attributes(header: str) -> dict[str, str]:
    parts = [p.strip() for p in header.split(";")]
    pairs = [p.partition("=") for p in parts[1:]]
    return {name.lower(): value for name, _, value in pairs}


def test_it_trades_a_fresh_handoff_for_an_httponly_cookie_and_returns_to_the_page(
    client: TestClient,
) -> None:
    token = _signed_in()
    response = client.get(
        cookie_routes.session_url(sessions.handoff(token)) + "&next=/review?story=3"
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/review?story=3"
    header = _cookie_header(response)
    assert header.startswith(f"amplify_sid={token};")
    attributes = _attributes(header)
    assert "httponly" in attributes
    assert attributes["samesite"] == "strict"
    assert attributes["path"] == "/"
    assert attributes["max-age"] == str(FOUR_HUNDRED_DAYS)
    assert "secure" not in attributes  # plain http (this machine)


def test_it_marks_the_cookie_secure_over_https(sqlite_url: str) -> None:
    app = Starlette(routes=cookie_routes.routes())
    with TestClient(app, base_url="https://amplify.example", follow_redirects=False) as c:
        response = c.get(cookie_routes.session_url(sessions.handoff(_signed_in())))
    assert "secure" in _attributes(_cookie_header(response))


def test_it_accepts_a_handoff_only_once(client: TestClient) -> None:
    token = _signed_in()
    url = cookie_routes.session_url(sessions.handoff(token))
    assert "set-cookie" in client.get(url).headers
    replay = client.get(url)
    assert replay.status_code == 303
    assert "set-cookie" not in replay.headers


def test_it_refuses_a_handoff_older_than_a_minute(client: TestClient) -> None:
    token = _signed_in(ago=timedelta(seconds=90))
    stale = sessions.handoff(token, now=utcnow() - timedelta(seconds=61))
    response = client.get(cookie_routes.session_url(stale))
    assert response.status_code == 303
    assert "set-cookie" not in response.headers


def test_it_refuses_a_handoff_for_a_session_already_in_use(client: TestClient) -> None:
    token = _signed_in()
    with session_scope() as s:  # the session was used (a cookie already holds it)
        row = s.query(UserSession).one()
        row.last_seen_at = utcnow()
    response = client.get(cookie_routes.session_url(sessions.handoff(token)))
    assert "set-cookie" not in response.headers


def test_it_refuses_a_handoff_for_a_revoked_session(client: TestClient) -> None:
    token = _signed_in()
    with session_scope() as s:
        sessions.revoke(s, sessions.hash_token(token))
    response = client.get(cookie_routes.session_url(sessions.handoff(token)))
    assert "set-cookie" not in response.headers


def test_it_refuses_a_token_sealed_with_any_other_key(client: TestClient) -> None:
    token = _signed_in()
    for forged in (crypto.encrypt(token), token, "gAAAAAnot-a-handoff"):
        response = client.get(cookie_routes.session_url(forged))
        assert "set-cookie" not in response.headers


def test_it_refuses_a_handoff_sent_from_another_site(client: TestClient) -> None:
    token = _signed_in()
    response = client.get(
        cookie_routes.session_url(sessions.handoff(token)),
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert "set-cookie" not in response.headers
    with session_scope() as s:  # still unused: the person's own page can still trade it
        row = s.query(UserSession).one()
        assert row.last_seen_at == row.created_at


@pytest.mark.parametrize(
    "wanted", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "review", ""]
)
def test_it_only_ever_returns_to_a_page_of_this_site(client: TestClient, wanted: str) -> None:
    response = client.get(cookie_routes.SIGNOUT_PATH, params={"next": wanted})
    assert response.headers["location"] == "/"


def test_signing_out_ends_the_session_and_drops_the_cookie(client: TestClient) -> None:
    token = _signed_in()
    client.cookies.set("amplify_sid", token)
    response = client.get(cookie_routes.SIGNOUT_PATH, params={"next": "/share"})
    assert response.status_code == 303
    assert response.headers["location"] == "/share"
    header = _cookie_header(response)
    assert header.startswith('amplify_sid="";') or header.startswith("amplify_sid=;")
    attributes = _attributes(header)
    assert attributes["max-age"] == "0"
    assert "httponly" in attributes and attributes["path"] == "/"
    with session_scope() as s:
        assert s.query(UserSession).one().revoked_at is not None


def test_signing_out_from_another_site_changes_nothing(client: TestClient) -> None:
    token = _signed_in()
    client.cookies.set("amplify_sid", token)
    response = client.get(cookie_routes.SIGNOUT_PATH, headers={"Sec-Fetch-Site": "cross-site"})
    assert "set-cookie" not in response.headers
    with session_scope() as s:
        assert s.query(UserSession).one().revoked_at is None
