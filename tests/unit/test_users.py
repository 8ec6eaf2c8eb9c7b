from __future__ import annotations

import pytest
from sqlalchemy import select

from amplify import users
from amplify.errors import NotAllowed, ValidationFailed
from amplify.models import AuditEvent, User

PW = "correct horse battery"


@pytest.fixture
def admin(session):
    user = users.create_user(
        session, None, email="Admin@Example.org", name="Ada", role="admin", password=PW
    )
    session.commit()
    return user


def test_it_hashes_with_argon2_and_verifies():
    hashed = users.hash_password(PW)
    assert hashed.startswith("$argon2id$")
    assert PW not in hashed
    assert users.verify_password(hashed, PW)
    assert not users.verify_password(hashed, PW + "x")
    assert not users.verify_password("not a hash", PW)


def test_it_lets_the_first_person_in_as_admin_without_an_actor(session):
    assert not users.has_users(session)
    user = users.create_user(
        session, None, email="first@example.org", name="First", role="admin", password=PW
    )
    assert user.role == "admin"
    assert users.has_users(session)
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "user.created"))
    assert event is not None and event.subject_id == user.id


def test_it_refuses_a_first_person_who_is_not_an_admin(session):
    with pytest.raises(ValidationFailed, match="must be an admin"):
        users.create_user(session, None, email="v@example.org", name="V", role="lead", password=PW)


def test_it_refuses_anonymous_sign_up_once_someone_exists(session, admin):
    with pytest.raises(NotAllowed, match="Only admins"):
        users.create_user(session, None, email="x@example.org", name="X", role="admin", password=PW)


def test_it_refuses_a_lead_adding_people(session, admin):
    lead = users.create_user(
        session, admin, email="lead@example.org", name="Lee", role="lead", password=PW
    )
    with pytest.raises(NotAllowed, match="Only admins can manage people"):
        users.create_user(
            session, lead, email="v@example.org", name="V", role="volunteer", password=PW
        )


def test_it_normalises_email_to_lower_case(session, admin):
    assert admin.email == "admin@example.org"
    assert users.get_by_email(session, "  ADMIN@example.ORG ") is admin


def test_it_refuses_a_duplicate_email_with_a_plain_message(session, admin):
    with pytest.raises(ValidationFailed) as exc:
        users.create_user(
            session, admin, email="ADMIN@example.org", name="B", role="lead", password=PW
        )
    assert "already signs in as admin@example.org" in str(exc.value)


@pytest.mark.parametrize(
    ("email", "name", "role", "password", "expected"),
    [
        ("not-an-email", "N", "lead", PW, "email address does not look right"),
        ("n@example.org", "  ", "lead", PW, "Give the person's name"),
        ("n@example.org", "N", "boss", PW, "Unknown role 'boss'"),
        ("n@example.org", "N", "lead", "short", "at least 10 characters"),
    ],
)
def test_it_says_what_to_fix_in_a_new_person(session, admin, email, name, role, password, expected):
    with pytest.raises(ValidationFailed) as exc:
        users.create_user(session, admin, email=email, name=name, role=role, password=password)
    assert expected in str(exc.value)


def test_it_lists_every_problem_at_once(session, admin):
    with pytest.raises(ValidationFailed) as exc:
        users.create_user(session, admin, email="bad", name="", role="x", password="short")
    assert len(exc.value.problems) == 4


def test_it_authenticates_with_the_right_password_only(session, admin):
    assert users.authenticate(session, "admin@example.org", PW) is admin
    assert users.authenticate(session, "ADMIN@example.org", PW) is admin
    assert users.authenticate(session, "admin@example.org", "wrong password!") is None
    assert users.authenticate(session, "nobody@example.org", PW) is None
    assert users.authenticate(session, "not an email", PW) is None


def test_it_refuses_to_authenticate_a_deactivated_person(session, admin):
    vol = users.create_user(
        session, admin, email="v@example.org", name="Val", role="volunteer", password=PW
    )
    users.set_active(session, admin, vol.id, False)
    assert users.authenticate(session, "v@example.org", PW) is None


def test_it_never_stores_the_password_in_clear(session, admin):
    stored = session.scalar(select(User.password_hash).where(User.id == admin.id))
    assert stored and PW not in stored


def test_it_changes_roles_and_records_who_did_it(session, admin):
    vol = users.create_user(
        session, admin, email="v@example.org", name="Val", role="volunteer", password=PW
    )
    users.set_role(session, admin, vol.id, "lead")
    assert vol.role == "lead"
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "user.role_changed"))
    assert event.actor_id == admin.id
    assert event.detail == {"before": "volunteer", "after": "lead"}


def test_it_refuses_demoting_the_last_active_admin(session, admin):
    with pytest.raises(ValidationFailed, match="last active admin"):
        users.set_role(session, admin, admin.id, "lead")
    assert admin.role == "admin"


def test_it_refuses_deactivating_the_last_active_admin(session, admin):
    with pytest.raises(ValidationFailed, match="make someone else an admin first"):
        users.set_active(session, admin, admin.id, False)


def test_it_lets_an_admin_step_down_once_another_admin_exists(session, admin):
    other = users.create_user(
        session, admin, email="b@example.org", name="Bo", role="admin", password=PW
    )
    users.set_role(session, admin, admin.id, "lead")
    assert admin.role == "lead"
    with pytest.raises(ValidationFailed, match="last active admin"):
        users.set_active(session, other, other.id, False)


