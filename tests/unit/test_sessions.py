"""Signed-in browsers (sessions), sign-in throttling, reset links and the setup code."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from amplify import resets, sessions, signin, users
from amplify.errors import NotAllowed, ValidationFailed
from amplify.models import AuditEvent, PasswordReset, SignInFailure, User, UserSession

PW = "correct horse battery"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 at its real cost takes ~0.4 s a hash on a busy machine; these tests are about
    sessions, so hash cheaply (test_users checks the real hasher)."""
    from argon2 import PasswordHasher

    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(users, "_hasher", cheap)
    monkeypatch.setattr(users, "_DUMMY_HASH", cheap.hash("timing"))


@pytest.fixture
def admin(session: Session) -> User:
    user = users.create_user(
        session, None, email="ada@example.org", name="Ada", role="admin", password=PW
    )
    session.commit()
    return user


@pytest.fixture
def vol(session: Session, admin: User) -> User:
    user = users.create_user(
        session, admin, email="val@example.org", name="Val", role="volunteer", password=PW
    )
    session.commit()
    return user


def _live(session: Session, user: User) -> int:
    return len(sessions.live_sessions(session, user.id))


# --------------------------------------------------------------------------- sessions


def test_it_keeps_only_the_hash_of_the_session_token(session: Session, vol: User) -> None:
    token = sessions.start(session, vol, user_agent="Firefox", address="10.0.0.7", now=T0)
    row = session.scalar(select(UserSession).where(UserSession.user_id == vol.id))
    assert row is not None
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in row.token_hash and len(token) >= 43  # 256 random bits
    assert (row.user_agent, row.address) == ("Firefox", "10.0.0.7")
    assert sessions.resume(session, sessions.hash_token(token), now=T0) is vol
    assert sessions.resume(session, sessions.hash_token(token + "x"), now=T0) is None


def test_it_slides_a_session_forward_each_time_it_is_used(session: Session, vol: User) -> None:
    digest = sessions.hash_token(sessions.start(session, vol, now=T0))
    assert sessions.resume(session, digest, now=T0 + timedelta(days=13)) is vol
    # Used on day 13: good until day 27, not day 14.
    assert sessions.resume(session, digest, now=T0 + timedelta(days=26)) is vol
    # Then 14 idle days: over.
    assert sessions.resume(session, digest, now=T0 + timedelta(days=40, minutes=1)) is None


def test_it_ends_a_session_after_fourteen_idle_days(session: Session, vol: User) -> None:
    digest = sessions.hash_token(sessions.start(session, vol, now=T0))
    assert sessions.resume(session, digest, now=T0 + timedelta(days=13, hours=23)) is vol
    other = sessions.hash_token(sessions.start(session, vol, now=T0))
    assert sessions.resume(session, other, now=T0 + timedelta(days=14)) is None


def test_it_ends_a_session_when_revoked(session: Session, vol: User) -> None:
    digest = sessions.hash_token(sessions.start(session, vol, now=T0))
    assert sessions.revoke(session, digest)
    assert sessions.resume(session, digest, now=T0) is None
    assert not sessions.revoke(session, digest)  # already ended


def test_it_signs_out_everywhere_but_the_browser_that_asked(session: Session, vol: User) -> None:
    keep = sessions.hash_token(sessions.start(session, vol))
    others = [sessions.hash_token(sessions.start(session, vol)) for _ in range(3)]
    assert sessions.revoke_all(session, vol.id, keep=keep) == 3
    assert sessions.resume(session, keep) is vol
    assert all(sessions.resume(session, d) is None for d in others)
    assert sessions.revoke_all(session, vol.id) == 1


def test_it_ends_every_session_when_a_person_is_deactivated(
    session: Session, admin: User, vol: User
) -> None:
    digests = [sessions.hash_token(sessions.start(session, vol)) for _ in range(2)]
    users.set_active(session, admin, vol.id, False)
    users.set_active(session, admin, vol.id, True)
    # Reactivating does not bring the old sessions back: they were ended, not paused.
    assert all(sessions.resume(session, d) is None for d in digests)
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "user.deactivated"))
    assert event is not None and event.detail["sessions_ended"] == 2


def test_it_ends_other_sessions_when_a_person_changes_their_own_password(
    session: Session, vol: User
) -> None:
    here = sessions.hash_token(sessions.start(session, vol))
    there = sessions.hash_token(sessions.start(session, vol))
    ended = users.set_password(
        session,
        vol,
        vol.id,
        new_password="purple tractor moonlight",
        current_password=PW,
        keep_session=here,
    )
    assert ended == 1
    assert sessions.resume(session, here) is vol
    assert sessions.resume(session, there) is None


