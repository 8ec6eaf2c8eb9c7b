"""Tokens travel only over https: Mastodon, X and Bluesky service URLs are checked when an
account is added, reconnected and every time a connector is built for it."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from amplify import accounts, crypto
from amplify.config import reset_settings
from amplify.errors import ConfigError, ValidationFailed
from amplify.models import Account, AccountStatus, User
from connectors.base import AuthError
from tests.fakes.mastodon_server import FakeMastodonServer

TOKEN = "test-token"


@pytest.fixture
def admin(session: Session) -> User:
    user = User(email="ada@example.org", name="Ada", role="admin", password_hash="x")
    session.add(user)
    session.flush()
    return user


@pytest.fixture
def strict(monkeypatch: pytest.MonkeyPatch) -> None:
    """The production default: no plain http, not even to this machine."""
    monkeypatch.setenv("AMPLIFY_ALLOW_INSECURE_LOOPBACK", "false")
    reset_settings()


def _add(s: Session, actor: User, platform: str, url: str) -> Account:
    credentials = {
        "mastodon": {"access_token": TOKEN},
        "x": {"bearer": TOKEN},
        "bluesky": {"app_password": "abcd-efgh-ijkl-mnop"},
    }[platform]
    handle = "team.example.org" if platform == "bluesky" else "team"
    return accounts.add_account(
        s, actor, platform=platform, handle=handle, service_url=url, credentials=credentials
    )


@pytest.mark.parametrize("platform", ["mastodon", "x", "bluesky"])
def test_it_refuses_a_plain_http_service_url(session: Session, admin: User, platform: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        _add(session, admin, platform, "http://social.example")
    assert "must start with https://" in str(refused.value)
    assert "unencrypted" in str(refused.value)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080", "http://localhost:3000", "http://[::1]:9"]
)
def test_it_refuses_http_to_this_machine_unless_explicitly_allowed(
    session: Session, admin: User, strict: None, url: str
) -> None:
    with pytest.raises(ValidationFailed, match="AMPLIFY_ALLOW_INSECURE_LOOPBACK=true"):
        _add(session, admin, "mastodon", url)


def test_it_accepts_http_to_this_machine_when_allowed_for_a_test_server(
    session: Session, admin: User
) -> None:
    account = _add(session, admin, "mastodon", "http://127.0.0.1:8080")  # conftest allows it
    assert account.service_url == "http://127.0.0.1:8080"
    assert _add(session, admin, "x", "https://api.x.example").service_url.startswith("https://")


def test_it_never_sends_a_token_to_an_http_url_saved_earlier(
    session: Session, admin: User, strict: None
) -> None:
    with FakeMastodonServer() as server:
        assert server.url.startswith("http://127.0.0.1")
        account = Account(
            platform="mastodon",
            handle="amplify",
            service_url=server.url,  # saved before https was required
            credentials_enc=crypto.encrypt_json({"access_token": TOKEN}),
        )
        session.add(account)
        session.flush()
        with pytest.raises(ConfigError, match="plain http"):
            accounts.connector_for(account)
        with pytest.raises(ValidationFailed, match="add it again with https"):
            accounts.update_credentials(
                session, admin, account.id, credentials={"access_token": "new-token"}
            )
        with pytest.raises(AuthError, match="plain http"):
            accounts.test_account(session, admin, account.id)
        assert server.calls == []  # nothing, and so no token, reached the server
    assert account.status == AccountStatus.NEEDS_ATTENTION
