"""Shared fixtures: a fresh, migrated database per test on SQLite, and on PostgreSQL.

PostgreSQL: each pytest run creates its own database on the server named by
AMPLIFY_TEST_POSTGRES_URL (so parallel runs never collide) and drops it at the end.
When that variable is set and the server is unreachable the tests fail: never skip.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from atproto_net.network import atproto_network  # noqa: F401  (session fixture)
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from amplify import db as amplify_db
from amplify.config import reset_settings
from amplify.migrate import upgrade
from amplify.models import Base
from connectors import registry
from tests import memory_connector

PG_ENV = "AMPLIFY_TEST_POSTGRES_URL"
TEST_KEY = Fernet.generate_key().decode()


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test gets its own data dir and secret key; nothing touches ./data."""
    monkeypatch.setenv("AMPLIFY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AMPLIFY_SECRET_KEY", TEST_KEY)
    monkeypatch.setenv("AMPLIFY_EMBEDDED_WORKER", "false")
    # The X/Mastodon stand-ins and the local atproto network speak plain http on 127.0.0.1;
    # real service URLs must be https (tests of that refusal turn this off).
    monkeypatch.setenv("AMPLIFY_ALLOW_INSECURE_LOOPBACK", "true")
    monkeypatch.setenv("AMPLIFY_DATABASE_URL", f"sqlite:///{tmp_path}/default.db")
    reset_settings()
    yield
    amplify_db.dispose_all()
    reset_settings()


@pytest.fixture(autouse=True)
def _pass_in_memory_connector() -> Iterator[None]:
    """Accounts on platform "memory" publish to tests/memory_connector.py's network; the
    product's registry has no such platform, so each test passes it in for its duration."""
    registry.register("memory", memory_connector.MemoryConnector)
    yield
    registry.unregister("memory")


# --------------------------------------------------------------------------- SQLite


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run the migrations once; each test copies the file (much faster than re-migrating)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    amplify_db.dispose_all()
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    path = tmp_path / "amplify.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    monkeypatch.setenv("AMPLIFY_DATABASE_URL", url)
    reset_settings()
    return url


# --------------------------------------------------------------------------- PostgreSQL


def _server_url() -> str | None:
    return os.environ.get(PG_ENV)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    server = _server_url()
    if not server:
        pytest.skip(f"{PG_ENV} is not set; `make test` sets it (PostgreSQL on 127.0.0.1:5432)")
    name = f"amplify_t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(amplify_db.make_engine(server).url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # unreachable server: fail loudly, never skip
        pytest.fail(f"PostgreSQL at {PG_ENV} is unreachable: {exc}")
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    amplify_db.dispose_all()
    yield url
    amplify_db.dispose_all()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def pg_url(pg_database: str, monkeypatch: pytest.MonkeyPatch) -> str:
    engine = amplify_db.get_engine(pg_database)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    monkeypatch.setenv("AMPLIFY_DATABASE_URL", pg_database)
    reset_settings()
    return pg_database


# --------------------------------------------------------------------------- either


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Runs the test once on SQLite and once on PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def session(sqlite_url: str) -> Iterator[Session]:
    """A session on a fresh SQLite database (most unit tests need nothing more)."""
    factory = amplify_db.session_factory(sqlite_url)
    with factory() as s:
        yield s
