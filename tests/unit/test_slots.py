"""Posting slots, and the workspace settings (time zone) they are read in."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from amplify import slots, workspace
from amplify.errors import NotAllowed, ValidationFailed
from amplify.models import Account, AuditEvent, Delivery, Post, Setting, User

CHICAGO = ZoneInfo("America/Chicago")
# Saturday 1 March 2031, noon in Chicago (US daylight saving starts Sunday 9 March 2031).
SAT = datetime(2031, 3, 1, 12, 0, tzinfo=CHICAGO)


def _user(s, role: str, name: str) -> User:
    user = User(email=f"{name}@example.org", name=name, role=role, password_hash="x")
    s.add(user)
    s.flush()
    return user


@pytest.fixture
def admin(session):
    return _user(session, "admin", "ada")


@pytest.fixture
def chicago(session, admin):
    workspace.set_timezone(session, admin, "America/Chicago")
    return admin


def _account(s, handle: str, slot_list: list[str]) -> Account:
    account = Account(
        platform="sandbox", handle=handle, credentials_enc="x", posting_slots=slot_list
    )
    s.add(account)
    s.flush()
    return account


def _book(s, account: Account, at: datetime, status: str = "pending", key: str = "k") -> None:
    author = s.scalar(select(User))
    post = Post(author_id=author.id, body="story", state="approved", scheduled_for=at)
    s.add(post)
    s.flush()
    s.add(
        Delivery(
            post_id=post.id,
            account_id=account.id,
            status=status,
            next_attempt_at=at,
            idempotency_key=key,
        )
    )
    s.flush()


# --------------------------------------------------------------------------- slot strings


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mon 09:00", (0, time(9, 0))),
        ("  Wednesday 7:05 ", (2, time(7, 5))),
        ("SUN 23.59", (6, time(23, 59))),
        ("fri 12h30", (4, time(12, 30))),
    ],
)
def test_it_reads_slot_strings(text, expected):
    assert slots.parse_slot(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("monday", "write a day and a 24-hour time"),
        ("funday 09:00", "'funday' is not a day"),
        ("tue 24:00", "24:00 is not a time of day"),
        ("tue 9:60", "9:60 is not a time of day"),
    ],
)
def test_it_says_what_is_wrong_with_a_slot(text, expected):
    with pytest.raises(ValidationFailed) as exc:
        slots.parse_slot(text)
    assert expected in str(exc.value)


def test_it_normalises_and_orders_slots_and_reports_every_bad_one():
    assert slots.validate_slots(["Wed 12:30", "mon 9:00", "monday 09:00", ""]) == [
        "mon 09:00",
        "wed 12:30",
    ]
    with pytest.raises(ValidationFailed) as exc:
        slots.validate_slots(["x", "mon 9:00", "y 1:00"])
    assert len(exc.value.problems) == 2


def test_it_saves_slots_for_an_account_with_an_audit_event(session, admin):
    account = _account(session, "team", [])
    assert slots.set_slots(session, admin, account.id, ["thu 8:15", "tue 10:00"]) == [
        "tue 10:00",
        "thu 08:15",
    ]
    assert account.posting_slots == ["tue 10:00", "thu 08:15"]
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "account.slots_changed"))
    assert event.detail["after"] == ["tue 10:00", "thu 08:15"]


def test_it_refuses_a_lead_changing_team_slots(session):
    lead = _user(session, "lead", "lee")
    account = _account(session, "team", [])
    with pytest.raises(NotAllowed):
        slots.set_slots(session, lead, account.id, ["mon 09:00"])


# --------------------------------------------------------------------------- next open slot


def test_it_finds_the_next_slot_in_the_workspace_zone(session, chicago):
    account = _account(session, "team", ["mon 09:00", "wed 12:30"])
    found = slots.next_open_slot(session, [account.id], SAT)
    assert found == datetime(2031, 3, 3, 15, 0, tzinfo=UTC)  # 09:00 CST


def test_it_keeps_local_time_across_daylight_saving(session, chicago):
    account = _account(session, "team", ["mon 09:00"])
    _book(session, account, datetime(2031, 3, 3, 15, 0, tzinfo=UTC))
    found = slots.next_open_slot(session, [account.id], SAT)
    assert found == datetime(2031, 3, 10, 14, 0, tzinfo=UTC)  # 09:00 CDT
    assert found.astimezone(CHICAGO).hour == 9


def test_it_skips_slots_any_of_the_accounts_has_taken(session, chicago):
    one = _account(session, "one", ["mon 09:00"])
    two = _account(session, "two", ["mon 09:00", "tue 09:00"])
    _book(session, one, datetime(2031, 3, 3, 15, 0, tzinfo=UTC), status="published", key="a")
    _book(session, two, datetime(2031, 3, 4, 15, 0, tzinfo=UTC), status="claimed", key="b")
    found = slots.next_open_slot(session, [one.id, two.id], SAT)
    assert found == datetime(2031, 3, 10, 14, 0, tzinfo=UTC)


def test_it_reuses_a_slot_freed_by_a_cancelled_or_failed_send(session, chicago):
    account = _account(session, "team", ["mon 09:00"])
    _book(session, account, datetime(2031, 3, 3, 15, 0, tzinfo=UTC), status="cancelled", key="a")
    _book(session, account, datetime(2031, 3, 3, 15, 0, tzinfo=UTC), status="failed", key="b")
    assert slots.next_open_slot(session, [account.id], SAT) == datetime(
        2031, 3, 3, 15, 0, tzinfo=UTC
    )


def test_it_ignores_another_accounts_bookings(session, chicago):
    mine = _account(session, "mine", ["mon 09:00"])
    other = _account(session, "other", ["mon 09:00"])
    _book(session, other, datetime(2031, 3, 3, 15, 0, tzinfo=UTC))
    assert slots.next_open_slot(session, [mine.id], SAT) == datetime(2031, 3, 3, 15, 0, tzinfo=UTC)


def test_it_only_offers_slots_strictly_after_the_start(session, chicago):
    account = _account(session, "team", ["sat 12:00", "sat 12:01"])
    assert slots.next_open_slot(session, [account.id], SAT) == SAT + timedelta(minutes=1)


def test_it_returns_none_when_no_account_has_slots(session, chicago):
    account = _account(session, "team", [])
    assert slots.next_open_slot(session, [account.id], SAT) is None
    assert slots.next_open_slot(session, [], SAT) is None


def test_it_says_so_when_every_slot_is_taken(session, chicago):
    account = _account(session, "team", ["mon 09:00"])
    _book(session, account, datetime(2031, 3, 3, 15, 0, tzinfo=UTC))
    with pytest.raises(ValidationFailed, match="in the next 1 weeks is taken"):
        slots.next_open_slot(session, [account.id], SAT, horizon_days=7)


def test_it_refuses_a_start_without_a_zone(session, chicago):
    account = _account(session, "team", ["mon 09:00"])
    with pytest.raises(ValidationFailed, match="time zone"):
        slots.next_open_slot(session, [account.id], datetime(2031, 3, 1, 12, 0))


# --------------------------------------------------------------------------- workspace


def test_it_defaults_the_zone_to_the_configuration(session, monkeypatch):
    from amplify.config import reset_settings

    monkeypatch.setenv("AMPLIFY_TIMEZONE", "Europe/Berlin")
    reset_settings()
    assert workspace.get_timezone(session) == "Europe/Berlin"
    assert workspace.workspace_tz(session) == ZoneInfo("Europe/Berlin")


def test_it_saves_the_zone_with_an_audit_event(session, admin):
    workspace.set_timezone(session, admin, " Asia/Kolkata ")
    assert workspace.get_timezone(session) == "Asia/Kolkata"
    assert session.get(Setting, "timezone").value == {"value": "Asia/Kolkata"}
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "settings.changed"))
    assert event.detail["key"] == "timezone" and event.detail["after"] == "Asia/Kolkata"


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "../../etc/passwd", "america/chicago"])
def test_it_refuses_a_zone_that_is_not_iana(session, admin, zone):
    with pytest.raises(ValidationFailed, match="is not a time zone"):
        workspace.set_timezone(session, admin, zone)


def test_it_refuses_a_lead_changing_settings(session):
    lead = _user(session, "lead", "lee")
    with pytest.raises(NotAllowed, match="Only admins can change workspace settings"):
        workspace.set_timezone(session, lead, "Europe/Berlin")


def test_it_keeps_the_amplification_window(session, admin):
    assert workspace.get_amplify_window(session) == (15, 90)
    assert workspace.set_amplify_window(session, admin, 5, 30) == (5, 30)
    assert workspace.get_workspace(session).amplify_window_minutes == (5, 30)
    with pytest.raises(ValidationFailed, match="start before it ends"):
        workspace.set_amplify_window(session, admin, 30, 5)
