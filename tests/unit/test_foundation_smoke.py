from sqlalchemy import select

from amplify.models import User


def test_it_migrates_and_stores_a_user(session):
    session.add(User(email="a@example.org", name="A", role="lead", password_hash="x"))
    session.commit()
    assert session.scalars(select(User.email)).all() == ["a@example.org"]


def test_it_migrates_postgres_too(pg_url):
    from amplify.db import session_scope

    with session_scope(pg_url) as s:
        s.add(User(email="b@example.org", name="B", role="admin", password_hash="x"))
    with session_scope(pg_url) as s:
        assert s.scalar(select(User.role)) == "admin"
