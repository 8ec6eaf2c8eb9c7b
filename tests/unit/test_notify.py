"""Notifications: routed by audience, sent after commit through apprise, never blocking."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from factories import make_account, make_delivery, make_post, make_user
from sqlalchemy.orm import Session

from amplify import notify
from amplify.crypto import encrypt
from amplify.models import NotificationChannel, Role


class Recorder:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.status = 200
        self.event = threading.Event()


@pytest.fixture
def receiver() -> Iterator[tuple[Recorder, int]]:
    rec = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            rec.paths.append(self.path)
            rec.requests.append(json.loads(body or b"{}"))
            self.send_response(rec.status)
            self.end_headers()
            rec.event.set()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield rec, server.server_address[1]
    server.shutdown()
    server.server_close()


def channel(s: Session, url: str, audiences: list[str], user_id: int | None = None) -> None:
    s.add(
        NotificationChannel(
            label="team chat", url_enc=encrypt(url), audiences=audiences, user_id=user_id
        )
    )
    s.flush()


def test_it_tells_leads_when_a_story_is_submitted_after_commit(
    session: Session, receiver: tuple[Recorder, int]
) -> None:
    rec, port = receiver
    channel(session, f"json://127.0.0.1:{port}/leads", ["leads"])
    post = make_post(session, body="Clinic cut wait times in half")
    session.commit()

    assert notify.emit(session, "submitted", post=post) == 1
    assert notify.flush(5)
    assert rec.requests == []  # nothing leaves before the transaction commits
    session.commit()
    assert notify.flush(10)
    assert len(rec.requests) == 1
    assert rec.requests[0]["title"] == "Story waiting for review"
    assert "Clinic cut wait times in half" in rec.requests[0]["message"]


def test_it_drops_notifications_of_a_rolled_back_transaction(
    session: Session, receiver: tuple[Recorder, int]
) -> None:
    rec, port = receiver
    channel(session, f"json://127.0.0.1:{port}/", ["leads"])
    post = make_post(session)
    session.commit()
    notify.emit(session, "submitted", post=post)
    session.rollback()
    session.commit()
    assert notify.flush(5)
    assert rec.requests == []


def test_it_sends_the_author_the_reviewers_note_on_their_personal_channel_only(
    session: Session, receiver: tuple[Recorder, int]
) -> None:
    rec, port = receiver
    author = make_user(session, role=Role.VOLUNTEER)
    someone = make_user(session, role=Role.VOLUNTEER)
    channel(session, f"json://127.0.0.1:{port}/mine", [], user_id=author.id)
    channel(session, f"json://127.0.0.1:{port}/theirs", [], user_id=someone.id)
    post = make_post(session, author=author)
    notify.emit(session, "rejected", post=post, note="Add the clinic's name, please")
    session.commit()
    assert notify.flush(10)
    assert rec.paths == ["/mine"]
    assert "Add the clinic's name, please" in rec.requests[0]["message"]


def test_it_lists_the_published_links_for_the_author(
    session: Session, receiver: tuple[Recorder, int]
) -> None:
    rec, port = receiver
    channel(session, f"json://127.0.0.1:{port}/", ["authors"])
    post = make_post(session)
    make_delivery(
        session,
        post=post,
        status="published",
        remote_url="https://memory.invalid/org/1",
        remote_id="1",
    )
    session.refresh(post)
    notify.emit(session, "published", post=post)
    session.commit()
    assert notify.flush(10)
    assert "https://memory.invalid/org/1" in rec.requests[0]["message"]


def test_it_tells_admins_why_a_delivery_failed_for_good(
    session: Session, receiver: tuple[Recorder, int]
) -> None:
    rec, port = receiver
    admin = make_user(session, role=Role.ADMIN)
    channel(session, f"json://127.0.0.1:{port}/admin", [], user_id=admin.id)
    acct = make_account(session, handle="chapter")
    d = make_delivery(session, account=acct, status="failed", last_error="text too long")
    notify.emit(session, "delivery_failed", delivery=d)
    session.commit()
    assert notify.flush(10)
    assert len(rec.requests) == 1
    assert "text too long" in rec.requests[0]["message"]
    assert "memory:chapter" in rec.requests[0]["message"]


def test_it_logs_a_failing_notifier_without_its_url_and_never_raises(
    session: Session, receiver: tuple[Recorder, int], caplog: pytest.LogCaptureFixture
) -> None:
    rec, port = receiver
    rec.status = 500
    secret_path = "s3cr3t-token-in-the-url"
    channel(session, f"json://127.0.0.1:{port}/{secret_path}", ["leads"])
    # And one that nothing listens on at all.
    channel(session, "json://127.0.0.1:9/another-s3cr3t-token-in-the-url", ["leads"])
    post = make_post(session)
    failed_before = notify.stats()["failed"]
    with (
        caplog.at_level(logging.WARNING, logger="amplify.notify"),
        caplog.at_level(logging.DEBUG, logger="apprise"),
        caplog.at_level(logging.DEBUG, logger="urllib3.connectionpool"),
    ):
        assert notify.emit(session, "submitted", post=post) == 2
        session.commit()
        assert notify.flush(30)
    assert notify.stats()["failed"] - failed_before == 2
    # Even apprise's and urllib3's DEBUG lines (which print request URLs) hide the tokens.
    debug_lines = [r.getMessage() for r in caplog.records if r.name != "amplify.notify"]
    assert debug_lines
    assert all("s3cr3t" not in line for line in debug_lines), debug_lines
    warnings = [r.getMessage() for r in caplog.records if r.name == "amplify.notify"]
    assert len(warnings) == 2
    assert all("s3cr3t" not in w and "127.0.0.1" not in w for w in warnings)
    assert all("team chat" in w for w in warnings)


def test_it_ignores_an_unknown_event_instead_of_failing_the_caller(session: Session) -> None:
    assert notify.emit(session, "no-such-event", post_id=1) == 0
