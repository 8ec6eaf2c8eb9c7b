"""The demo workspace: every page full, in its own file, never mixed into a real one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from amplify import analytics, checklist
from amplify.db import session_scope
from amplify.demo import DemoPeople, build_demo
from amplify.errors import ConfigError
from amplify.models import (
    Account,
    AuditEvent,
    Campaign,
    Delivery,
    EngagementDaily,
    MetricSnapshot,
    Post,
    User,
    utcnow,
)
from tests.factories import make_user


def test_it_builds_every_role_campaigns_and_stories_in_every_state(tmp_path):
    url = f"sqlite:///{tmp_path}/demo.db"
    people = build_demo(url)
    assert set(people.emails) == {"admin", "lead", "volunteer"}
    with session_scope(url) as s:
        states = set(s.scalars(select(Post.state)).all())
        assert states == {"draft", "submitted", "approved", "published", "cancelled"}
        archived = s.scalars(select(Campaign.archived)).all()
        assert sorted(archived) == [False, False, False, True], "three in use, one archived"
        assert s.scalar(select(func.count(MetricSnapshot.id))) > 50
        assert not s.scalar(
            select(func.count(MetricSnapshot.id)).where(MetricSnapshot.simulated.is_(False))
        )
        assert s.scalar(select(func.sum(EngagementDaily.gain))) > 0
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


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, DemoPeople]:
    """One demo workspace for the read-only checks below (building it takes seconds)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('demo')}/demo.db"
    return url, build_demo(url, days=30)


def test_every_role_has_stories_and_an_opted_in_account_of_its_own(demo):
    """My stories and Amplify are full for leads and admins too, not only volunteers."""
    url, people = demo
    with session_scope(url) as s:
        for role in ("admin", "lead", "volunteer"):
            user = s.scalar(select(User).where(User.email == people.emails[role]))
            assert user is not None
            states = set(s.scalars(select(Post.state).where(Post.author_id == user.id)))
            assert len(states) >= 2, (role, states)
            own = s.scalars(select(Account).where(Account.owner_id == user.id)).all()
            assert [a.amplify_opt_in for a in own] == [True], role


def test_activity_has_real_times_spread_over_the_month_in_the_order_things_happened(demo):
    url, _ = demo
    with session_scope(url) as s:
        events = s.scalars(select(AuditEvent).order_by(AuditEvent.at)).all()
        assert events and all(e.at <= utcnow() for e in events)
        assert events[-1].at - events[0].at > timedelta(days=25)
        assert len({e.at for e in events}) > 0.9 * len(events), "not all stamped at once"
        for post in s.scalars(select(Post)):
            seen = {
                e.action: e.at
                for e in events
                if e.subject_type == "post" and e.subject_id == post.id
            }
            assert seen["post.created"] <= seen.get("post.submitted", seen["post.created"])
            if "post.approved" in seen:
                assert seen["post.submitted"] <= seen["post.approved"]
            if "post.published" in seen:
                assert post.scheduled_for is not None
                assert seen["post.approved"] <= seen["post.published"] == post.scheduled_for


def test_the_system_page_has_a_failed_send_with_its_reason(demo):
    url, _ = demo
    with session_scope(url) as s:
        [failed] = s.scalars(select(Delivery).where(Delivery.status == "failed")).all()
        assert failed.last_error and "Retry" in failed.last_error
        post = s.get(Post, failed.post_id)
        assert post is not None and post.state == "approved"


def test_the_demo_admin_is_past_the_first_hour_checklist(demo):
    url, _ = demo
    with session_scope(url) as s:
        assert checklist.all_done(s)
        assert checklist.is_dismissed(s)


def test_my_stories_show_when_each_story_last_changed_not_when_the_demo_was_built(demo):
    url, _ = demo
    with session_scope(url) as s:
        posts = s.scalars(select(Post)).all()
        assert all(p.updated_at >= p.created_at for p in posts)
        assert len({p.updated_at for p in posts}) == len(posts)
        for post in posts:
            if post.state == "published":
                assert post.updated_at == post.published_at