def test_it_ends_every_session_when_an_admin_sets_a_password(
    session: Session, admin: User, vol: User
) -> None:
    digest = sessions.hash_token(sessions.start(session, vol))
    users.set_password(
        session, admin, vol.id, new_password="purple tractor moonlight", keep_session=digest
    )
    assert sessions.resume(session, digest) is None


# --------------------------------------------------------------------------- throttling


def _fail(session: Session, email: str, address: str, n: int, start: datetime) -> None:
    for i in range(n):
        attempt = signin.sign_in(
            session, email, "wrong password!", address=address, now=start + timedelta(minutes=i)
        )
        assert not attempt.ok and attempt.retry_at is None and "do not match" in attempt.message


def test_it_refuses_the_sixth_try_for_one_email_even_with_the_right_password(
    session: Session, vol: User
) -> None:
    _fail(session, vol.email, "10.0.0.1", 5, T0)
    # From another address too: it is the email that is throttled.
    attempt = signin.sign_in(
        session, vol.email, PW, address="10.0.0.2", now=T0 + timedelta(minutes=6)
    )
    assert not attempt.ok and attempt.token == ""
    assert attempt.retry_at == T0 + timedelta(minutes=15)
    assert "Too many sign-in attempts" in attempt.message
    assert "wait 9 minutes" in attempt.message
    assert "do not match" not in attempt.message  # says nothing about the password
    assert session.scalar(select(func.count(UserSession.id))) == 0


def test_it_lets_tries_resume_once_the_failures_are_fifteen_minutes_old(
    session: Session, vol: User
) -> None:
    _fail(session, vol.email, "10.0.0.1", 5, T0)
    early = signin.sign_in(session, vol.email, PW, now=T0 + timedelta(minutes=14, seconds=59))
    assert not early.ok and early.retry_at is not None
    later = signin.sign_in(session, vol.email, PW, now=T0 + timedelta(minutes=15))
    assert later.ok and later.user_id == vol.id and later.token


def test_it_throttles_one_address_trying_many_emails(session: Session, vol: User) -> None:
    for i in range(5):
        signin.sign_in(
            session,
            f"guess{i}@example.org",
            "wrong password!",
            address="203.0.113.9",
            now=T0 + timedelta(seconds=i),
        )
    blocked = signin.sign_in(session, vol.email, PW, address="203.0.113.9", now=T0)
    assert not blocked.ok and blocked.retry_at is not None
    elsewhere = signin.sign_in(session, vol.email, PW, address="198.51.100.4", now=T0)
    assert elsewhere.ok


def test_it_does_not_throttle_four_failures(session: Session, vol: User) -> None:
    _fail(session, vol.email, "10.0.0.1", 4, T0)
    assert signin.sign_in(session, vol.email, PW, address="10.0.0.1", now=T0).ok


def test_it_starts_an_emails_count_again_after_a_successful_sign_in(
    session: Session, vol: User
) -> None:
    _fail(session, vol.email, "", 4, T0)
    assert signin.sign_in(session, vol.email, PW, now=T0 + timedelta(minutes=5)).ok
    _fail(session, vol.email, "", 1, T0 + timedelta(minutes=6))
    assert signin.sign_in(session, vol.email, PW, now=T0 + timedelta(minutes=8)).ok


def test_it_records_and_audits_every_failed_sign_in(session: Session, vol: User) -> None:
    _fail(session, "VAL@example.org", "10.0.0.1", 2, T0)
    rows = session.scalars(select(SignInFailure)).all()
    assert [(r.email, r.address) for r in rows] == [("val@example.org", "10.0.0.1")] * 2
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "user.sign_in_failed")
    ).all()
    assert len(events) == 2 and events[0].subject_id == vol.id
    assert events[0].detail["email"] == "val@example.org"
    assert "wrong password!" not in str(events[0].detail)
    assert [f.email for f in signin.recent_failures(session, since=T0)] == ["val@example.org"] * 2


def test_it_audits_a_successful_sign_in_with_its_address(session: Session, vol: User) -> None:
    assert signin.sign_in(session, vol.email, PW, address="10.0.0.3", now=T0).ok
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "user.signed_in"))
    assert event is not None and event.actor_id == vol.id and event.detail["address"] == "10.0.0.3"


# --------------------------------------------------------------------------- reset links


def _token(link: str) -> str:
    assert link.startswith("http://localhost:8501/?reset=")
    return link.split("reset=", 1)[1]


