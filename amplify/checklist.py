"""The first-hour checklist an admin sees after creating the workspace.

Each step ticks itself off from what is in the database (nothing to mark by hand), so it
stays right whoever did the step and however (page, CLI, import). The admin may hide the
list at any time; hiding is a workspace setting, audited like any other.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from amplify import workspace
from amplify.models import Account, Delivery, DeliveryKind, User

DISMISSED_KEY = "checklist_dismissed"


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    hint: str
    page: str  # the url path of the page where the step is done
    done: bool


def _has_team_account(s: Session) -> bool:
    return bool(
        s.scalar(select(exists().where(Account.owner_id.is_(None), Account.status != "disabled")))
    )


def _has_people(s: Session) -> bool:
    return (s.scalar(select(func.count(User.id)).where(User.active.is_(True))) or 0) > 1


def _has_slots(s: Session) -> bool:
    rows = s.scalars(
        select(Account.posting_slots).where(
            Account.owner_id.is_(None), Account.status != "disabled"
        )
    ).all()
    return any(rows)


def _has_tried_a_story(s: Session) -> bool:
    """A story has been approved for publishing (to the sandbox or a real account)."""
    return bool(s.scalar(select(exists().where(Delivery.kind == DeliveryKind.POST))))


def steps(s: Session) -> list[Step]:
    return [
        Step(
            "account",
            "Connect the sandbox or a social account",
            "Start with the sandbox (a practice network: nothing is really posted), or "
            "connect the team's X, Bluesky or Mastodon account.",
            "accounts",
            _has_team_account(s),
        ),
        Step(
            "people",
            "Add people",
            "Add your volunteers and leads, each with their role.",
            "team",
            _has_people(s),
        ),
        Step(
            "slots",
            "Set posting slots",
            "Pick the days and times the team's accounts usually post; "
            "approved stories go to the next open slot.",
            "team",
            _has_slots(s),
        ),
        Step(
            "story",
            "Try a practice story",
            "Write a story, then approve it to the sandbox and watch it publish.",
            "share",
            _has_tried_a_story(s),
        ),
    ]


def all_done(s: Session) -> bool:
    return all(step.done for step in steps(s))


def is_dismissed(s: Session) -> bool:
    return bool(workspace.get_setting(s, DISMISSED_KEY, False))


def dismiss(s: Session, actor: User) -> None:
    """Hide the checklist for good (admins only: it is a workspace setting)."""
    workspace.set_setting(s, actor, DISMISSED_KEY, True)
