"""The page list, grouped by job, with what each role sees in the menu.

Every page is always registered (so a URL to a page you may not use reaches the page's own
refusal instead of a blank "page not found"); pages your role may not use are hidden from
the menu. Each page checks the role again on every run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import streamlit as st

from amplify import permissions
from amplify.models import User
from amplify.permissions import Action

ROOT = Path(__file__).resolve().parent.parent.parent
PAGES_DIR = "amplify/ui/pages"


@dataclass(frozen=True)
class PageSpec:
    group: str
    file: str
    title: str
    icon: str
    action: Action
    url_path: str


PAGES: tuple[PageSpec, ...] = (
    PageSpec(
        "Stories", "share.py", "Share a story", ":material/edit_note:", Action.CREATE_DRAFT, "share"
    ),
    PageSpec(
        "Stories",
        "my_stories.py",
        "My stories",
        ":material/article:",
        Action.CREATE_DRAFT,
        "my-stories",
    ),
    PageSpec(
        "Stories",
        "amplify_page.py",
        "Amplify",
        ":material/campaign:",
        Action.CONNECT_OWN_ACCOUNT,
        "amplify",
    ),
    PageSpec("Review", "review.py", "Review", ":material/fact_check:", Action.APPROVE, "review"),
    PageSpec(
        "Review",
        "calendar.py",
        "Calendar",
        ":material/calendar_month:",
        Action.RESCHEDULE,
        "calendar",
    ),
    PageSpec("Review", "reach.py", "Reach", ":material/insights:", Action.VIEW_REACH, "reach"),
    PageSpec(
        "Team", "activity.py", "Activity", ":material/history:", Action.VIEW_ACTIVITY, "activity"
    ),
    PageSpec(
        "Team", "system.py", "System", ":material/monitor_heart:", Action.VIEW_SYSTEM, "system"
    ),
    PageSpec(
        "Admin", "accounts.py", "Accounts", ":material/link:", Action.MANAGE_ACCOUNTS, "accounts"
    ),
    PageSpec(
        "Admin", "team.py", "Team & settings", ":material/settings:", Action.MANAGE_USERS, "team"
    ),
)


def available(spec: PageSpec) -> bool:
    """Whether the page's file exists (Reach is written separately and may not have landed)."""
    return (ROOT / PAGES_DIR / spec.file).is_file()


WANTED_KEY = "_wanted_page"


def remember_wanted_page() -> None:
    """Before sign-in: note which page the URL asked for (e.g. /review), to open it after."""
    try:
        url = st.context.url or ""
    except Exception:  # no browser context (bare runs)
        url = ""
    path = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    if path and any(spec.url_path == path for spec in PAGES):
        st.session_state.setdefault(WANTED_KEY, path)


def open_wanted_page(groups: dict[str, list[st.Page]]) -> None:
    """After sign-in: go to the page the URL asked for (its own check then allows or refuses)."""
    wanted = st.session_state.pop(WANTED_KEY, None)
    if not wanted:
        return
    for pages in groups.values():
        for page in pages:
            if page.url_path == wanted:
                st.switch_page(page)


def pages_for(user: User) -> dict[str, list[st.Page]]:
    """st.navigation input: every page, hidden from the menu unless the role may use it."""
    groups: dict[str, list[st.Page]] = {}
    first = True
    for spec in PAGES:
        if not available(spec):
            continue
        allowed = permissions.can(user, spec.action)
        page = st.Page(
            f"{PAGES_DIR}/{spec.file}",
            title=spec.title,
            icon=spec.icon,
            url_path=spec.url_path,
            default=first,
            visibility="visible" if allowed else "hidden",
        )
        first = False
        groups.setdefault(spec.group, []).append(page)
    return groups
