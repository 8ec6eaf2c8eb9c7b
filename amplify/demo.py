"""A separate demo workspace so a newcomer sees every page full.

It lives in its own database file (default ``data/demo.db``) and refuses to write into a
database that already holds a real workspace. Every account is on the sandbox practice
network and every engagement number is simulated (and labelled so).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from amplify import checklist, crypto, snapshots
from amplify.config import get_settings
from amplify.db import session_scope
from amplify.errors import ConfigError
from amplify.migrate import upgrade
from amplify.models import (
    Account,
    AuditEvent,
    Campaign,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Post,
    PostState,
    Role,
    SandboxRecord,
    Setting,
    Spreader,
    User,
    utcnow,
)
from connectors.base import Metrics

DEMO_PASSWORD = "demo-password"  # a practice workspace: the sign-in page shows it too
DEMO_MARKER = "demo_workspace"


@dataclass(frozen=True)
class DemoPeople:
    emails: dict[str, str]  # role label -> email
    password: str = DEMO_PASSWORD


STORIES = [
    "Our rural clinic cut medication errors by 40% after moving to e-prescribing.",
    "Telehealth kept 1,200 patients connected to their care team during the winter storms.",
    "A regional HIE let the ER see a patient's allergies in seconds and avoid a reaction.",
    "Interoperable immunisation records saved parents hours of paperwork this school year.",
    "Nurses reclaimed 30 minutes per shift after duplicate documentation fields were removed.",
    "Remote monitoring caught early heart-failure warnings for 85 seniors living alone.",
    "Broadband grants brought patient portals to three counties that had no access before.",
    "Closed-loop referrals mean every behavioural-health referral is now tracked to a first visit.",
    "A community health worker app doubled follow-up rates after discharge.",
    "Price transparency tools helped families compare imaging costs and save an average of $400.",
]


def _is_real_workspace(s: Session) -> bool:
    marker = s.get(Setting, DEMO_MARKER)
    has_users = (s.scalar(select(func.count(User.id))) or 0) > 0
    return has_users and marker is None


def build_demo(url: str | None = None, *, seed: int = 7, days: int = 30) -> DemoPeople:
    """Create (or recreate the content of) the demo workspace at ``url``."""
    url = url or "sqlite:///" + str(get_settings().data_dir / "demo.db")
    upgrade(url)
    with session_scope(url) as s:
        if _is_real_workspace(s):
            raise ConfigError(
                "this database already holds a real workspace; the demo needs its own file "
                "(e.g. `amplify demo --path data/demo.db`)"
            )
        if s.get(Setting, DEMO_MARKER) is not None:
            return _people(s)
        s.add(Setting(key=DEMO_MARKER, value={"created_at": utcnow().isoformat()}))
        _populate(s, random.Random(seed), days)
        return _people(s)


def _people(s: Session) -> DemoPeople:
    rows = s.execute(select(User.role, User.email).order_by(User.id)).all()
    emails: dict[str, str] = {}
    for role, email in rows:
        emails.setdefault(role, email)
    return DemoPeople(emails)


def _populate(s: Session, rng: random.Random, days: int) -> None:
    from amplify.users import hash_password

    now = utcnow()
    setup = now - timedelta(days=days + 2)  # when the admin set the workspace up
    pw = hash_password(DEMO_PASSWORD)

    def user(login: str, name: str, role: Role) -> User:
        email = f"{login}@demo.example"
        return User(email=email, name=name, role=role, password_hash=pw, created_at=setup)

    admin = user("admin", "Ada Admin", Role.ADMIN)
    lead = user("lead", "Lee Lead", Role.LEAD)
    volunteers = [
        user(n.lower(), f"{n} Volunteer", Role.VOLUNTEER) for n in ("Val", "Vic", "Vera", "Van")
    ]
    s.add_all([admin, lead, *volunteers])
    s.flush()
    for n, person in enumerate([lead, *volunteers]):
        _audit(s, admin.id, "user.created", "user", person.id, setup + timedelta(minutes=5 + n))

    campaigns = [
        Campaign(
            name="Interoperability Now",
            utm_campaign="interop-now",
            hashtags="#Interop",
            description="Records that follow the patient, across every clinic and county.",
        ),
        Campaign(
            name="Telehealth for All",
            utm_campaign="telehealth-all",
            hashtags="#Telehealth",
            description="Keep virtual visits covered after the emergency rules end.",
        ),
        Campaign(
            name="Rural Broadband",
            utm_campaign="rural-broadband",
            hashtags="#Broadband",
            description="No patient portal without a connection: fund the last mile.",
        ),
    ]
    # A finished campaign, archived: the Campaigns page shows how that looks.
    done = Campaign(
        name="Flu Season 2025", utm_campaign="flu-2025", hashtags="#FluShot", archived=True
    )
    s.add_all([*campaigns, done])
    empty = crypto.encrypt_json({})
    org = [
        Account(
            platform="sandbox",
            handle=h,
            display_name="Sandbox (practice network)",
            credentials_enc=empty,
            followers_count=f,
            posting_slots=["mon 09:00", "wed 12:00", "fri 15:00"],
        )
        for h, f in (("chapter.sandbox", 4200), ("chapter-news.sandbox", 1800))
    ]
    # Everyone's own practice account, opted in (leads and admins amplify too).
    advocates = [
        Account(
            platform="sandbox",
            handle=f"{u.email.split('@')[0]}.sandbox",
            owner_id=u.id,
            amplify_opt_in=True,
            credentials_enc=empty,
            followers_count=rng.randint(80, 900),
        )
        for u in [*volunteers[:3], lead, admin]
    ]
    s.add_all(org + advocates)
    s.flush()
    for n, acct in enumerate(org + advocates):
        _audit(s, admin.id, "account.added", "account", acct.id, setup + timedelta(minutes=20 + n))

    authors = [*volunteers, lead, admin]  # every role has stories of its own
    reviewers = [lead, admin]
    failed_one = False
    changed: dict[Post, datetime] = {}
    states = [PostState.PUBLISHED] * 24 + [PostState.APPROVED] * 4 + [PostState.SUBMITTED] * 3
    states += [PostState.DRAFT] * 3 + [PostState.CANCELLED] * 2
    for i, state in enumerate(states):
        author = authors[i % len(authors)]
        reviewer = reviewers[i % len(reviewers)]
        post = Post(
            author_id=author.id,
            campaign_id=campaigns[(i + i // len(authors)) % 3].id,  # not tied to the author
            body=STORIES[i % len(STORIES)],
            link=f"https://advocacy.example.org/stories/{i + 1}",
            target_platforms=["sandbox"],
            state=state,
            amplify=True,
        )
        s.add(post)
        s.flush()
        when = _story_time(rng, now, days, state)
        times = _history(rng, now, when, state)
        post.created_at = times["created"]
        changed[post] = _last_change(state, times, when, bool(i % 2))
        _audit(s, author.id, "post.created", "post", post.id, times["created"])
        if state == PostState.DRAFT:
            if i % 2:  # sent back once, with the lead's note
                post.review_note = "Lovely story! Could you add the county name?"
                _audit(s, author.id, "post.submitted", "post", post.id, times["submitted"])
                _audit(s, reviewer.id, "post.rejected", "post", post.id, times["reviewed"])
            continue
        post.submitted_at = times["submitted"]
        _audit(s, author.id, "post.submitted", "post", post.id, times["submitted"])
        if state == PostState.SUBMITTED:
            continue
        post.scheduled_for = when
        _audit(s, reviewer.id, "post.approved", "post", post.id, times["reviewed"])
        for n, account in enumerate(org[: 1 + i % 2]):
            d = _delivery(post, account, when, state)
            if state == PostState.APPROVED and n == 1 and not failed_one:
                _fail(d, now)  # one send the System page lists, with its reason and Retry
                failed_one = True
            s.add(d)
            s.flush()
            if d.status == DeliveryStatus.PUBLISHED:
                # Advocates reshare the organisation's main account only (one repost each).
                amplifiers = advocates if account is org[0] else []
                _publish_history(s, rng, d, account, now, amplifiers, post)
        if state == PostState.PUBLISHED:
            post.published_at = when
            _audit(s, None, "post.published", "post", post.id, when)
        if state == PostState.CANCELLED:
            _audit(s, reviewer.id, "post.cancelled", "post", post.id, times["cancelled"])
    s.flush()
    for post, at in changed.items():  # set last, so the flushes above do not stamp "now"
        post.updated_at = at
    # The demo is set up already: admins land on Review, not on the first-hour checklist.
    s.add(Setting(key=checklist.DISMISSED_KEY, value={"value": True}))


def _last_change(state: str, times: dict[str, datetime], when: datetime, noted: bool) -> datetime:
    """When a story last changed, as My stories shows it."""
    if state == PostState.PUBLISHED:
        return when
    if state == PostState.CANCELLED:
        return times["cancelled"]
    if state == PostState.APPROVED or (state == PostState.DRAFT and noted):
        return times["reviewed"]
    if state == PostState.SUBMITTED:
        return times["submitted"]
    return times["created"]


def _story_time(rng: random.Random, now: datetime, days: int, state: str) -> datetime:
    """When a story goes (or went) out: the past for published ones, the coming week for
    approved ones; on a five-minute mark between 08:00 and 18:55 in the workspace zone."""
    tz = get_settings().tz
    while True:
        if state == PostState.APPROVED:
            day = (now + timedelta(days=rng.randint(1, 6))).astimezone(tz)
        else:
            day = (now - timedelta(days=rng.randint(1, days))).astimezone(tz)
        local = day.replace(hour=rng.randint(8, 18), minute=5 * rng.randint(0, 11))
        when = local.replace(second=0, microsecond=0).astimezone(UTC)
        if (when > now) == (state == PostState.APPROVED):
            return when


def _history(rng: random.Random, now: datetime, when: datetime, state: str) -> dict[str, datetime]:
    """Plausible moments of a story's life, in order and never in the future: written,
    submitted a little later, reviewed within the day, cancelled some time after."""
    if state in (PostState.PUBLISHED, PostState.CANCELLED):
        created = when - timedelta(days=rng.uniform(1, 3))
    else:  # still on its way: written in the last few days
        created = now - timedelta(days=rng.uniform(0.5, 4))
    submitted = created + timedelta(minutes=rng.randint(10, 240))
    reviewed = min(submitted + timedelta(minutes=rng.randint(30, 600)), now)
    cancelled = min(reviewed + timedelta(hours=rng.uniform(1, 8)), now)  # before it was due
    return {
        "created": created,
        "submitted": submitted,
        "reviewed": reviewed,
        "cancelled": cancelled,
    }


def _fail(d: Delivery, now: datetime) -> None:
    d.status = DeliveryStatus.FAILED
    d.attempts = 8
    d.next_attempt_at = now - timedelta(hours=2)
    d.last_error = "The practice network kept timing out (8 tries); press Retry to send it again."


def _audit(
    s: Session,
    actor_id: int | None,
    action: str,
    subject_type: str,
    subject_id: int,
    at: datetime,
) -> None:
    s.add(
        AuditEvent(
            actor_id=actor_id,
            at=at,
            action=action,
            subject_type=subject_type,
            subject_id=subject_id,
            detail={"demo": True},
        )
    )


def _delivery(post: Post, account: Account, when: datetime, state: str) -> Delivery:
    status = {
        PostState.PUBLISHED: DeliveryStatus.PUBLISHED,
        PostState.APPROVED: DeliveryStatus.PENDING,
        PostState.CANCELLED: DeliveryStatus.CANCELLED,
    }[PostState(state)]
    return Delivery(
        post_id=post.id,
        account_id=account.id,
        kind=DeliveryKind.POST,
        status=status,
        next_attempt_at=when,
        idempotency_key=uuid.uuid4().hex,
        published_at=when if status == DeliveryStatus.PUBLISHED else None,
        attempts=1 if status == DeliveryStatus.PUBLISHED else 0,
    )


def _publish_history(
    s: Session,
    rng: random.Random,
    d: Delivery,
    account: Account,
    now: datetime,
    advocates: list[Account],
    post: Post,
) -> None:
    record = SandboxRecord(
        handle=account.handle,
        idempotency_key=d.idempotency_key,
        text=post.body,
        created_at=d.published_at,
    )
    s.add(record)
    s.flush()
    d.remote_id = str(record.id)
    d.remote_url = f"sandbox://{account.handle}/{record.id}"
    assert d.published_at is not None
    _snapshots(s, d, now, scale=rng.uniform(0.5, 3.0))
    for adv in rng.sample(advocates, k=rng.randint(0, len(advocates))):
        at = d.published_at + timedelta(minutes=rng.randint(15, 90))
        s.add(
            Delivery(
                post_id=post.id,
                account_id=adv.id,
                kind=DeliveryKind.REPOST,
                source_id=d.id,
                status=DeliveryStatus.PUBLISHED,
                next_attempt_at=at,
                published_at=at,
                attempts=1,
                idempotency_key=uuid.uuid4().hex,
                remote_id=f"r{record.id}-{adv.id}",
            )
        )
        s.add(
            Spreader(
                delivery_id=d.id,
                platform="sandbox",
                remote_user_id=adv.handle,
                handle=adv.handle,
                followers_count=adv.followers_count,
                kind="repost",
                seen_at=at,
            )
        )
    for n in range(rng.randint(0, 5)):
        s.add(
            Spreader(
                delivery_id=d.id,
                platform="sandbox",
                remote_user_id=f"fan{d.id}-{n}",
                handle=f"fan{d.id}-{n}.sandbox",
                followers_count=rng.randint(10, 5000),
                kind=rng.choice(["repost", "repost", "quote"]),
            )
        )


def _snapshots(s: Session, d: Delivery, now: datetime, scale: float) -> None:
    """Readings on the real decay schedule, grown along a saturating curve (simulated)."""
    assert d.published_at is not None
    for minutes in get_settings().metrics_schedule_minutes:
        taken = d.published_at + timedelta(minutes=minutes)
        if taken > now:
            break
        grow = 1 - 0.85 ** (minutes / 60 + 1)
        reading = Metrics(
            remote_id=d.remote_id or "",
            likes=int(60 * scale * grow),
            reposts=int(14 * scale * grow),
            replies=int(6 * scale * grow),
            quotes=int(2 * scale * grow),
            impressions=int(1500 * scale * grow),
            bookmarks=int(3 * scale * grow),
            simulated=True,
        )
        snapshots.append(s, d, reading, taken)
        d.metrics_step += 1
