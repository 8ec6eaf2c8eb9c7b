"""Shared widgets: page guard, error display, status badges, time-zone aware date-times, and
``plain`` for putting people's own text into Markdown as text."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import streamlit as st

from amplify import permissions
from amplify.config import get_settings
from amplify.errors import AmplifyError, Conflict, ValidationFailed
from amplify.models import User
from amplify.ui import state
from connectors import registry

REFUSAL_HINT = "This page is not open to you. Pick one from the menu, or ask an admin."
PRACTICE_LABEL = "Sandbox — practice network, nothing is really posted"

STATUS_COLOURS = {
    "draft": "gray",
    "submitted": "blue",
    "approved": "violet",
    "published": "green",
    "cancelled": "gray",
    "pending": "blue",
    "claimed": "orange",
    "reconcile": "orange",
    "failed": "red",
    "ok": "green",
    "needs_attention": "red",
    "disabled": "gray",
}

# Widget keys with this prefix survive page switches (Streamlit forgets a widget's value
# when the widget is not drawn in a run; copying it into session state keeps it).
KEEP = "keep_"


# --------------------------------------------------------------------------- user text

# Streamlit renders st.markdown, st.caption, alerts and labels as Markdown (with its own
# :colour[...], :material/icon: and emoji directives) and has no "plain" switch, so text a
# person typed is escaped before it joins the app's own Markdown. st.text needs no escaping.
_ALWAYS = re.compile(r"([\\`*_\[\]{}<>|~$&!#])")
_LINE_START = re.compile(r"(?m)^([-+=])")  # lists and setext headings
_ORDERED = re.compile(r"(?m)^(\d+)([.)])")  # "1. " would start a numbered list
# Emoji (:smile:), icons (:material/x:) and bare addresses are turned into pictures and links
# from the text *after* escapes are read, so an invisible WORD JOINER breaks their pattern.
WORD_JOINER = "\u2060"
_COLON = re.compile(r":(?=[^\s/])")
_AUTOLINK = re.compile(r"(?i)(?:\b(?:https?|ftp)(?=://)|\bwww(?=\.)|@(?=[\w-]))")


def plain(text: object) -> str:
    """``text`` escaped so Markdown shows it exactly as typed: no styling, links or HTML."""
    value = str(text).replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "\ufffd")
    value = re.sub(r"(?m)^[ \t]+", "", value)  # leading spaces would make a code block
    value = _ALWAYS.sub(r"\\\1", value)
    value = _LINE_START.sub(r"\\\1", value)
    value = _ORDERED.sub(r"\1\\\2", value)
    value = _COLON.sub("\\\\:" + WORD_JOINER, value)
    value = _AUTOLINK.sub(lambda m: m.group(0) + WORD_JOINER, value)
    return value.replace("\n", "  \n")  # keep the writer's line breaks


# --------------------------------------------------------------------------- access


def guard(action: permissions.Action) -> User:
    """The signed-in person if they may use this page; otherwise a refusal and stop."""
    user = state.current_user()
    reason = permissions.refusal(user, action)
    if reason is not None:
        st.error(reason, icon=":material/block:")
        st.caption(REFUSAL_HINT)
        st.stop()
    assert user is not None
    return user


def keep_typed_values() -> None:
    """Re-store every ``keep_`` widget value so leaving a page does not lose what was typed."""
    for key in list(st.session_state.keys()):
        if isinstance(key, str) and key.startswith(KEEP):
            st.session_state[key] = st.session_state[key]


def forget(prefix: str) -> None:
    for key in list(st.session_state.keys()):
        if isinstance(key, str) and key.startswith(prefix):
            del st.session_state[key]


def form_prefix(prefix: str) -> str:
    """The key prefix of a form's fields in its current generation. Forgetting a widget's key
    does not empty a field the browser still holds (it sends the value back with the next
    click); new keys make new widgets, which the browser starts empty."""
    gen = st.session_state.get(f"{prefix}gen", 0)
    return f"{prefix}{gen}_" if gen else prefix


def new_form(prefix: str) -> None:
    """Forget a form's fields and move it to its next generation (see ``form_prefix``)."""
    gen = st.session_state.get(f"{prefix}gen", 0)
    forget(prefix)
    st.session_state[f"{prefix}gen"] = gen + 1


def secret_key(scope: str, name: str) -> str:
    """Widget key of a secret field (password, token, URL with a token). Each attempt bumps
    the scope's generation, so the next run draws fresh, empty fields: a typed secret never
    outlives its attempt, and Streamlit drops the old widget's value."""
    return f"{scope}_{name}_{st.session_state.get(f'{scope}_gen', 0)}"