def test_a_reset_link_works_once(session: Session, admin: User, vol: User) -> None:
    token = _token(resets.issue(session, admin, vol.id, now=T0))
    assert resets.person_for(session, token, now=T0) is vol
    resets.complete(session, token, "purple tractor moonlight", now=T0 + timedelta(hours=1))
    assert users.authenticate(session, vol.email, "purple tractor moonlight") is vol
    assert resets.person_for(session, token, now=T0 + timedelta(hours=1)) is None
    with pytest.raises(ValidationFailed, match="expired or was already used"):
        resets.complete(session, token, "another fine sentence", now=T0 + timedelta(hours=2))
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "user.password_reset"))
    assert event is not None and event.subject_id == vol.id


def test_a_reset_link_expires_after_24_hours(session: Session, admin: User, vol: User) -> None:
    token = _token(resets.issue(session, admin, vol.id, now=T0))
    late = T0 + timedelta(hours=24)
    assert resets.person_for(session, token, now=late) is None
    with pytest.raises(ValidationFailed, match="expired"):
        resets.complete(session, token, "purple tractor moonlight", now=late)
    assert users.authenticate(session, vol.email, PW) is vol


def test_a_reset_link_keeps_only_a_hash_of_its_token(
    session: Session, admin: User, vol: User
) -> None:
    token = _token(resets.issue(session, admin, vol.id))
    row = session.scalar(select(PasswordReset))
    assert row is not None and row.token_hash == sessions.hash_token(token)
    assert row.created_by_id == admin.id


def test_issuing_a_reset_link_signs_the_person_out_everywhere(
    session: Session, admin: User, vol: User
) -> None:
    before = sessions.hash_token(sessions.start(session, vol))
    token = _token(resets.issue(session, admin, vol.id))
    assert sessions.resume(session, before) is None
    during = sessions.hash_token(sessions.start(session, vol))
    resets.complete(session, token, "purple tractor moonlight")
    assert sessions.resume(session, during) is None


def test_a_new_reset_link_replaces_the_old_one(session: Session, admin: User, vol: User) -> None:
    first = _token(resets.issue(session, admin, vol.id, now=T0))
    second = _token(resets.issue(session, admin, vol.id, now=T0 + timedelta(minutes=1)))
    later = T0 + timedelta(minutes=2)
    assert resets.person_for(session, first, now=later) is None
    assert resets.person_for(session, second, now=later) is vol


def test_a_reset_refuses_a_weak_password_and_the_link_still_works(
    session: Session, admin: User, vol: User
) -> None:
    token = _token(resets.issue(session, admin, vol.id))
    with pytest.raises(ValidationFailed, match="too easy to guess"):
        resets.complete(session, token, "password12")
    assert resets.person_for(session, token) is vol


def test_only_admins_issue_reset_links(session: Session, admin: User, vol: User) -> None:
    with pytest.raises(NotAllowed):
        resets.issue(session, vol, admin.id)


def test_it_refuses_a_reset_link_for_a_deactivated_person(
    session: Session, admin: User, vol: User
) -> None:
    users.set_active(session, admin, vol.id, False)
    with pytest.raises(ValidationFailed, match="deactivated"):
        resets.issue(session, admin, vol.id)


