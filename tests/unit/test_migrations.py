"""The schema only changes through migrations: upgrading from empty gives exactly the models."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from amplify import db as amplify_db
from amplify.migrate import upgrade
from amplify.models import Base


def _diff(url: str) -> list[object]:
    engine = amplify_db.get_engine(url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, Base.metadata))


def test_it_migrates_an_empty_sqlite_database_to_match_the_models(tmp_path):
    url = f"sqlite:///{tmp_path}/fresh.db"
    upgrade(url)
    assert _diff(url) == []
    tables = set(inspect(amplify_db.get_engine(url)).get_table_names())
    assert set(Base.metadata.tables) <= tables


@pytest.mark.postgres
def test_it_migrates_postgres_to_match_the_models(pg_url):
    assert _diff(pg_url) == []


def test_it_is_a_no_op_the_second_time(tmp_path):
    url = f"sqlite:///{tmp_path}/twice.db"
    upgrade(url)
    upgrade(url)
    assert _diff(url) == []