def clear_secret_fields(scope: str) -> None:
    st.session_state[f"{scope}_gen"] = st.session_state.get(f"{scope}_gen", 0) + 1


# --------------------------------------------------------------------------- errors


def show_error(exc: Exception) -> None:
    """A person-readable error: each ValidationFailed problem on its own line."""
    # Messages can echo what was typed (a name, a link): shown as text, never as Markdown.
    if isinstance(exc, ValidationFailed):
        lines = "\n".join(f"- {plain(p)}" for p in exc.problems)
        st.error(f"Please fix the following:\n\n{lines}")
    elif isinstance(exc, Conflict):
        st.warning(f"Someone else got there first. {plain(exc)}", icon=":material/sync_problem:")
    else:
        st.error(plain(exc))


def flash(message: str, kind: str = "success") -> None:
    """A message to show on the next run (after ``st.rerun``)."""
    st.session_state.setdefault("_flash", []).append((kind, message))


def flash_error(exc: Exception) -> None:
    """Like show_error, but for the next run (after ``st.rerun``)."""
    if isinstance(exc, ValidationFailed):
        lines = "\n".join(f"- {plain(p)}" for p in exc.problems)
        flash(f"Please fix the following:\n\n{lines}", "error")
    else:
        flash(plain(exc), "error")


def show_flashes() -> None:
    for kind, message in st.session_state.pop("_flash", []):
        getattr(st, kind)(message)


@contextmanager
def action(success: str | None = None, *, rerun: bool = True) -> Iterator[None]:
    """Run a page action in one transaction; show AmplifyErrors, rerun on success."""
    try:
        yield
    except AmplifyError as exc:
        show_error(exc)
        return
    if success:
        flash(success)
    if rerun:
        st.rerun()


def run_action(fn: Callable[[], Any], success: str | None = None) -> bool:
    """Call ``fn`` (which opens its own transaction); show errors; True on success."""
    try:
        fn()
    except AmplifyError as exc:
        show_error(exc)
        return False
    if success:
        flash(success)
    return True


# --------------------------------------------------------------------------- badges


def badge(status: str) -> str:
    """Markdown for a coloured status badge."""
    colour = STATUS_COLOURS.get(status, "gray")
    return f":{colour}-badge[{status.replace('_', ' ')}]"


def _practice(platform: str) -> bool:
    try:
        return registry.info(platform).practice
    except ValueError:  # not a platform offered (an old row, a test's connector)
        return False


def platform_label(platform: str) -> str:
    """The platform's name as its connector module gives it (the raw key if unknown)."""
    if _practice(platform):
        return PRACTICE_LABEL
    try:
        return registry.info(platform).label
    except ValueError:
        return platform


def platform_in_sentence(platform: str) -> str:
    """A platform's name inside a sentence (a practice network's full label is too long)."""
    return f"the {platform}" if _practice(platform) else platform_label(platform)


def account_label(platform: str, handle: str) -> str:
    if _practice(platform):
        return f"{handle} ({platform} — practice network)"
    return f"{platform_label(platform)}: {handle}"


# --------------------------------------------------------------------------- time


def workspace_tz() -> ZoneInfo:
    """The workspace zone: the admin's choice if set, else AMPLIFY_TIMEZONE."""
    from amplify import queries

    with state.db() as s:
        name = queries.workspace_timezone(s)
    try:
        return ZoneInfo(name) if name else get_settings().tz
    except Exception:  # a stored zone that no longer exists: fall back to settings
        return get_settings().tz


def fmt_time(value: datetime | None, tz: ZoneInfo | None = None) -> str:
    if value is None:
        return "—"
    tz = tz or workspace_tz()
    return value.astimezone(tz).strftime("%a %d %b %Y %H:%M %Z")


def datetime_input(
    label: str, key: str, *, default: datetime | None = None, tz: ZoneInfo | None = None
) -> datetime:
    """A date and a time picked in the workspace zone; returns an aware datetime."""
    tz = tz or workspace_tz()
    start = (default or (datetime.now(tz) + timedelta(hours=1))).astimezone(tz)
    # Seed the widgets through session state (not value=) so a kept value is never fought.
    st.session_state.setdefault(f"{key}_day", start.date())
    st.session_state.setdefault(f"{key}_time", start.time().replace(second=0, microsecond=0))
    cols = st.columns(2)
    day: date = cols[0].date_input(f"{label} — day", key=f"{key}_day")
    at: time = cols[1].time_input(
        f"{label} — time ({tz.key})", key=f"{key}_time", step=timedelta(minutes=5)
    )
    return datetime.combine(day, at).replace(tzinfo=tz)
