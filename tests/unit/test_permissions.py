from __future__ import annotations

import pytest

from amplify.errors import NotAllowed
from amplify.models import Post, User
from amplify.permissions import Action, can, is_lead, require

ROLES = ("volunteer", "lead", "admin")

# The spec, written out by hand: which roles may take each action (on their own story
# where the action concerns one).
ALLOWED: dict[Action, set[str]] = {
    Action.CREATE_DRAFT: {"volunteer", "lead", "admin"},
    Action.EDIT_OWN_DRAFT: {"volunteer", "lead", "admin"},
    Action.EDIT_ANY: {"lead", "admin"},
    Action.SUBMIT: {"volunteer", "lead", "admin"},
    Action.WITHDRAW: {"volunteer", "lead", "admin"},
    Action.APPROVE: {"lead", "admin"},
    Action.REJECT: {"lead", "admin"},
    Action.RESCHEDULE: {"lead", "admin"},
    Action.CANCEL: {"lead", "admin"},
    Action.RETRY_DELIVERY: {"lead", "admin"},
    Action.AMPLIFY: {"lead", "admin"},
    Action.CONNECT_OWN_ACCOUNT: {"volunteer", "lead", "admin"},
    Action.MANAGE_USERS: {"admin"},
    Action.MANAGE_ACCOUNTS: {"admin"},
    Action.MANAGE_CAMPAIGNS: {"admin"},
    Action.MANAGE_SETTINGS: {"admin"},
    Action.VIEW_REACH: {"volunteer", "lead", "admin"},
    Action.VIEW_ACTIVITY: {"lead", "admin"},
    Action.VIEW_SYSTEM: {"lead", "admin"},
}


def person(role: str, *, id: int = 1, active: bool = True) -> User:
    return User(id=id, email=f"{role}@example.org", name=role, role=role, active=active)


def story(author_id: int) -> Post:
    return Post(id=99, author_id=author_id, body="A win for patients")


def test_it_has_an_expectation_for_every_action():
    assert set(ALLOWED) == set(Action)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(Action))
def test_it_allows_or_refuses_each_role_each_action(role, action):
    actor = person(role, id=7)
    own = story(author_id=7)
    expected = role in ALLOWED[action]
    assert can(actor, action, own) is expected
    assert can(actor, action) is expected
    if expected:
        require(actor, action, own)
    else:
        with pytest.raises(NotAllowed) as exc:
            require(actor, action, own)
        assert str(exc.value).endswith(".")
        assert "Only" in str(exc.value) or "only" in str(exc.value)


@pytest.mark.parametrize("action", [Action.EDIT_OWN_DRAFT, Action.SUBMIT, Action.WITHDRAW])
def test_it_refuses_a_volunteer_acting_on_someone_elses_story(action):
    volunteer = person("volunteer", id=7)
    with pytest.raises(NotAllowed, match="stories you wrote"):
        require(volunteer, action, story(author_id=8))


@pytest.mark.parametrize("role", ["lead", "admin"])
@pytest.mark.parametrize("action", [Action.EDIT_OWN_DRAFT, Action.SUBMIT, Action.WITHDRAW])
def test_it_lets_leads_and_admins_act_on_anyones_story(role, action):
    assert can(person(role, id=7), action, story(author_id=8))


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(Action))
def test_it_lets_an_inactive_person_do_nothing(role, action):
    actor = person(role, id=7, active=False)
    assert not can(actor, action, story(author_id=7))
    with pytest.raises(NotAllowed, match="deactivated"):
        require(actor, action)


def test_it_refuses_someone_not_signed_in():
    with pytest.raises(NotAllowed, match="Sign in"):
        require(None, Action.VIEW_REACH)


def test_it_explains_approval_refusals_in_plain_words():
    with pytest.raises(NotAllowed) as exc:
        require(person("volunteer"), Action.APPROVE)
    assert str(exc.value) == "Only leads and admins can approve stories."


def test_it_refuses_an_unknown_role():
    assert not can(person("superuser"), Action.VIEW_REACH)


def test_it_tells_leads_from_volunteers():
    assert is_lead(person("lead"))
    assert is_lead(person("admin"))
    assert not is_lead(person("volunteer"))
    assert not is_lead(person("lead", active=False))
    assert not is_lead(None)
