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


# Headings group pages by job; each heading holds only pages of that job, so no role sees a
# heading over a lone page that does not belong under it (a volunteer's Reach sits under
# "Results", not under "Review").
PAGES: tuple[PageSpec, ...] = (
    PageSpec(
        "Get started",
        "welcome.py",
        "Get started",
        ":material/checklist:",
        Action.MANAGE_SETTINGS,
        "get-started",
    ),
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
    PageSpec("Results", "reach.py", "Reach", ":material/insights:", Action.VIEW_REACH, "reach"),
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
        "Admin",
        "campaigns.py",
        "Campaigns",
        ":material/flag:",
        Action.MANAGE_CAMPAIGNS,
        "campaigns",
    ),
    PageSpec(
        "Admin", "team.py", "Team & settings", ":material/settings:", Action.MANAGE_USERS, "team"
    ),
    # Everyone's own page (every role may create drafts: "anyone signed in").
    PageSpec(
        "You", "profile.py", "My account", ":material/account_circle:", Action.CREATE_DRAFT, "me"
    ),
)

# Where each role lands: leads and admins on Review (their daily job), volunteers on Share.
LANDING_LEAD = "review"
LANDING_VOLUNTEER = "share"
CHECKLIST_PAGE = "get-started"


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


def landing_for(user: User, *, checklist: bool = False) -> str:
    """The url path of the page a role opens on: the first-hour checklist for an admin who
    has not hidden it, Review for leads and admins, Share for everyone else."""
    if checklist and permissions.can(user, Action.MANAGE_SETTINGS):
        return CHECKLIST_PAGE
    if permissions.can(user, Action.APPROVE):
        return LANDING_LEAD
    return LANDING_VOLUNTEER


def shown(user: User, spec: PageSpec, *, checklist: bool = False) -> bool:
    """Whether the page is in this person's menu (the checklist only while it is wanted)."""
    if spec.url_path == CHECKLIST_PAGE and not checklist:
        return False
    return permissions.can(user, spec.action)


def menu_for(user: User, *, checklist: bool = False) -> dict[str, list[PageSpec]]:
    """The menu this person sees: heading -> pages, in order (pure; what pages_for draws)."""
    menu: dict[str, list[PageSpec]] = {}
    for spec in PAGES:
        if shown(user, spec, checklist=checklist):
            menu.setdefault(spec.group, []).append(spec)
    return menu


@dataclass(frozen=True)
class Checklist:
    """Where the first-hour checklist stands for this person."""

    shown: bool = False  # in the menu (an admin who has not hidden it)
    landing: bool = False  # opened first (and steps are still to do)


def pages_for(user: User, *, checklist: Checklist | None = None) -> dict[str, list[st.Page]]:
    """st.navigation input: every page, hidden from the menu unless the role may use it."""
    state = checklist or Checklist()
    landing = landing_for(user, checklist=state.landing)
    groups: dict[str, list[st.Page]] = {}
    for spec in PAGES:
        if not available(spec):
            continue
        page = st.Page(
            f"{PAGES_DIR}/{spec.file}",
            title=spec.title,
            icon=spec.icon,
            url_path=spec.url_path,
            default=spec.url_path == landing,
            visibility="visible" if shown(user, spec, checklist=state.shown) else "hidden",
        )
        groups.setdefault(spec.group, []).append(page)
    return groups


def checklist_for(user: User) -> Checklist:
    """An admin sees the first-hour checklist in the menu until they hide it, and opens on
    it while steps remain (a workspace set up before the checklist existed does not)."""
    if not permissions.can(user, Action.MANAGE_SETTINGS):
        return Checklist()
    from amplify import checklist
    from amplify.ui import state

    with state.db() as s:
        if checklist.is_dismissed(s):
            return Checklist()
        return Checklist(shown=True, landing=not checklist.all_done(s))


def page_file(url_path: str) -> str:
    """The st.page_link target of a page, by its url path."""
    spec = next(p for p in PAGES if p.url_path == url_path)
    return f"{PAGES_DIR}/{spec.file}"
