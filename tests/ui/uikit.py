"""Helpers for the dashboard's AppTests (imported by the tests and tests/ui/conftest.py).

Sign-in seam: the dashboard trusts ``st.session_state["user_id"]`` (set by the sign-in
screen); tests seed it directly to act as a person of a given role.
"""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from amplify import users
from amplify.db import session_scope
from amplify.models import User

APP = Path(__file__).resolve().parents[2] / "app.py"
PASSWORD = "correct horse battery"


def make_user(role: str, email: str | None = None, name: str | None = None) -> int:
    with session_scope() as s:
        actor = s.query(User).filter_by(role="admin", active=True).first()
        user = users.create_user(
            s,
            actor,
            email=email or f"{role}@example.org",
            name=name or role.title(),
            role=role,
            password=PASSWORD,
        )
        s.flush()
        return user.id


def open_app(user_id: int | None, page: str | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=30)
    if user_id is not None:
        at.session_state["user_id"] = user_id
    at.run()
    if page is not None:
        at.switch_page(f"amplify/ui/pages/{page}").run()
    return at


def texts(at: AppTest) -> str:
    """Everything a person reads on the page, as one string (for assertions)."""
    parts: list[str] = []
    for kind in (
        "title",
        "header",
        "subheader",
        "markdown",
        "caption",
        "text",
        "info",
        "success",
        "warning",
        "error",
    ):
        parts.extend(str(el.value) for el in getattr(at, kind))
    return shown("\n".join(parts))


def shown(markdown: str) -> str:
    """Markdown source as read on screen: people's text escaped by widgets.plain unescaped."""
    import re

    from amplify.ui.widgets import WORD_JOINER

    text = re.sub(r"\\(.)", r"\1", markdown.replace(WORD_JOINER, ""))
    return text.replace("  \n", "\n")


def add_sandbox_account(handle: str = "team.sandbox", *, owner_id: int | None = None) -> int:
    """An organisation (or advocate) practice account, stored as the accounts service would."""
    from amplify.crypto import encrypt_json
    from amplify.models import Account

    with session_scope() as s:
        acct = Account(
            platform="sandbox",
            handle=handle,
            credentials_enc=encrypt_json({}),
            owner_id=owner_id,
        )
        s.add(acct)
        s.flush()
        return acct.id


def submitted_story(author_id: int, body: str = "Our clinic cut wait times by half.") -> int:
    from amplify import workflow

    with session_scope() as s:
        author = s.get(User, author_id)
        assert author is not None
        post = workflow.create_draft(s, author, body=body, target_platforms=["sandbox"])
        workflow.submit(s, author, post.id)
        return post.id


def button(at: AppTest, label: str, index: int = 0):
    """The index-th button with this label (fails clearly when there is none)."""
    found = [b for b in at.button if b.label == label]
    assert found, f"no button {label!r}; buttons: {[b.label for b in at.button]}"
    return found[index]
