"""Accounts, Team & settings, Activity, System and Amplify pages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select, text
from streamlit.testing.v1 import AppTest
from uikit import add_sandbox_account, button, submitted_story, texts

from amplify import users, workflow
from amplify.db import session_scope
from amplify.models import Account, Delivery, NotificationChannel, User, utcnow

SECRET = "sk-live-DO-NOT-LEAK-123456"


def _all_text_in_db() -> str:
    """Every text value of every row (to prove a secret is not stored in clear)."""
    out = []
    with session_scope() as s:
        tables = s.execute(text("SELECT name FROM sqlite_master WHERE type='table'")).scalars()
        for table in list(tables):
            for row in s.execute(text(f'SELECT * FROM "{table}"')):
                out.extend(str(v) for v in row)
    return "\n".join(out)


def test_it_connects_a_practice_account_and_tests_it(app_as: Callable[..., AppTest]) -> None:
    at = app_as("admin", "accounts.py")
    assert "practice network" in texts(at)
    at.text_input(key="acc_sandbox_handle").input("team.sandbox")
    button(at, "Connect and test", 0).click().run()
    with session_scope() as s:
        [acct] = s.scalars(select(Account)).all()
        assert acct.handle == "team.sandbox" and acct.status == "ok"
    assert "Connected" in texts(at)


def test_it_explains_a_refused_credential_and_never_stores_it_in_clear(
    app_as: Callable[..., AppTest],
) -> None:
    at = app_as("admin", "accounts.py")
    at.text_input(key="acc_sandbox_handle").input("fail-auth-team")
    button(at, "Connect and test", 0).click().run()
    assert any("refused the sign-in" in e.value for e in at.error), texts(at)
    with session_scope() as s:
        [acct] = s.scalars(select(Account)).all()
        assert acct.status == "needs_attention"
    # An X account with a secret typed into the password fields: stored only encrypted.
    for key in ("api_key", "api_secret", "access_token"):
        at.text_input(key=f"acc_x_{key}_0").input(f"{SECRET}-{key}")
    at.text_input(key="acc_x_access_token_secret_0").input(SECRET)
    at.text_input(key="acc_x_handle").input("teamhandle")
    # A closed local port: the sign-in fails without any traffic leaving this machine.
    at.text_input(key="acc_x_service").input("http://127.0.0.1:9")
    [x_field] = [t for t in at.text_input if t.key == "acc_x_api_key_0"]
    assert x_field.proto.type == x_field.proto.PASSWORD
    button(at, "Connect and test", 1).click().run()
    shown = texts(at)
    assert SECRET not in shown
    assert at.text_input(key="acc_x_api_key_1").value == "", "typed secrets are cleared"
    assert "acc_x_api_key_0" not in at.session_state
    assert SECRET not in _all_text_in_db()
    with session_scope() as s:
        x = s.scalar(select(Account).where(Account.platform == "x"))
        assert x is not None and x.service_url == "http://127.0.0.1:9"
        assert x.credentials_enc and SECRET not in x.credentials_enc
    assert any("teamhandle" in e.value for e in at.error), "the failed sign-in is explained"


def test_it_removes_an_account_after_confirmation(app_as: Callable[..., AppTest]) -> None:
    acct = add_sandbox_account()
    at = app_as("admin", "accounts.py")
    assert button(at, "Remove").disabled
    at.checkbox(key=f"rmc_{acct}").check().run()
    button(at, "Remove").click().run()
    with session_scope() as s:
        assert s.get(Account, acct) is None


def test_it_adds_a_person_and_changes_a_role(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    at = app_as("admin", "team.py")
    at.text_input(key="keep_tm_new_name").input("Vera Volunteer")
    at.text_input(key="keep_tm_new_email").input("vera@example.org")
    at.text_input(key="tm_new_pw_0").input("a long first password")
    button(at, "Add person").click().run()
    with session_scope() as s:
        vera = users.get_by_email(s, "vera@example.org")
        assert vera is not None and vera.role == "volunteer"
    # A browser sends a forgotten field's value back, so the form must be new widgets.
    assert not [w for w in at.text_input if w.key in ("keep_tm_new_name", "tm_new_pw_0")]
    fresh = [at.text_input(key=k).value for k in ("keep_tm_new_1_name", "tm_new_pw_1")]
    assert fresh == ["", ""], "the add form is empty again, password included"
    at.selectbox(key="tm_person").set_value(people["volunteer"]).run()
    at.selectbox(key=f"tm_role_{people['volunteer']}").set_value("lead").run()
    button(at, "Change role").click().run()
    with session_scope() as s:
        assert s.get(User, people["volunteer"]).role == "lead"  # type: ignore[union-attr]


def test_it_refuses_to_demote_the_last_admin_with_a_reason(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    at = app_as("admin", "team.py")
    at.selectbox(key="tm_person").set_value(people["admin"]).run()
    at.selectbox(key=f"tm_role_{people['admin']}").set_value("lead").run()
    button(at, "Change role").click().run()
    assert any("last active admin" in e.value for e in at.error)


def test_it_stores_a_notification_url_encrypted_and_shows_it_masked(
    app_as: Callable[..., AppTest],
) -> None:
    at = app_as("admin", "team.py")
    at.text_input(key="keep_tm_ch_label").input("Leads on ntfy")
    url = f"ntfys://{SECRET}@ntfy.example.org/leads"
    at.text_input(key="tm_ch_url_0").input(url)
    button(at, "Add channel").click().run()
    with session_scope() as s:
        [ch] = s.scalars(select(NotificationChannel)).all()
        assert ch.audiences == ["leads"]
    assert SECRET not in _all_text_in_db()
    assert "Leads on ntfy — ntfys://ntfy.example.org/… — for leads" in texts(at)
    assert SECRET not in texts(at)
    assert at.text_input(key="tm_ch_url_1").value == "", "the URL field is empty again"


def test_it_shows_the_audit_log_filtered_by_action(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    submitted_story(people["volunteer"])
    at = app_as("lead", "activity.py")
    df = at.dataframe[0].value
    assert {"user.created", "post.submitted"} <= set(df["action"]) or "user.created" in set(
        df["action"]
    )
    at.multiselect(key="act_actions").set_value(["user.created"]).run()
    df = at.dataframe[0].value
    assert set(df["action"]) == {"user.created"} and len(df) == 3


def test_it_lists_failed_deliveries_with_their_reason_and_retries_one(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    acct = add_sandbox_account()
    pid = submitted_story(people["volunteer"])
    with session_scope() as s:
        lead = s.get(User, people["lead"])
        workflow.approve(s, lead, pid, account_ids=[acct], scheduled_for=utcnow())
        d = s.scalar(select(Delivery).where(Delivery.post_id == pid))
        assert d is not None
        d.status, d.last_error, d.error_kind = "failed", "the post is too long for X", "permanent"
    at = app_as("lead", "system.py")
    assert "Reason: the post is too long for X" in texts(at)
    assert "No worker has ever reported in" in texts(at)
    button(at, "Retry").click().run()
    with session_scope() as s:
        d = s.scalar(select(Delivery).where(Delivery.post_id == pid))
        assert d is not None and d.status == "pending"
        assert d.next_attempt_at <= utcnow() + timedelta(seconds=5)


def test_it_lets_an_advocate_opt_their_own_account_in(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    acct = add_sandbox_account("vol.sandbox", owner_id=people["volunteer"])
    at = app_as("volunteer", "amplify_page.py")
    assert "Nothing waiting for you to share" in texts(at)
    button(at, "Opt in").click().run()
    with session_scope() as s:
        assert s.get(Account, acct).amplify_opt_in  # type: ignore[union-attr]


def test_it_connects_an_advocates_own_account_opted_in(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    at = app_as("admin", "accounts.py")
    at.text_input(key="acc_sandbox_handle").input("val.sandbox")
    at.selectbox(key="acc_sandbox_owner").set_value(people["volunteer"])
    at.checkbox(key="acc_sandbox_optin").check().run()
    button(at, "Connect and test", 0).click().run()
    with session_scope() as s:
        [acct] = s.scalars(select(Account)).all()
        assert acct.owner_id == people["volunteer"] and acct.amplify_opt_in
    assert any("val.sandbox" in m.value and "Volunteer" in m.value for m in at.markdown)


def test_it_removes_an_account_with_scheduled_sends_only_when_told_to_cancel_them(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    acct = add_sandbox_account()
    pid = submitted_story(people["volunteer"])
    with session_scope() as s:
        lead = s.get(User, people["lead"])
        workflow.approve(
            s, lead, pid, account_ids=[acct], scheduled_for=utcnow() + timedelta(days=1)
        )
    at = app_as("admin", "accounts.py")
    at.checkbox(key=f"rmc_{acct}").check().run()
    button(at, "Remove").click().run()
    assert any("scheduled send" in e.value for e in at.error), texts(at)
    at.checkbox(key=f"rmf_{acct}").check().run()
    button(at, "Remove").click().run()
    with session_scope() as s:
        assert s.get(Account, acct).status == "disabled"  # type: ignore[union-attr]
        d = s.scalar(select(Delivery).where(Delivery.post_id == pid))
        assert d is not None and d.status == "cancelled"


def test_it_gives_an_advocate_one_click_x_share_links(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    from amplify.crypto import encrypt_json
    from amplify.models import Post

    with session_scope() as s:
        org = Account(platform="x", handle="chapter", credentials_enc=encrypt_json({}))
        mine = Account(
            platform="x",
            handle="valv",
            credentials_enc=encrypt_json({}),
            owner_id=people["volunteer"],
            amplify_opt_in=True,
        )
        post = Post(
            author_id=people["lead"],
            body="Screenings saved lives.",
            state="published",
            amplify=True,
        )
        s.add_all([org, mine, post])
        s.flush()
        s.add(
            Delivery(
                post_id=post.id,
                account_id=org.id,
                status="published",
                next_attempt_at=utcnow(),
                published_at=utcnow(),
                idempotency_key="k-share-1",
                remote_id="1790000000000000001",
                remote_url="https://x.com/chapter/status/1790000000000000001",
            )
        )
    at = app_as("volunteer", "amplify_page.py")
    [link] = at.get("link_button")
    assert "1790000000000000001" in link.proto.url
    assert "Screenings saved lives." in texts(at)


def test_it_pages_through_a_long_audit_log(
    people: dict[str, int], app_as: Callable[..., AppTest]
) -> None:
    with session_scope() as s:
        admin = s.get(User, people["admin"])
        for n in range(60):
            workflow.audit(s, admin, "test.event", "post", n)
    at = app_as("lead", "activity.py")
    assert "63 event(s) · page 1 of 2" in texts(at)
    assert len(at.dataframe[0].value) == 50
    button(at, "Older →").click().run()
    assert "page 2 of 2" in texts(at) and len(at.dataframe[0].value) == 13
    at.multiselect(key="act_actions").set_value(["test.event"]).run()
    assert "60 event(s) · page 1 of 2" in texts(at), "a new filter starts at page 1"


def test_it_adds_edits_archives_and_restores_a_campaign(app_as: Callable[..., AppTest]) -> None:
    from amplify.models import Campaign

    at = app_as("admin", "campaigns.py")
    assert not at.exception
    at.text_input(key="keep_cp_new_name").input("Spring Drive")
    at.text_input(key="keep_cp_new_tags").input("health #Access")
    button(at, "Add campaign").click().run()
    assert "Campaign Spring Drive added." in [s.value for s in at.success]
    # Cleared as a browser sees it: new widgets (a forgotten key's value comes back).
    assert not [w for w in at.text_input if w.key == "keep_cp_new_name"]
    assert at.text_input(key="keep_cp_new_1_name").value == "", "the add form is cleared"
    with session_scope() as s:
        [c] = s.scalars(select(Campaign)).all()
        cid = c.id
        assert c.hashtags == "#health #Access"

    at.text_input(key=f"cp_{cid}_name").input("Spring Drive 2026")
    at.text_input(key=f"cp_{cid}_utm").input("spring-26")
    button(at, "Save changes").click().run()
    assert "Campaign Spring Drive 2026 saved." in [s.value for s in at.success]
    button(at, "Archive").click().run()
    with session_scope() as s:
        c = s.get(Campaign, cid)
        assert c is not None
        assert (c.name, c.utm_campaign, c.archived) == ("Spring Drive 2026", "spring-26", True)
    button(at, "Restore").click().run()
    with session_scope() as s:
        c = s.get(Campaign, cid)
        assert c is not None and not c.archived


def test_it_explains_a_campaign_that_cannot_be_saved(app_as: Callable[..., AppTest]) -> None:
    at = app_as("admin", "campaigns.py")
    at.text_input(key="keep_cp_new_name").input("   ")
    button(at, "Add campaign").click().run()
    assert any("Give the campaign a name." in e.value for e in at.error), texts(at)


def test_it_clears_the_connect_form_and_labels_sandbox_followers_simulated(
    app_as: Callable[..., AppTest],
) -> None:
    at = app_as("admin", "accounts.py")
    at.text_input(key="acc_sandbox_handle").input("team.sandbox")
    at.checkbox(key="acc_sandbox_optin").check()
    button(at, "Connect and test", 0).click().run()
    assert "Connected" in texts(at)
    assert at.text_input(key="acc_sandbox_handle").value == ""
    assert at.checkbox(key="acc_sandbox_optin").value is False
    with session_scope() as s:
        [acct] = s.scalars(select(Account)).all()
        followers = acct.followers_count
    assert followers is not None
    assert f"{followers:,} followers (simulated)" in texts(at)
