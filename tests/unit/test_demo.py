"""The demo workspace: every page full, in its own file, never mixed into a real one."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from amplify import analytics
from amplify.db import session_scope
from amplify.demo import build_demo
from amplify.errors import ConfigError
from amplify.models import Campaign, EngagementDaily, MetricSnapshot, Post, User, utcnow
from tests.factories import make_user


def test_it_builds_every_role_campaigns_and_stories_in_every_state(tmp_path):
    url = f"sqlite:///{tmp_path}/demo.db"
    people = build_demo(url)
    assert set(people.emails) == {"admin", "lead", "volunteer"}
    with session_scope(url) as s:
        states = set(s.scalars(select(Post.state)).all())
        assert states == {"draft", "submitted", "approved", "published", "cancelled"}
        assert s.scalar(select(func.count(Campaign.id))) == 3
        assert s.scalar(select(func.count(MetricSnapshot.id))) > 50
        assert not s.scalar(
            select(func.count(MetricSnapshot.id)).where(MetricSnapshot.simulated.is_(False))
        )
        assert s.scalar(select(func.sum(EngagementDaily.gain))) > 0
        from datetime import timedelta

        period = analytics.Period(utcnow() - timedelta(days=31), utcnow())
        k = analytics.kpis(s, period)
        assert k.stories_published > 10 and k.simulated


def test_it_is_idempotent(tmp_path):
    url = f"sqlite:///{tmp_path}/demo.db"
    build_demo(url)
    build_demo(url)
    with session_scope(url) as s:
        assert s.scalar(select(func.count(User.id))) == 6


def test_it_refuses_to_write_into_a_real_workspace(sqlite_url):
    with session_scope(sqlite_url) as s:
        make_user(s, role="admin")
    with pytest.raises(ConfigError, match="already holds a real workspace"):
        build_demo(sqlite_url)
