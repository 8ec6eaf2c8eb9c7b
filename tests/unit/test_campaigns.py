from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from amplify import campaigns, workflow
from amplify.errors import NotAllowed, NotFound, ValidationFailed
from amplify.models import AuditEvent, User


def _user(s, role: str, name: str) -> User:
    user = User(email=f"{name}@example.org", name=name, role=role, password_hash="x")
    s.add(user)
    s.flush()
    return user


@pytest.fixture
def admin(session):
    return _user(session, "admin", "ada")


@pytest.fixture
def lead(session):
    return _user(session, "lead", "lee")


def test_it_creates_a_campaign_with_a_slug_from_its_name(session, admin):
    c = campaigns.create_campaign(
        session,
        admin,
        name="  Médicaid   Wins 2026! ",
        hashtags="HealthIT, #Medicaid  #healthit",
        starts_on=date(2026, 3, 1),
        ends_on=date(2026, 3, 31),
    )
    assert c.name == "Médicaid Wins 2026!"
    assert c.utm_campaign == "medicaid-wins-2026"
    assert c.hashtags == "#HealthIT #Medicaid"
    assert c.utm_enabled and not c.archived
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "campaign.created"))
    assert (event.actor_id, event.subject_id) == (admin.id, c.id)


def test_it_slugs_a_chosen_utm_campaign(session, admin):
    c = campaigns.create_campaign(session, admin, name="Spring", utm_campaign="Spring Drive_26")
    assert c.utm_campaign == "spring-drive-26"


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"name": "   "}, "Give the campaign a name"),
        ({"name": "!!!"}, "needs letters or digits"),
        ({"hashtags": "#ok #not-ok"}, "#not-ok is not a hashtag"),
        (
            {"starts_on": date(2026, 4, 2), "ends_on": date(2026, 4, 1)},
            "ends (01 Apr 2026) before it starts (02 Apr 2026)",
        ),
        ({"starts_on": "2026-04-01"}, "Give starts on as a date"),
    ],
)
def test_it_says_what_to_fix_in_a_campaign(session, admin, kw, expected):
    args = {"name": "Spring drive"} | kw
    with pytest.raises(ValidationFailed) as exc:
        campaigns.create_campaign(session, admin, **args)
    assert expected in str(exc.value)


def test_it_refuses_a_second_campaign_with_the_same_name(session, admin):
    campaigns.create_campaign(session, admin, name="Spring drive")
    with pytest.raises(ValidationFailed, match="already a campaign called Spring drive"):
        campaigns.create_campaign(session, admin, name="SPRING DRIVE")


def test_it_refuses_a_lead_managing_campaigns(session, lead):
    with pytest.raises(NotAllowed, match="Only admins can manage campaigns"):
        campaigns.create_campaign(session, lead, name="Spring drive")


def test_it_updates_only_what_changed(session, admin):
    c = campaigns.create_campaign(session, admin, name="Spring drive")
    campaigns.update_campaign(
        session, admin, c.id, name="Spring drive", description="Clinics", ends_on=date(2026, 5, 1)
    )
    assert c.description == "Clinics"
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "campaign.updated"))
    assert event.detail == {"fields": ["description", "ends_on"]}


def test_it_checks_the_date_range_against_the_stored_dates(session, admin):
    c = campaigns.create_campaign(session, admin, name="Spring", starts_on=date(2026, 4, 10))
    with pytest.raises(ValidationFailed, match="before it starts"):
        campaigns.update_campaign(session, admin, c.id, ends_on=date(2026, 4, 1))


def test_it_keeps_the_name_free_for_the_campaign_itself(session, admin):
    c = campaigns.create_campaign(session, admin, name="Spring")
    campaigns.update_campaign(session, admin, c.id, name="spring")
    assert c.name == "spring"


def test_it_archives_and_restores(session, admin):
    spring = campaigns.create_campaign(session, admin, name="Spring")
    autumn = campaigns.create_campaign(session, admin, name="Autumn")
    campaigns.archive_campaign(session, admin, spring.id)
    assert [c.name for c in campaigns.list_campaigns(session)] == ["Autumn"]
    assert len(campaigns.list_campaigns(session, include_archived=True)) == 2
    campaigns.archive_campaign(session, admin, spring.id, archived=False)
    assert [c.id for c in campaigns.list_campaigns(session)] == [autumn.id, spring.id]


def test_it_lists_campaigns_running_on_a_day(session, admin):
    campaigns.create_campaign(session, admin, name="Always")
    campaigns.create_campaign(
        session, admin, name="March", starts_on=date(2026, 3, 1), ends_on=date(2026, 3, 31)
    )
    names = [c.name for c in campaigns.list_campaigns(session, active_on=date(2026, 4, 2))]
    assert names == ["Always"]
    names = [c.name for c in campaigns.list_campaigns(session, active_on=date(2026, 3, 31))]
    assert names == ["Always", "March"]


def test_it_keeps_archived_campaigns_off_new_stories(session, admin):
    c = campaigns.create_campaign(session, admin, name="Old drive")
    post = workflow.create_draft(session, admin, body="A story", campaign_id=c.id)
    campaigns.archive_campaign(session, admin, c.id)
    with pytest.raises(ValidationFailed, match="Old drive is archived"):
        workflow.create_draft(session, admin, body="Another", campaign_id=c.id)
    workflow.edit(session, admin, post.id, campaign_id=c.id, body="Still in it")
    assert post.campaign_id == c.id


def test_it_reports_a_missing_campaign(session, admin):
    with pytest.raises(NotFound, match="no campaign #77"):
        campaigns.update_campaign(session, admin, 77, name="x")
