"""Engine and session factory: SQLite (WAL, busy timeout) by default, PostgreSQL at scale."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.orm import Session, sessionmaker

from amplify.config import get_settings, private_dir, tighten_file

_lock = threading.Lock()
_engines: dict[str, Engine] = {}
_factories: dict[str, sessionmaker[Session]] = {}


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _private_sqlite_file(path: Path) -> None:
    """The database holds password hashes, emails and the audit log: the file 0600 in a
    folder only its owner enters. SQLite gives -wal and -shm the database file's mode, so
    creating the file 0600 before SQLite does covers them; older loose ones are tightened."""
    data_dir = get_settings().data_dir
    if data_dir.exists() or path.parent == data_dir:
        private_dir(data_dir)
    if not path.parent.exists():
        private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        tighten_file(path)
    for suffix in ("-wal", "-shm", "-journal"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            tighten_file(companion)


def make_engine(url: str, *, readonly: bool = False) -> Engine:
    """``readonly`` (SQLite): plain deferred transactions, so readers never wait on writers
    (WAL lets them read the last committed state). Writers take the lock up front."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1].split("?", 1)[0]
        if path and path != ":memory:" and "///" in url:
            _private_sqlite_file(Path(path))
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=10,
            max_overflow=20,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own BEGIN handling defers locks; take the write lock up front so two
        # writers queue on busy_timeout instead of failing with "database is locked".
        begin = "BEGIN" if readonly else "BEGIN IMMEDIATE"
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql(begin))

        @event.listens_for(engine, "connect")
        def _no_pysqlite_begin(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


_serialized_engines: set[int] = set()
_serialize_lock = threading.Lock()


def serialize_sqlite_writers(engine: Engine) -> None:
    """On SQLite, queue this process's transactions on a lock instead of SQLite's busy
    handler, which sleeps in steps of up to 100 ms when threads collide (every transaction
    takes the write lock: ``BEGIN IMMEDIATE``). With a pool of publishing threads that
    sleep, not the work, dominated the time. Other processes still meet on busy_timeout."""
    if engine.dialect.name != "sqlite":
        return
    with _serialize_lock:
        if id(engine) in _serialized_engines:
            return
        _serialized_engines.add(id(engine))
    lock = threading.RLock()

    def acquire(conn: Connection) -> None:
        # Bounded like busy_timeout: a transaction left open elsewhere never hangs a worker.
        if lock.acquire(timeout=30):
            conn.info["amplify_writer_lock"] = conn.info.get("amplify_writer_lock", 0) + 1

    def release(conn: Connection) -> None:
        held = conn.info.get("amplify_writer_lock", 0)
        if held:
            conn.info["amplify_writer_lock"] = held - 1
            lock.release()

    def begin_failed(context: ExceptionContext) -> None:
        # BEGIN itself failed (the database stayed locked by another process past
        # busy_timeout): no commit or rollback will follow, so let go here.
        statement = (context.statement or "").lstrip().upper()
        if statement.startswith("BEGIN") and context.connection is not None:
            release(context.connection)

    # insert=True: take the lock before make_engine's listener sends BEGIN IMMEDIATE.
    event.listen(engine, "begin", acquire, insert=True)
    event.listen(engine, "commit", release)
    event.listen(engine, "rollback", release)
    event.listen(engine, "handle_error", begin_failed)


def database_url() -> str:
    return get_settings().resolved_database_url


def _key(url: str, readonly: bool) -> str:
    # PostgreSQL readers never block writers: one engine serves both.
    return url + "#ro" if readonly and url.startswith("sqlite") else url


def get_engine(url: str | None = None, *, readonly: bool = False) -> Engine:
    url = url or database_url()
    key = _key(url, readonly)
    with _lock:
        if key not in _engines:
            _engines[key] = make_engine(url, readonly=readonly)
        return _engines[key]


def session_factory(url: str | None = None, *, readonly: bool = False) -> sessionmaker[Session]:
    url = url or database_url()
    engine = get_engine(url, readonly=readonly)
    key = _key(url, readonly)
    with _lock:
        if key not in _factories:
            _factories[key] = sessionmaker(engine, expire_on_commit=False)
        return _factories[key]


@contextmanager
def session_scope(url: str | None = None, *, readonly: bool = False) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error.

    ``readonly=True`` for pages and reports that only read: on SQLite they then never hold
    the write lock, so a slow page cannot delay publishing.
    """
    session = session_factory(url, readonly=readonly)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def is_postgres(session_or_engine: Session | Engine) -> bool:
    if isinstance(session_or_engine, Session):
        return session_or_engine.get_bind().dialect.name == "postgresql"
    bind = session_or_engine
    return bind.dialect.name == "postgresql"


def dispose_all() -> None:
    """Close every pooled connection (tests, and after fork in worker processes)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _factories.clear()
