from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text

from amplify import accounts, crypto
from amplify import db as amplify_db
from amplify.errors import NotAllowed, ValidationFailed
from amplify.models import Account, AuditEvent, Delivery, Post, User
from connectors.base import AuthError, TransientError
from tests import memory_connector as memory

SECRET = "tok-7f3a9c1e5b2d4f6a8c0e1b3d5f7a9c2e"
WHEN = datetime(2031, 5, 4, 15, 30, tzinfo=UTC)


def _user(s, role: str, name: str) -> User:
    user = User(email=f"{name}@example.org", name=name, role=role, password_hash="x")
    s.add(user)
    s.flush()
    return user


@pytest.fixture(autouse=True)
def _fresh_memory_network():
    memory.reset()
    yield
    memory.reset()


@pytest.fixture
def people(session):
    people = {
        "admin": _user(session, "admin", "ada"),
        "lead": _user(session, "lead", "lee"),
        "vol": _user(session, "volunteer", "val"),
        "other": _user(session, "volunteer", "otto"),
    }
    session.commit()
    return people


def _add(s, actor, **kw):
    args = {"platform": "mastodon", "handle": "team", "service_url": "https://social.example"}
    args |= kw
    args.setdefault("credentials", {"access_token": SECRET})
    return accounts.add_account(s, actor, **args)


def _delivery(s, account, status="pending", key="k1"):
    author = s.scalar(select(User))
    post = Post(author_id=author.id, body="story", state="approved")
    s.add(post)
    s.flush()
    d = Delivery(
        post_id=post.id,
        account_id=account.id,
        status=status,
        next_attempt_at=WHEN,
        idempotency_key=key,
    )
    s.add(d)
    s.flush()
    return d


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("platform", "pasted", "expected"),
    [
        ("bluesky", "  abcd-efgh-ijkl-mnop \n", {"app_password": "abcd-efgh-ijkl-mnop"}),
        ("mastodon", "\nXyZ123token\n\n", {"access_token": "XyZ123token"}),
        (
            "x",
            "key1\nsecret1\n123-token1\ntokensecret1\n",
            {
                "api_key": "key1",
                "api_secret": "secret1",
                "access_token": "123-token1",
                "access_token_secret": "tokensecret1",
            },
        ),
        (
            "x",
            "access_token=123-t\napi_key=k\napi_secret=s\naccess_token_secret=ts",
            {
                "api_key": "k",
                "api_secret": "s",
                "access_token": "123-t",
                "access_token_secret": "ts",
            },
        ),
        ("x", "bearer=AAAA%2Fb==", {"bearer": "AAAA%2Fb=="}),
        ("x", "BEARER= tok ", {"bearer": "tok"}),
        ("sandbox", "", {}),
        ("sandbox", "anything at all", {"token": "anything at all"}),
    ],
)
def test_it_parses_pasted_credentials(platform, pasted, expected):
    assert accounts.parse_credentials(platform, pasted) == expected


@pytest.mark.parametrize(
    ("platform", "pasted", "advice"),
    [
        ("bluesky", "", "Paste one line: the app password"),
        ("bluesky", "one\ntwo-secret-line", "Paste one line: the app password"),
        ("bluesky", "my main password", "Paste one line: the app password"),
        ("mastodon", "", "Paste one line: the access token"),
        ("x", "only-one-line-secret", "Paste four lines"),
        ("x", "a\nb\nc", "API Key, API Key Secret, Access Token, Access Token Secret"),
        ("x", "bearer=", "bearer= line has no token"),
    ],
)
def test_it_says_exactly_what_to_paste_without_echoing_it(platform, pasted, advice):
    with pytest.raises(ValidationFailed) as exc:
        accounts.parse_credentials(platform, pasted)
    assert advice in str(exc.value)
    for line in pasted.splitlines():
        if "secret" in line:
            assert line not in str(exc.value)


def test_it_refuses_an_unknown_platform():
    with pytest.raises(ValidationFailed, match="choose one of: sandbox, x, bluesky, mastodon"):
        accounts.parse_credentials("myspace", "x")


# --------------------------------------------------------------------------- adding


def test_it_stores_credentials_encrypted_and_decrypts_them_back(session, people):
    account = _add(session, people["admin"])
    assert SECRET not in account.credentials_enc
    assert crypto.decrypt_json(account.credentials_enc) == {"access_token": SECRET}
    context = accounts.context_for(account)
    assert context.credentials == {"access_token": SECRET}
    assert context.service_url == "https://social.example"
    assert SECRET not in repr(context)


