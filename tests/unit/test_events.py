"""The in-process event seam: delivered after commit only, never into the domain call."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from amplify import events
from amplify.models import User


@pytest.fixture
def heard() -> Iterator[list[events.Event]]:
    got: list[events.Event] = []
    stop = events.subscribe("test.happened", got.append)
    yield got
    stop()


def test_it_delivers_an_event_only_once_the_session_commits(
    session: Session, heard: list[events.Event]
) -> None:
    events.emit(session, "test.happened", thing_id=7)
    assert heard == []
    session.commit()
    assert [(e.name, e.data) for e in heard] == [("test.happened", {"thing_id": 7})]
    assert heard[0].bind is not None


def test_it_drops_the_events_of_a_rolled_back_transaction(
    session: Session, heard: list[events.Event]
) -> None:
    events.emit(session, "test.happened", thing_id=1)
    session.rollback()
    session.commit()
    assert heard == []


def test_it_keeps_the_events_when_only_a_savepoint_is_rolled_back(
    session: Session, heard: list[events.Event]
) -> None:
    events.emit(session, "test.happened", n=1)
    nested = session.begin_nested()
    nested.rollback()
    session.commit()
    assert [e.data["n"] for e in heard] == [1]


def test_it_delivers_each_event_once_even_across_several_commits(
    session: Session, heard: list[events.Event]
) -> None:
    events.emit(session, "test.happened", n=1)
    session.commit()
    events.emit(session, "test.happened", n=2)
    session.commit()
    session.commit()
    assert [e.data["n"] for e in heard] == [1, 2]


def test_it_lets_a_subscriber_read_what_was_committed(session: Session) -> None:
    seen: list[int] = []

    def count_users(ev: events.Event) -> None:
        with Session(ev.bind) as fresh:
            seen.append(len(fresh.scalars(select(User)).all()))

    before = len(session.scalars(select(User)).all())
    stop = events.subscribe("test.happened", count_users)
    try:
        session.add(User(email="ev@example.org", name="Ev", role="volunteer"))
        events.emit(session, "test.happened")
        session.commit()
    finally:
        stop()
    assert seen == [before + 1]


def test_it_logs_a_failing_subscriber_and_still_tells_the_others(
    session: Session, heard: list[events.Event], caplog: pytest.LogCaptureFixture
) -> None:
    def broken(_ev: events.Event) -> None:
        raise RuntimeError("subscriber on fire")

    stop = events.subscribe("test.happened", broken)
    try:
        events.emit(session, "test.happened")
        with caplog.at_level(logging.ERROR, logger="amplify.events"):
            session.commit()  # does not raise
    finally:
        stop()
    assert len(heard) == 1
    assert any("test.happened" in r.getMessage() for r in caplog.records)


def test_it_stops_calling_a_subscriber_that_unsubscribed(session: Session) -> None:
    got: list[events.Event] = []
    stop = events.subscribe("test.happened", got.append)
    events.subscribe("test.happened", got.append)  # twice is one subscription
    events.emit(session, "test.happened")
    session.commit()
    stop()
    events.emit(session, "test.happened")
    session.commit()
    assert len(got) == 1