def test_it_sends_the_reset_link_to_the_persons_own_channels(
    session: Session, admin: User, vol: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    from amplify import notify

    sent: list[dict[str, object]] = []
    monkeypatch.setattr(
        notify, "send", lambda s, event, **kw: sent.append({"event": event, **kw}) or 1
    )
    stop = notify.listen()
    try:
        link = resets.issue(session, admin, vol.id)
        assert sent == []  # sent once the link is saved
        session.commit()
    finally:
        stop()
    assert len(sent) == 1 and sent[0]["user_ids"] == [vol.id]
    assert link in str(sent[0]["body"]) and "to" not in sent[0]


def test_a_reset_link_starts_with_the_public_url(
    session: Session, admin: User, vol: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    from amplify.config import reset_settings

    monkeypatch.setenv("AMPLIFY_PUBLIC_URL", "https://amplify.example.org/")
    reset_settings()
    assert resets.issue(session, admin, vol.id).startswith("https://amplify.example.org/?reset=")


# --------------------------------------------------------------------------- setup code


def test_it_needs_no_setup_code_on_a_loopback_server_visited_from_this_machine() -> None:
    for bind in ("127.0.0.1", "localhost", "::1"):
        assert not signin.setup_code_needed(
            bind_address=bind,
            client_address=None,
            forwarded=False,
            public_url="http://localhost:8501",
        )


@pytest.mark.parametrize(
    ("bind", "client", "forwarded", "public_url"),
    [
        (None, None, False, "http://localhost:8501"),  # unset: every interface
        ("0.0.0.0", None, False, "http://localhost:8501"),
        ("192.168.1.20", None, False, "http://localhost:8501"),
        ("127.0.0.1", "203.0.113.5", False, "http://localhost:8501"),
        ("127.0.0.1", None, True, "http://localhost:8501"),  # a reverse proxy in front
        ("127.0.0.1", None, False, "https://amplify.example.org"),
    ],
)
def test_it_needs_the_setup_code_when_others_could_reach_the_dashboard(
    bind: str | None, client: str | None, forwarded: bool, public_url: str
) -> None:
    assert signin.setup_code_needed(
        bind_address=bind, client_address=client, forwarded=forwarded, public_url=public_url
    )


def test_the_setup_code_is_printed_once_and_checked() -> None:
    signin.forget_setup_code()
    printed: list[str] = []
    code = signin.setup_code(announce=printed.append)
    assert signin.setup_code(announce=printed.append) == code and printed == [code]
    assert len(code.replace("-", "")) == 12
    assert signin.setup_code_matches(f"  {code.lower()} ")
    assert signin.setup_code_matches(code.replace("-", ""))
    assert not signin.setup_code_matches("")
    assert not signin.setup_code_matches("0000-0000-0000")
    signin.forget_setup_code()


# --------------------------------------------------------------------------- command line


def test_the_command_line_prints_a_one_time_reset_link(sqlite_url: str) -> None:
    from typer.testing import CliRunner

    from amplify.cli import app
    from amplify.db import session_scope

    with session_scope() as s:
        ada = users.create_user(
            s, None, email="ada@example.org", name="Ada", role="admin", password=PW
        )
        digest = sessions.hash_token(sessions.start(s, ada))
    result = CliRunner().invoke(app, ["users", "reset-password", "ADA@example.org"])
    assert result.exit_code == 0, result.output
    link = result.output.strip().splitlines()[-1]
    token = _token(link)
    with session_scope() as s:
        assert resets.person_for(s, token) is not None
        assert sessions.resume(s, digest) is None  # signed out everywhere
    unknown = CliRunner().invoke(app, ["users", "reset-password", "who@example.org"])
    assert unknown.exit_code != 0 and "nobody signs in as who@example.org" in unknown.output


def test_the_dashboard_serves_only_this_machine_by_default() -> None:
    import tomllib
    from pathlib import Path

    config = Path(__file__).resolve().parents[2] / ".streamlit" / "config.toml"
    address = tomllib.loads(config.read_text())["server"].get("address")
    assert signin.is_loopback(address), f"server.address is {address!r}"


# --------------------------------------------------------------------------- both databases


def test_sessions_and_reset_links_work_the_same_on_every_database(db_url: str) -> None:
    from amplify.db import session_scope

    with session_scope(db_url) as s:
        ada = users.create_user(
            s, None, email="ada@example.org", name="Ada", role="admin", password=PW
        )
        val = users.create_user(
            s, ada, email="val@example.org", name="Val", role="volunteer", password=PW
        )
        digests = [sessions.hash_token(sessions.start(s, val)) for _ in range(3)]
        ada_id, val_id = ada.id, val.id
    with session_scope(db_url) as s:
        assert sessions.revoke_all(s, val_id, keep=digests[0]) == 2
    with session_scope(db_url) as s:
        assert [r.token_hash for r in sessions.live_sessions(s, val_id)] == [digests[0]]
        token = _token(resets.issue(s, s.get(User, ada_id), val_id))
    with session_scope(db_url) as s:
        assert sessions.resume(s, digests[0]) is None
        resets.complete(s, token, "purple tractor moonlight")
    with session_scope(db_url) as s:
        assert users.authenticate(s, "val@example.org", "purple tractor moonlight") is not None


def test_a_reset_link_opened_twice_at_once_is_used_once(db_url: str) -> None:
    import threading

    from amplify.db import session_scope

    with session_scope(db_url) as s:
        ada = users.create_user(
            s, None, email="ada@example.org", name="Ada", role="admin", password=PW
        )
        token = _token(resets.issue(s, ada, ada.id))
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def use(password: str) -> None:
        barrier.wait()
        try:
            with session_scope(db_url) as s:
                resets.complete(s, token, password)
            outcomes.append(password)
        except ValidationFailed:
            outcomes.append("refused")

    threads = [
        threading.Thread(target=use, args=(pw,))
        for pw in ("purple tractor moonlight", "orange bicycle evening")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes).count("refused") == 1, outcomes
    [winner] = [o for o in outcomes if o != "refused"]
    with session_scope(db_url) as s:
        assert users.authenticate(s, "ada@example.org", winner) is not None