def test_it_never_writes_credentials_to_the_database_file_in_clear(sqlite_url, people, session):
    account = _add(session, people["admin"], amplify_opt_in=True)
    accounts.context_for(account).on_session_change(f"session-{SECRET}")
    session.commit()
    stored = session.scalar(select(Account.session_enc).where(Account.id == account.id))
    session.commit()
    session.close()
    amplify_db.dispose_all()
    db_path = Path(sqlite_url.split("///", 1)[1])
    wal = Path(f"{db_path}-wal")
    before = [db_path.read_bytes(), wal.read_bytes() if wal.exists() else b""]
    with sqlite3.connect(db_path) as conn:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    assert busy == 0
    after = [db_path.read_bytes(), wal.read_bytes() if wal.exists() else b""]
    assert crypto.decrypt(stored) == f"session-{SECRET}"
    assert b"social.example" in after[0]  # the account row really is in the file now
    for blob in before + after:
        assert SECRET.encode() not in blob


def test_it_uses_each_platforms_default_service_url(session, people):
    bsky = _add(
        session,
        people["admin"],
        platform="bluesky",
        handle="@team.bsky.social",
        service_url="",
        credentials={"app_password": "abcd-efgh-ijkl-mnop"},
    )
    x = _add(
        session,
        people["admin"],
        platform="x",
        handle="team",
        service_url="",
        credentials={"bearer": "tok"},
    )
    assert (bsky.handle, bsky.service_url) == ("team.bsky.social", "https://bsky.social")
    assert x.service_url == "https://api.x.com"


def test_it_needs_the_mastodon_instance(session, people):
    with pytest.raises(ValidationFailed, match="Mastodon instance URL"):
        _add(session, people["admin"], service_url="")


def test_it_takes_the_mastodon_instance_from_a_full_handle(session, people):
    account = _add(session, people["admin"], handle="@team@social.example", service_url="")
    assert (account.handle, account.service_url) == ("team", "https://social.example")


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"handle": " "}, "Give the account's handle"),
        ({"service_url": "social.example"}, "must start with https://"),
        ({"credentials": {"access_token": " "}}, "access token is missing"),
        ({"platform": "x", "credentials": {"api_key": "k"}}, "Missing api secret"),
        ({"owner_id": 999}, "no person #999"),
    ],
)
def test_it_says_what_is_wrong_with_a_new_account(session, people, kw, expected):
    with pytest.raises(ValidationFailed, match=expected):
        _add(session, people["admin"], **kw)


def test_it_refuses_connecting_the_same_account_twice(session, people):
    _add(session, people["admin"])
    with pytest.raises(ValidationFailed, match="already connected"):
        _add(session, people["admin"], handle="TEAM")


def test_it_refuses_a_lead_connecting_a_team_account(session, people):
    with pytest.raises(NotAllowed, match="Only admins"):
        _add(session, people["lead"])


def test_it_lets_a_volunteer_connect_their_own_account(session, people):
    account = _add(session, people["vol"], owner_id=people["vol"].id, amplify_opt_in=True)
    assert account.owner_id == people["vol"].id and account.amplify_opt_in
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "account.added"))
    assert event.actor_id == people["vol"].id
    assert SECRET not in str(event.detail)


# --------------------------------------------------------------------------- testing


def test_it_tests_an_account_and_records_who_it_is(session, people):
    account = _add(session, people["admin"], platform="memory", handle="alice", service_url="")
    memory.NETWORK.followers["alice"] = 4321
    identity = accounts.test_account(session, people["admin"], account.id)
    assert identity.handle == "alice"
    assert (account.remote_user_id, account.followers_count) == ("memory:alice", 4321)
    assert account.status == "ok" and account.last_error is None


def test_it_marks_an_account_needing_attention_when_sign_in_is_refused(session, people, sqlite_url):
    account = _add(
        session, people["admin"], platform="sandbox", handle="fail-auth.team", credentials={}
    )
    session.commit()
    with pytest.raises(AuthError, match="refused the sign-in"):
        accounts.test_account(session, people["admin"], account.id)
    session.rollback()  # what a caller's unit of work does on the error: the mark stays
    with amplify_db.session_factory(sqlite_url)() as fresh:
        stored = fresh.get(Account, account.id)
        assert stored.status == "needs_attention"
        assert "refused the sign-in" in stored.last_error
        actions = fresh.scalars(select(AuditEvent.action)).all()
        assert "account.needs_attention" in actions


def test_it_keeps_an_account_usable_after_a_passing_failure(session, people):
    account = _add(session, people["admin"], platform="memory", handle="bob", service_url="")
    memory.NETWORK.fail_next(TransientError("the server timed out"), method="whoami")
    with pytest.raises(TransientError):
        accounts.test_account(session, people["admin"], account.id)
    assert account.status == "ok"
    assert account.last_error == "the server timed out"


