"""Who may do what: one table of roles per action, plus ownership rules for stories.

Permissions answer "may this person do this kind of thing to this story?". Whether the
story is in a state where the thing makes sense is the workflow's question
(``IllegalTransition``), not this module's.
"""

from __future__ import annotations

import enum

from amplify.errors import NotAllowed
from amplify.models import Post, Role, User


class Action(enum.StrEnum):
    # Stories
    CREATE_DRAFT = "create_draft"
    EDIT_OWN_DRAFT = "edit_own_draft"
    EDIT_ANY = "edit_any"
    SUBMIT = "submit"
    WITHDRAW = "withdraw"
    APPROVE = "approve"
    REJECT = "reject"
    RESCHEDULE = "reschedule"
    CANCEL = "cancel"
    RETRY_DELIVERY = "retry_delivery"
    AMPLIFY = "amplify"  # turn on advocate amplification waves for a story
    # Accounts an advocate connects for themselves (their own, for amplification)
    CONNECT_OWN_ACCOUNT = "connect_own_account"
    # Workspace administration
    MANAGE_USERS = "manage_users"
    MANAGE_ACCOUNTS = "manage_accounts"
    MANAGE_CAMPAIGNS = "manage_campaigns"
    MANAGE_SETTINGS = "manage_settings"
    # Pages
    VIEW_REACH = "view_reach"
    VIEW_ACTIVITY = "view_activity"
    VIEW_SYSTEM = "view_system"


EVERYONE = frozenset({Role.VOLUNTEER, Role.LEAD, Role.ADMIN})
LEADS = frozenset({Role.LEAD, Role.ADMIN})
ADMINS = frozenset({Role.ADMIN})

#: Roles allowed each action (for any story, where the action concerns one).
ROLES: dict[Action, frozenset[Role]] = {
    Action.CREATE_DRAFT: EVERYONE,
    Action.EDIT_OWN_DRAFT: EVERYONE,
    Action.EDIT_ANY: LEADS,
    Action.SUBMIT: EVERYONE,
    Action.WITHDRAW: EVERYONE,
    Action.APPROVE: LEADS,
    Action.REJECT: LEADS,
    Action.RESCHEDULE: LEADS,
    Action.CANCEL: LEADS,
    Action.RETRY_DELIVERY: LEADS,
    Action.AMPLIFY: LEADS,
    Action.CONNECT_OWN_ACCOUNT: EVERYONE,
    Action.MANAGE_USERS: ADMINS,
    Action.MANAGE_ACCOUNTS: ADMINS,
    Action.MANAGE_CAMPAIGNS: ADMINS,
    Action.MANAGE_SETTINGS: ADMINS,
    Action.VIEW_REACH: EVERYONE,
    Action.VIEW_ACTIVITY: LEADS,
    Action.VIEW_SYSTEM: LEADS,
}

#: Actions a volunteer may take only on stories they wrote (leads and admins: on any).
OWN_POSTS_ONLY = frozenset({Action.EDIT_OWN_DRAFT, Action.SUBMIT, Action.WITHDRAW})

_REFUSALS: dict[Action, str] = {
    Action.CREATE_DRAFT: "Only team members can write stories.",
    Action.EDIT_OWN_DRAFT: "You can only edit stories you wrote.",
    Action.EDIT_ANY: "Only leads and admins can edit someone else's story.",
    Action.SUBMIT: "You can only submit stories you wrote.",
    Action.WITHDRAW: "You can only withdraw stories you wrote.",
    Action.APPROVE: "Only leads and admins can approve stories.",
    Action.REJECT: "Only leads and admins can send stories back.",
    Action.RESCHEDULE: "Only leads and admins can reschedule stories.",
    Action.CANCEL: "Only leads and admins can cancel stories.",
    Action.RETRY_DELIVERY: "Only leads and admins can retry a failed delivery.",
    Action.AMPLIFY: "Only leads and admins can turn on amplification.",
    Action.CONNECT_OWN_ACCOUNT: "Only team members can connect their own accounts.",
    Action.MANAGE_USERS: "Only admins can manage people.",
    Action.MANAGE_ACCOUNTS: "Only admins can manage the team's social accounts.",
    Action.MANAGE_CAMPAIGNS: "Only admins can manage campaigns.",
    Action.MANAGE_SETTINGS: "Only admins can change workspace settings.",
    Action.VIEW_REACH: "Only team members can see reach.",
    Action.VIEW_ACTIVITY: "Only leads and admins can see the activity log.",
    Action.VIEW_SYSTEM: "Only leads and admins can see the system status.",
}


def _is_own(actor: User, post: Post | None) -> bool:
    return post is None or post.author_id == actor.id


def refusal(actor: User | None, action: Action, post: Post | None = None) -> str | None:
    """Why ``actor`` may not do ``action`` (to ``post``), or None when they may."""
    if actor is None:
        return "Sign in first."
    if not actor.active:
        return "Your account is deactivated; ask an admin to reactivate it."
    try:
        role = Role(actor.role)
    except ValueError:
        return f"Your role {actor.role!r} is not known; ask an admin to set it."
    if role not in ROLES[action]:
        return _REFUSALS[action]
    if action in OWN_POSTS_ONLY and role not in LEADS and not _is_own(actor, post):
        return _REFUSALS[action]
    return None


def can(actor: User | None, action: Action, post: Post | None = None) -> bool:
    return refusal(actor, action, post) is None


def require(actor: User | None, action: Action, post: Post | None = None) -> None:
    """Raise NotAllowed with a message a person understands unless ``actor`` may act."""
    reason = refusal(actor, action, post)
    if reason is not None:
        raise NotAllowed(reason)


def is_lead(actor: User | None) -> bool:
    """Active lead or admin (what most review pages need to know)."""
    return actor is not None and actor.active and actor.role in LEADS
