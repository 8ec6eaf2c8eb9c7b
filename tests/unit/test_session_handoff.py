"""The handoff a sign-in page trades for its HttpOnly cookie: sealed, short-lived, single-use."""

from __future__ import annotations

from datetime import timedelta

import pytest

from amplify import crypto, sessions, users
from amplify.db import session_scope
from amplify.errors import ConfigError
from amplify.models import utcnow


@pytest.fixture(autouse=True)
def _cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    from argon2 import PasswordHasher

    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(users, "_hasher", cheap)
    monkeypatch.setattr(users, "_DUMMY_HASH", cheap.hash("timing"))


def _token() -> str:
    with session_scope() as s:
        ada = users.create_user(
            s, None, email="ada@example.org", name="Ada", role="admin", password="correct horse"
        )
        return sessions.start(s, ada, now=utcnow() - timedelta(seconds=2))


def test_a_handoff_is_claimed_once_on_either_database(db_url: str) -> None:
    token = _token()
    handoff = sessions.handoff(token)
    with session_scope() as s:
        assert sessions.claim_handoff(s, handoff) == token
    with session_scope() as s:
        assert sessions.claim_handoff(s, handoff) is None
        assert sessions.resume(s, sessions.hash_token(token)) is not None  # still signed in


def test_a_handoff_expires_after_a_minute(sqlite_url: str) -> None:
    token = _token()
    made = utcnow()
    handoff = sessions.handoff(token, now=made)
    with session_scope() as s:
        assert sessions.claim_handoff(s, handoff, now=made + timedelta(seconds=61)) is None
        assert sessions.claim_handoff(s, handoff, now=made + timedelta(seconds=30)) == token


def test_a_handoff_is_sealed_with_a_key_of_its_own(sqlite_url: str) -> None:
    token = _token()
    handoff = sessions.handoff(token)
    assert token not in handoff
    with pytest.raises(ConfigError):  # not with the key that seals the credentials
        crypto.decrypt(handoff)
