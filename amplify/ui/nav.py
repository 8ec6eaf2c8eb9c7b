"""The page list, grouped by job, with what each role sees in the menu.

Every page is always registered (so a URL to a page you may not use reaches the page's own
refusal instead of a blank "page not found"); pages your role may not use are hidden from
the menu. Each page checks the role again on every run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
