"""Bad input never breaks a page (issue 8 item 5); people's text is shown as text (item 6).

The workspace is seeded with hostile names, campaigns, stories, notes, handles and errors
(Markdown, HTML, Streamlit directives, bare links). Every role opens every page: nothing of
that may reach a page as Markdown. Then each page's fields get hostile values (10,000
characters, NUL bytes, right-to-left and zero-width marks, emoji, script, spreadsheet
formulas, the oldest and latest dates the pickers allow, a text file named .png) and every
button is pressed: no exception may reach the page, and a refused form says what to fix.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import (
    AlertBase,
    DateInput,
    HeadingBase,
    Markdown,
    Radio,
)
from uikit import add_sandbox_account, make_user, open_app, shown, texts

from amplify import campaigns, permissions, workflow
from amplify.db import session_scope
from amplify.models import Account, DeliveryStatus, PostState, User, utcnow
from amplify.ui import nav
from amplify.ui.widgets import plain
from tests.factories import make_delivery, make_post

EVIL_CAMPAIGN = "**bold** :red[red] [link](http://evil.example)"
EVIL_NAME = "Val <b>V</b> :blue[x] __u__"
EVIL_BODY = "Read [click me](http://evil.example) **loud** :material/skull: <script>x()</script>"
EVIL_LINK = "https://evil.example/a_b_*c*"
EVIL_NOTE = "[fix](http://evil.example) **now** ~~x~~"
EVIL_HANDLE = "org.sandbox **h** [x](http://evil.example)"
EVIL_ERROR = "refused: <img src=x> **e** :orange[o]"

# Fragments a Markdown source holds only when someone's text went into it unescaped.
RAW = (
    "**bold**",
    ":red[",
    "](http://evil",
    "<b>",
    ":blue[",
    "__u__",
    "**loud**",
    ":material/skull",
    "<script",
    "**now**",
    "~~x~~",
    "**h**",
    "<img",
    ":orange[",
    "a_b_*c*",
    ":green[Lead",
    "<i>Admin",
)

HOSTILE = (
    "Ten thousand characters. " * 400,
    "nul\x00byte and a \x07bell",
    "\u202eevil\u202c zero\u200bwidth \ufeff 🙂👩🏽‍⚕️ עברית",
    "**b** <script>alert(1)</script> [x](javascript:alert(1)) :red[r] {{7*7}}",
    '=HYPERLINK("http://evil.example","click")',
)
NOT_AN_IMAGE = ("photo.png", b"this is a text file wearing a .png name\n", "image/png")
ROLES = ("volunteer", "lead", "admin")
KEEP_SIGNED_IN = ("Sign out", "Sign out everywhere")  # pressed, the rest would test sign-in


# --------------------------------------------------------------------------- helpers


def _pages() -> list[nav.PageSpec]:
    return [spec for spec in nav.PAGES if nav.available(spec)]


def _markdown_sources(at: AppTest) -> list[str]:
    """Every string the page hands to Streamlit's Markdown: bodies, alerts, headings, and the
    labels of widgets, expanders and tabs (st.text, tables and select options are plain)."""
    out: list[str] = []
    for node in at._tree:
        if isinstance(node, Markdown | AlertBase | HeadingBase):
            out.append(str(node.value))
        label = getattr(node, "label", None)
        if isinstance(label, str):
            out.append(label)
        if isinstance(node, Radio):
            out.extend(str(o) for o in node.options)
    return out


def _unescaped(fragment: str, source: str) -> bool:
    """Whether ``fragment`` occurs in a Markdown source without a backslash before it."""
    return re.search(r"(?<!\\)" + re.escape(fragment), source) is not None


def _no_exception(at: AppTest, where: str) -> None:
    assert not at.exception, f"{where}: " + "; ".join(str(e.value) for e in at.exception)


def _fill(at: AppTest, shift: int) -> None:
    """Hostile values in every text field (each field a different one), the earliest or
    latest day in every date picker."""
    fields = [*at.text_input, *at.text_area]
    for i, field in enumerate(fields):
        if not field.disabled:
            field.set_value(HOSTILE[(i + shift) % len(HOSTILE)])
    for picker in at.date_input:
        _pick_extreme(picker, latest=bool(shift % 2))


def _pick_extreme(picker: DateInput, *, latest: bool) -> None:
    if picker.disabled:
        return
    day = picker.max if latest else picker.min
    if isinstance(picker.value, tuple | list):
        picker.set_value((picker.min, picker.max))
    else:
        picker.set_value(day)


def _uid(role: str) -> int:
    with session_scope() as s:
        user = s.query(User).filter_by(role=role).order_by(User.id).first()
        assert user is not None
        return user.id


def _may_use(uid: int, spec: nav.PageSpec) -> bool:
    with session_scope() as s:
        return permissions.can(s.get(User, uid), spec.action)


# --------------------------------------------------------------------------- the workspace


@pytest.fixture
def hostile_workspace(sqlite_url: str) -> Iterator[dict[str, int]]:
    """People, a campaign, stories (waiting, sent back, published, failed), an advocate's
    account and a failed delivery, all carrying hostile text."""
    admin = make_user("admin", name="Ada <i>Admin</i>")
    lead = make_user("lead", name="Lee :green[Lead]")
    vol = make_user("volunteer", name=EVIL_NAME)
    org = add_sandbox_account("org.sandbox")
    own = add_sandbox_account(EVIL_HANDLE, owner_id=vol)
    with session_scope() as s:
        s.get(Account, own).amplify_opt_in = True  # type: ignore[union-attr]
        author = s.get(User, vol)
        reviewer = s.get(User, lead)
        assert author is not None and reviewer is not None
        camp = campaigns.create_campaign(s, s.get(User, admin), name=EVIL_CAMPAIGN)  # type: ignore[arg-type]
        waiting = workflow.create_draft(
            s,
            author,
            body=EVIL_BODY,
            campaign_id=camp.id,
            link=EVIL_LINK,
            target_platforms=["sandbox"],
        )
        workflow.submit(s, author, waiting.id)
        back = workflow.create_draft(
            s,
            author,
            body="Second. " + EVIL_BODY,
            campaign_id=camp.id,
            target_platforms=["sandbox"],
        )
        workflow.submit(s, author, back.id)
        workflow.reject(s, reviewer, back.id, EVIL_NOTE)
        account = s.get(Account, org)
        done = make_post(
            s,
            author=author,
            body="Third. " + EVIL_BODY,
            state=PostState.PUBLISHED,
            campaign_id=camp.id,
        )
        make_delivery(
            s,
            post=done,
            account=account,
            status=DeliveryStatus.PUBLISHED,
            published_at=utcnow() - timedelta(hours=2),
            remote_uri="sandbox://org.sandbox/1",
        )
        broken = make_post(s, author=author, body="Fourth. " + EVIL_BODY, campaign_id=camp.id)
        make_delivery(
            s, post=broken, account=account, status=DeliveryStatus.FAILED, last_error=EVIL_ERROR
        )
    yield {"admin": admin, "lead": lead, "volunteer": vol}


# --------------------------------------------------------------------------- item 6


@pytest.mark.parametrize(
    "text",
    [
        EVIL_CAMPAIGN,
        EVIL_BODY,
        EVIL_NOTE,
        ":smile: :material/home: $x^2$ 10:30 a@b.example www.evil.example HTTPS://X.example",
        "# heading\n- item\n1. one\n> quote\n```code```\n---\n| a | b |\n===",
        "under_score &amp; &lt;b&gt; \\*x\\* ![img](http://e.example/i.png) <http://a.example>",
    ],
)
def test_plain_keeps_every_character_a_person_typed(text: str) -> None:
    escaped = plain(text)
    assert shown(escaped) == text
    for fragment in ("**", ":red[", "<script", ":smile:", "http://", "www.", "a@b", "\n1. "):
        if fragment in text:
            assert not _unescaped(fragment, escaped), fragment


def test_plain_leaves_ordinary_words_alone() -> None:
    assert plain("Val Volunteer wrote 3 stories") == "Val Volunteer wrote 3 stories"
    assert "\x00" not in plain("nul\x00byte")


@pytest.mark.parametrize("role", ROLES)
def test_every_page_shows_peoples_text_as_text(
    hostile_workspace: dict[str, int], role: str
) -> None:
    uid = hostile_workspace[role]
    everything: list[str] = []
    for spec in _pages():
        at = open_app(uid, spec.file)
        _no_exception(at, f"{spec.title} as {role}")
        sources = _markdown_sources(at)
        for source in sources:
            for fragment in RAW:
                assert not _unescaped(fragment, source), (
                    f"{spec.title} ({role}) renders {fragment!r} as Markdown: {source[:300]!r}"
                )
        everything.extend(sources)
    # The check above looked at the hostile text itself, escaped (not at an empty page).
    on_screen = shown("\n".join(everything))
    assert EVIL_CAMPAIGN in on_screen
    expected = {
        "volunteer": [EVIL_NOTE],
        "lead": [EVIL_NAME, "Lee :green[Lead]"],
        "admin": [EVIL_HANDLE, EVIL_ERROR, EVIL_NAME],
    }[role]
    for text in expected:
        assert text in on_screen, f"{text!r} is not shown to the {role}"


# --------------------------------------------------------------------------- item 5


def _press_every_button(at: AppTest, spec: nav.PageSpec, where: str, shift: int) -> None:
    """Fill, then press each enabled button once (re-filling, since a press may clear)."""
    count = len(at.button)
    for i in range(count):
        if i >= len(at.button):
            break
        button = at.button[i]
        if button.disabled or button.label in KEEP_SIGNED_IN:
            continue
        _fill(at, shift + i)
        button.click().run()
        _no_exception(at, f"{where}, after pressing {button.label!r}")
        assert "Sign in to Amplify" not in texts(at), f"{where}: {button.label!r} signed out"
        if not at.title or at.title[0].value != spec.title:
            at.switch_page(f"{nav.PAGES_DIR}/{spec.file}").run()  # it moved to another page


@pytest.mark.parametrize("role", ROLES)
def test_no_page_raises_on_hostile_input(hostile_workspace: dict[str, int], role: str) -> None:
    uid = hostile_workspace[role]
    for spec in _pages():
        if not _may_use(uid, spec):
            continue
        where = f"{spec.title} as {role}"
        at = open_app(uid, spec.file)
        _no_exception(at, where)
        assert "Sign in to Amplify" not in texts(at), f"{where}: signed out"
        for shift in (0, 1):
            _fill(at, shift)
            at.run()
            _no_exception(at, f"{where} with hostile values")
            _press_every_button(at, spec, where, shift)


def test_share_refuses_a_text_file_named_png_with_a_message(
    hostile_workspace: dict[str, int],
) -> None:
    at = open_app(hostile_workspace["volunteer"], "share.py")
    assert at.file_uploader, "the Share page has no image upload"
    at.file_uploader[0].upload(*NOT_AN_IMAGE)
    at.run()
    _no_exception(at, "Share with a text file named .png")
    refusals = " ".join(str(a.value) for a in (*at.error, *at.warning))
    assert "photo.png" in shown(refusals), texts(at)
    assert at.button, "the Share page lost its buttons"


def test_share_refuses_hostile_stories_with_a_message(hostile_workspace: dict[str, int]) -> None:
    at = open_app(hostile_workspace["volunteer"], "share.py")
    at.text_area[0].set_value("A story with a bad link.")
    at.text_input[0].set_value("javascript:alert(1)")
    next(b for b in at.button if b.label == "Submit for review").click().run()
    _no_exception(at, "Share with a javascript: link")
    assert "The link must start with http" in texts(at)


def test_team_refuses_hostile_people_and_campaigns_with_a_message(
    hostile_workspace: dict[str, int],
) -> None:
    at = open_app(hostile_workspace["admin"], "team.py")
    name = next(t for t in at.text_input if t.label == "Name")
    name.set_value("x" * 10_000)
    next(t for t in at.text_input if t.label == "Email").set_value("nul\x00@example.org")
    next(b for b in at.button if b.label == "Add person").click().run()
    _no_exception(at, "Team: add a hostile person")
    assert at.error, "a refused person gets no message"
