"""The X API plan on the Accounts page: chosen when connecting, changed on the card."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from streamlit.testing.v1 import AppTest
from uikit import button

from amplify.crypto import encrypt_json
from amplify.db import session_scope
from amplify.models import Account


def _x_account() -> int:
    with session_scope() as s:
        acct = Account(
            platform="x",
            handle="chapter",
            service_url="http://127.0.0.1:9",
            credentials_enc=encrypt_json({"bearer": "t"}),
        )
        s.add(acct)
        s.flush()
        return acct.id


def test_it_saves_the_x_plan_chosen_on_the_account_card(app_as: Callable[..., AppTest]) -> None:
    account_id = _x_account()
    at = app_as("admin", "accounts.py")
    picker = at.selectbox(key=f"plan_{account_id}")
    assert picker.value == "pro"  # nothing set: Pro's limits, X's headers correct them
    assert "Free: 17 posts a day per account, 17 a day for the app" in picker.options
    picker.set_value("free").run()
    button(at, "Save plan").click().run()
    with session_scope() as s:
        acct = s.get(Account, account_id)
        assert acct is not None and acct.options == {"x_plan": "free"}
    assert not at.exception


def test_it_connects_an_x_account_on_the_chosen_plan(app_as: Callable[..., AppTest]) -> None:
    at = app_as("admin", "accounts.py")
    for key in ("api_key", "api_secret", "access_token", "access_token_secret"):
        at.text_input(key=f"acc_x_{key}_0").input(f"value-{key}")
    at.text_input(key="acc_x_handle").input("chapter")
    at.text_input(key="acc_x_service").input("http://127.0.0.1:9")  # closed: no traffic out
    at.selectbox(key="acc_x_plan").set_value("basic")
    button(at, "Connect and test", 1).click().run()
    with session_scope() as s:
        acct = s.scalars(select(Account).where(Account.platform == "x")).one()
        assert acct.options == {"x_plan": "basic"}


def test_my_stories_says_why_a_story_waits_for_xs_daily_cap(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    from datetime import timedelta

    from amplify import ratelimit
    from amplify.models import Delivery, Post, PostState, utcnow

    account_id = _x_account()
    until = utcnow() + timedelta(hours=20)
    with session_scope() as s:
        s.get(Account, account_id).options = {"x_plan": "free"}  # type: ignore[union-attr]
        post = Post(author_id=people["volunteer"], body="Advocacy day!", state=PostState.APPROVED)
        s.add(post)
        s.flush()
        s.add(
            Delivery(
                post_id=post.id,
                account_id=account_id,
                next_attempt_at=utcnow(),
                idempotency_key="k-waiting",
            )
        )
        # 17 posts today on the Free plan: the next is pushed to the day's reset, with why.
        spent = ratelimit.acquire(s, "x", account_id, units=17, now=until - timedelta(hours=24))
        assert spent is None
        assert ratelimit.defer_blocked(s) == 1
    at = app_as("volunteer", "my_stories.py")
    page = " ".join(i.value for i in at.info).replace("\\:\u2060", ":")  # markdown-escaped
    assert "Waiting on x:chapter: X allows 17 posts a day on your plan (Free)" in page, page
    assert "the next goes out" in page and f"at {until:%H:%M} UTC" in page
