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