def test_it_does_not_count_an_inactive_admin_as_a_spare(session, admin):
    other = users.create_user(
        session, admin, email="b@example.org", name="Bo", role="admin", password=PW
    )
    users.set_active(session, admin, other.id, False)
    with pytest.raises(ValidationFailed, match="last active admin"):
        users.set_role(session, admin, admin.id, "volunteer")


def test_it_lists_people_by_name(session, admin):
    users.create_user(session, admin, email="z@example.org", name="Zed", role="lead", password=PW)
    users.create_user(session, admin, email="b@example.org", name="Bea", role="lead", password=PW)
    assert [u.name for u in users.list_users(session)] == ["Ada", "Bea", "Zed"]


def test_it_lets_a_person_change_their_own_password_with_the_current_one(session, admin):
    with pytest.raises(ValidationFailed, match="current password"):
        users.set_password(
            session, admin, admin.id, new_password="another long one", current_password="nope"
        )
    users.set_password(
        session, admin, admin.id, new_password="another long one", current_password=PW
    )
    assert users.authenticate(session, admin.email, "another long one") is admin
    assert users.authenticate(session, admin.email, PW) is None


def test_it_refuses_a_volunteer_resetting_someone_elses_password(session, admin):
    vol = users.create_user(
        session, admin, email="v@example.org", name="Val", role="volunteer", password=PW
    )
    with pytest.raises(NotAllowed):
        users.set_password(session, vol, admin.id, new_password="taken over now")


def test_it_guards_the_last_admin_on_every_database(db_url):
    from amplify.db import session_scope

    with session_scope(db_url) as s:
        ada = users.create_user(
            s, None, email="ada@example.org", name="Ada", role="admin", password=PW
        )
        bo = users.create_user(s, ada, email="bo@example.org", name="Bo", role="admin", password=PW)
        ada_id, bo_id = ada.id, bo.id
    with session_scope(db_url) as s:
        users.set_role(s, s.get(User, ada_id), bo_id, "lead")
    with pytest.raises(ValidationFailed, match="last active admin"), session_scope(db_url) as s:
        users.set_active(s, s.get(User, ada_id), ada_id, False)
    with session_scope(db_url) as s:
        assert [u.email for u in users.list_users(s) if u.role == "admin" and u.active] == [
            "ada@example.org"
        ]


@pytest.mark.parametrize(
    ("weak", "why"),
    [
        ("aaaaaaaaaa", 'Repeats like "aaa" are easy to guess.'),
        ("password12", "This is a very common password."),
        (" " * 10, 'Repeats like "aaa" are easy to guess.'),
        ("qwertyuiop", "This is a top-100 common password."),
        ("1234567890", "This is a top-100 common password."),
    ],
)
def test_it_refuses_weak_and_common_passwords_saying_why(session, weak, why):
    with pytest.raises(ValidationFailed, match="too easy to guess") as caught:
        users.create_user(
            session, None, email="ada@example.org", name="Ada", role="admin", password=weak
        )
    assert why in str(caught.value)  # zxcvbn's own reason is passed on
    assert not users.has_users(session)


def test_it_accepts_a_password_of_a_few_unrelated_words():
    assert users.password_problems("purple tractor moonlight") == []


def test_it_refuses_a_password_built_from_the_persons_own_email(session):
    with pytest.raises(ValidationFailed, match="too easy to guess"):
        users.create_user(
            session,
            None,
            email="florence.nightingale@example.org",
            name="Florence Nightingale",
            role="admin",
            password="florence.nightingale@example.org",
        )


def test_it_refuses_a_weak_password_when_changing_or_resetting_one(session, admin):
    with pytest.raises(ValidationFailed, match="too easy to guess"):
        users.set_password(session, admin, admin.id, new_password="password12", current_password=PW)
    lead = users.create_user(
        session, admin, email="lead@example.org", name="Lee", role="lead", password=PW
    )
    with pytest.raises(ValidationFailed, match="too easy to guess"):
        users.set_password(session, admin, lead.id, new_password=" " * 10)
    assert users.authenticate(session, lead.email, PW) is lead


def test_only_one_of_simultaneous_first_admin_claims_wins_on_every_database(db_url):
    """Several browsers create the first admin at the same moment, five times over: each time
    exactly one admin exists and every other claim gets a clear refusal."""
    import threading

    from sqlalchemy import delete

    from amplify.db import session_scope
    from amplify.errors import AmplifyError
    from amplify.models import Setting

    claimants = 4
    for attempt in range(5):
        with session_scope(db_url) as s:
            s.execute(delete(AuditEvent))
            s.execute(delete(User))
            s.execute(delete(Setting).where(Setting.key == users.FIRST_ADMIN_KEY))
        barrier = threading.Barrier(claimants)
        outcomes: list[str] = []

        def claim(i: int, barrier: threading.Barrier, outcomes: list[str]) -> None:
            barrier.wait()
            try:
                with session_scope(db_url) as s:
                    users.create_user(
                        s, None, email=f"a{i}@example.org", name=f"A{i}", role="admin", password=PW
                    )
                outcomes.append("won")
            except AmplifyError as exc:
                outcomes.append(str(exc))

        threads = [
            threading.Thread(target=claim, args=(i, barrier, outcomes)) for i in range(claimants)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        with session_scope(db_url) as s:
            admins = s.scalars(select(User.email)).all()
        assert len(admins) == 1, f"try {attempt + 1}: {admins}"
        assert outcomes.count("won") == 1, outcomes
        for refusal in [o for o in outcomes if o != "won"]:
            assert "first admin" in refusal and "add you" in refusal, refusal