def test_it_lets_a_reconnect_clear_needs_attention(session, people):
    account = _add(session, people["admin"])
    accounts.mark_needs_attention(session, account, "token revoked")
    assert account.status == "needs_attention"
    accounts.update_credentials(
        session, people["admin"], account.id, credentials={"access_token": "new-token"}
    )
    assert account.status == "ok" and account.last_error is None
    assert accounts.context_for(account).credentials == {"access_token": "new-token"}


def test_it_saves_a_refreshed_session_encrypted_outside_a_transaction(session, people):
    account = _add(session, people["admin"])
    session.commit()
    context = accounts.context_for(account)
    assert context.session is None
    context.on_session_change("fresh-session")
    assert not session.dirty
    stored = session.scalar(select(Account.session_enc).where(Account.id == account.id))
    assert crypto.decrypt(stored) == "fresh-session"
    assert accounts.context_for(account).session == "fresh-session"


# --------------------------------------------------------------------------- opt-in, removal


def test_it_lets_an_owner_opt_in_but_not_someone_else(session, people):
    account = _add(session, people["vol"], owner_id=people["vol"].id)
    accounts.set_opt_in(session, people["vol"], account.id, True)
    assert account.amplify_opt_in
    with pytest.raises(NotAllowed):
        accounts.set_opt_in(session, people["other"], account.id, False)
    accounts.set_opt_in(session, people["admin"], account.id, False)
    assert not account.amplify_opt_in


def test_it_deletes_an_account_without_history(session, people):
    account = _add(session, people["admin"])
    accounts.remove_account(session, people["admin"], account.id)
    assert session.get(Account, account.id) is None
    removed = session.scalar(select(AuditEvent).where(AuditEvent.action == "account.removed"))
    assert removed.subject_id == account.id


def test_it_refuses_removing_an_account_with_scheduled_sends(session, people):
    account = _add(session, people["admin"])
    delivery = _delivery(session, account)
    with pytest.raises(ValidationFailed, match="1 scheduled send"):
        accounts.remove_account(session, people["admin"], account.id)
    accounts.remove_account(session, people["admin"], account.id, force=True)
    session.refresh(delivery)
    assert delivery.status == "cancelled"
    assert account.status == "disabled"
    assert crypto.decrypt_json(account.credentials_enc) == {}
    assert account not in accounts.list_accounts(session)


def test_it_settles_stories_whose_sends_a_forced_removal_cancelled(session, people):
    from amplify import workflow

    gone = _add(session, people["admin"], handle="gone")
    stays = _add(session, people["admin"], handle="stays")
    only = workflow.create_draft(session, people["vol"], body="Only on the removed account")
    shared = workflow.create_draft(session, people["vol"], body="On both accounts")
    for post, ids in ((only, [gone.id]), (shared, [gone.id, stays.id])):
        workflow.submit(session, people["vol"], post.id)
        workflow.approve(session, people["lead"], post.id, account_ids=ids, scheduled_for=WHEN)
    landed = next(d for d in shared.deliveries if d.account_id == stays.id)
    landed.status, landed.published_at = "published", WHEN
    accounts.remove_account(session, people["admin"], gone.id, force=True)
    assert (only.state, shared.state) == ("cancelled", "published")


def test_it_never_removes_an_account_that_is_publishing(session, people):
    account = _add(session, people["admin"])
    _delivery(session, account, status="claimed")
    with pytest.raises(ValidationFailed, match="publishing right now"):
        accounts.remove_account(session, people["admin"], account.id, force=True)


def test_it_reconnects_a_removed_account_with_its_history(session, people):
    account = _add(session, people["admin"])
    _delivery(session, account, status="published")
    accounts.remove_account(session, people["admin"], account.id)
    again = _add(session, people["admin"], credentials={"access_token": "second"})
    assert again.id == account.id and again.status == "ok"
    assert accounts.context_for(again).credentials == {"access_token": "second"}


def test_it_tells_notify_when_an_account_needs_attention(session, people, monkeypatch):
    import amplify.notify as notify

    calls = []
    monkeypatch.setattr(notify, "emit", lambda s, event, **data: calls.append((event, data)))
    stop = notify.listen()
    try:
        account = _add(session, people["admin"])
        accounts.mark_needs_attention(session, account, "token revoked")
        accounts.mark_needs_attention(session, account, "token revoked")
        assert calls == []  # told once the change is saved
        session.commit()
    finally:
        stop()
    assert [(e, d["reason"], d["account"].id) for e, d in calls] == [
        ("account_attention", "token revoked", account.id)
    ]


def test_it_builds_a_connector_for_the_account(session, people):
    account = _add(session, people["admin"], platform="memory", handle="carol", service_url="")
    connector = accounts.connector_for(account)
    assert connector.whoami().handle == "carol"


def test_it_summarises_an_account_without_secrets(session, people):
    account = _add(session, people["admin"])
    assert SECRET not in str(accounts.summary(account))
    assert session.execute(text("select count(*) from accounts")).scalar() == 1
