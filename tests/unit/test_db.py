"""Database sessions: writers queue on the lock, readers never wait for them (SQLite WAL)."""

from __future__ import annotations

import time

from sqlalchemy import select, text

from amplify.db import session_scope
from amplify.models import User


def test_it_lets_a_reader_read_while_a_writer_holds_the_lock(sqlite_url):
    with session_scope(sqlite_url) as writer:
        writer.add(User(email="w@example.org", name="W", role="admin", password_hash="x"))
        writer.flush()  # the write lock is held until this block commits
        started = time.monotonic()
        with session_scope(sqlite_url, readonly=True) as reader:
            seen = reader.scalars(select(User.email)).all()
        assert time.monotonic() - started < 1.0
        assert seen == []  # the uncommitted row is not visible yet
    with session_scope(sqlite_url, readonly=True) as reader:
        assert reader.scalars(select(User.email)).all() == ["w@example.org"]


def test_it_runs_sqlite_in_wal_mode_with_a_busy_timeout(sqlite_url):
    with session_scope(sqlite_url) as s:
        assert s.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert s.execute(text("PRAGMA busy_timeout")).scalar() == 30000
