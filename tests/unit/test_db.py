"""Database sessions: writers queue on the lock, readers never wait for them (SQLite WAL)."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest
from sqlalchemy import select, text

from amplify.config import reset_settings
from amplify.db import make_engine, session_scope
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


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_it_creates_the_data_folder_and_the_database_files_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("AMPLIFY_DATA_DIR", str(data))
    old = os.umask(0o022)  # the usual default: files 0644, folders 0755
    try:
        reset_settings()
        url = f"sqlite:///{data}/amplify.db"
        with session_scope(url) as s:
            s.execute(text("CREATE TABLE notes (body TEXT)"))
            s.execute(text("INSERT INTO notes VALUES ('a password hash')"))
        with session_scope(url, readonly=True) as s:
            assert s.scalar(text("SELECT body FROM notes")) == "a password hash"
            db = data / "amplify.db"
            assert _mode(data) == 0o700
            assert _mode(db) == 0o600
            companions = [db.with_name("amplify.db" + x) for x in ("-wal", "-shm")]
            assert all(p.exists() for p in companions)  # WAL mode, a connection open
            assert [_mode(p) for p in companions] == [0o600, 0o600]
    finally:
        os.umask(old)


def test_it_tightens_a_database_and_data_folder_others_could_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    db = data / "amplify.db"
    db.touch()
    db.chmod(0o644)
    monkeypatch.setenv("AMPLIFY_DATA_DIR", str(data))
    reset_settings()
    make_engine(f"sqlite:///{db}").dispose()
    assert (_mode(data), _mode(db)) == (0o700, 0o600)
    assert "readable by other users" in caplog.text
