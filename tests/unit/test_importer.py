from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from amplify import importer, users
from amplify.config import get_settings
from amplify.crypto import encrypt_json
from amplify.db import session_scope
from amplify.errors import NotAllowed, ValidationFailed
from amplify.importer import ImportFailed, Problem, import_csv, parse_csv, parse_time
from amplify.models import Account, AuditEvent, Campaign, Delivery, Post, PostState, User

HEADER = "body,accounts,scheduled_for,campaign,link,image,alt_text\n"
NEXT = datetime.now(UTC).year + 1  # times in the CSVs must lie ahead
PASSWORD = "correct horse battery"


@pytest.fixture
def team(session: Session) -> dict[str, User]:
    admin = users.create_user(
        session, None, email="admin@example.org", name="Ada", role="admin", password=PASSWORD
    )
    lead = users.create_user(
        session, admin, email="lead@example.org", name="Lee", role="lead", password=PASSWORD
    )
    vol = users.create_user(
        session, admin, email="vol@example.org", name="Val", role="volunteer", password=PASSWORD
    )
    for handle in ("team.sandbox", "second.sandbox"):
        session.add(Account(platform="sandbox", handle=handle, credentials_enc=encrypt_json({})))
    session.add(Campaign(name="Nurse Week", utm_campaign="nurse-week"))
    session.commit()
    return {"admin": admin, "lead": lead, "vol": vol}


def write(tmp_path: Path, rows: str, name: str = "stories.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + rows, encoding="utf-8")
    return path


def posts(session: Session) -> list[Post]:
    return list(session.scalars(select(Post).order_by(Post.id)))


def test_it_reads_a_time_without_offset_in_the_workspace_zone() -> None:
    chicago = ZoneInfo("America/Chicago")
    assert parse_time("2026-03-01 09:00", chicago) == datetime(2026, 3, 1, 15, 0, tzinfo=UTC)
    assert parse_time("2026-03-01T09:00:00Z", chicago) == datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    assert parse_time("2026-03-01T09:00+01:00", chicago) == datetime(2026, 3, 1, 8, tzinfo=UTC)


def test_it_imports_drafts_owned_by_the_acting_user(
    session: Session, team: dict[str, User], tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        f'Clinic wait times fell,sandbox:team.sandbox; sandbox:second.sandbox,{NEXT}-03-01 09:00,'
        'Nurse Week,https://example.org/story,,\n'
        '"A story, with a comma",sandbox:team.sandbox,,,,,\n',
    )
    result = import_csv(path, as_email="vol@example.org")
    session.commit()
    assert result.imported == 2 and result.problems == []
    first, second = posts(session)
    assert first.author_id == team["vol"].id and first.state == PostState.DRAFT
    assert first.campaign is not None and first.campaign.name == "Nurse Week"
    assert first.link == "https://example.org/story"
    assert first.preferred_time == datetime(NEXT, 3, 1, 15, 0, tzinfo=UTC)
    assert first.target_platforms == ["sandbox"]
    assert second.body == "A story, with a comma"
    assert session.scalar(select(func.count()).select_from(Delivery)) == 0


def test_it_reports_every_bad_row_with_its_line_and_imports_nothing(
    session: Session, team: dict[str, User], tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        f"Good story,sandbox:team.sandbox,{NEXT}-03-01 09:00,,,,\n"
        ",sandbox:team.sandbox,,,,,\n"
        "Unknown account,sandbox:nobody.sandbox,,,,,\n"
        "Bad time,sandbox:team.sandbox,next tuesday,,,,\n"
        "Bad campaign,sandbox:team.sandbox,,Flu Season,,,\n"
        '"Multi\nline story",sandbox:team.sandbox,,,ftp://x,,\n'
        "No alt,sandbox:team.sandbox,,,,missing.png,\n",
    )
    with pytest.raises(ImportFailed) as info:
        import_csv(path, as_email="lead@example.org")
    session.rollback()
    problems = {p.line: p.reason for p in info.value.problems}
    assert sorted(problems) == [3, 4, 5, 6, 7, 9]
    assert "body is empty" in problems[3]
    assert "no account sandbox:nobody.sandbox" in problems[4]
    assert "sandbox:team.sandbox" in problems[4]  # says which accounts exist
    assert "'next tuesday' is not an ISO 8601" in problems[5]
    assert "unknown campaign 'Flu Season'" in problems[6] and "Nurse Week" in problems[6]
    assert "link 'ftp://x' must start with http" in problems[7]  # a story spanning lines 7-8
    assert "missing.png" in problems[9] and "alt_text is empty" in problems[9]
    assert "line 4:" in str(info.value)
    assert posts(session) == []


def test_it_imports_the_valid_rows_when_told_to_skip_invalid(
    session: Session, team: dict[str, User], tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "One,sandbox:team.sandbox,,,,,\n"
        "Two,sandbox:ghost,,,,,\n"
        "Three,sandbox:second.sandbox,,,,,\n",
    )
    result = import_csv(path, as_email="vol@example.org", skip_invalid=True)
    session.commit()
    assert [p.line for p in result.problems] == [3]
    assert [p.body for p in posts(session)] == ["One", "Three"]


def test_it_approves_and_schedules_for_a_lead(
    session: Session, team: dict[str, User], tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        f"Later,sandbox:team.sandbox;sandbox:second.sandbox,{NEXT}-01-05T00:00:00Z,,,,\n",
    )
    result = import_csv(path, as_email="lead@example.org", approve=True)
    session.commit()
    assert result.imported == 1 and result.approved
    (post,) = posts(session)
    assert post.state == PostState.APPROVED
    assert post.scheduled_for == datetime(NEXT, 1, 5, tzinfo=UTC)
    deliveries = session.scalars(select(Delivery).where(Delivery.post_id == post.id)).all()
    assert len(deliveries) == 2
    assert {d.status for d in deliveries} == {"pending"}


def test_it_refuses_approve_for_a_volunteer(
    session: Session, team: dict[str, User], tmp_path: Path
) -> None:
    path = write(tmp_path, "Story,sandbox:team.sandbox,2020-01-01 00:00,,,,\n")
    with pytest.raises(NotAllowed, match=r"vol@example\.org is a volunteer"):
        import_csv(path, as_email="vol@example.org", approve=True)
    session.rollback()
    assert posts(session) == []


def test_it_needs_a_time_for_every_row_when_approving(
    session: Session, team: dict[str, User], tmp_path: Path
) -> None:
    path = write(tmp_path, "Story,sandbox:team.sandbox,,,,,\n")
    with pytest.raises(ImportFailed, match="line 2: scheduled_for is empty"):
        import_csv(path, as_email="lead@example.org", approve=True)


def test_it_requires_as_when_there_is_more_than_one_user(
    session: Session, team: dict[str, User], tmp_path: Path
) -> None:
    path = write(tmp_path, "Story,sandbox:team.sandbox,,,,,\n")
    with pytest.raises(ValidationFailed, match="--as EMAIL"):
        import_csv(path)


def test_it_copies_an_image_next_to_the_csv_into_data_media(
    session: Session, team: dict[str, User], tmp_path: Path
) -> None:
    folder = tmp_path / "batch"
    (folder / "pics").mkdir(parents=True)
    Image.new("RGB", (4, 4), (10, 200, 10)).save(folder / "pics" / "chart.png")
    path = write(folder, "With chart,sandbox:team.sandbox,,,,pics/chart.png,A green square\n")
    import_csv(path, as_email="vol@example.org")
    session.commit()
    (post,) = posts(session)
    (media,) = post.media
    assert media.alt_text == "A green square" and media.mime_type == "image/png"
    assert media.path.startswith("media/")
    copied = get_settings().data_dir / media.path
    assert copied.read_bytes() == (folder / "pics" / "chart.png").read_bytes()


def test_it_rejects_unknown_columns_on_line_one(session: Session, team: dict[str, User]) -> None:
    result = parse_csv(session, "body,acounts\nx,y\n", base_dir=Path("."))
    assert [(p.line, "unknown column(s) acounts" in p.reason) for p in result.problems] == [
        (1, True)
    ]
    assert result.rows == []


def test_it_counts_lines_of_multi_line_stories(session: Session, team: dict[str, User]) -> None:
    text = HEADER + '"one\ntwo\nthree",sandbox:team.sandbox,,,,,\nx,sandbox:nope,,,,,\n'
    result = parse_csv(session, text, base_dir=Path("."))
    assert [r.line for r in result.rows] == [2]
    assert [p.line for p in result.problems] == [5]


def test_it_finds_a_mastodon_account_by_user_at_server(
    session: Session, team: dict[str, User]
) -> None:
    for server in ("https://mastodon.social", "https://hachyderm.io"):
        session.add(
            Account(
                platform="mastodon",
                handle="team",
                service_url=server,
                credentials_enc=encrypt_json({"access_token": "t"}),
            )
        )
    session.commit()
    text = HEADER + (
        "A,mastodon:@team@hachyderm.io,,,,,\n"
        "B,mastodon:team,,,,,\n"
    )
    result = parse_csv(session, text, base_dir=Path("."))
    (row,) = result.rows
    account = session.get(Account, row.account_ids[0])
    assert account is not None and account.service_url == "https://hachyderm.io"
    assert [p.line for p in result.problems] == [3]
    assert "connected on 2 servers" in result.problems[0].reason


def test_it_reads_times_in_the_zone_the_admin_chose(
    session: Session, team: dict[str, User]
) -> None:
    from amplify.workspace import set_timezone

    set_timezone(session, team["admin"], "Europe/Berlin")
    session.commit()
    result = parse_csv(
        session, HEADER + f"A,sandbox:team.sandbox,{NEXT}-07-01 09:00,,,,\n", base_dir=Path(".")
    )
    assert result.rows[0].scheduled_for == datetime(NEXT, 7, 1, 7, 0, tzinfo=UTC)


# --------------------------------------------------------------------------- images


def test_it_records_the_checked_copy_of_a_csv_image(
    session: Session, team: dict[str, User], tmp_path: Path
) -> None:
    Image.new("RGB", (3000, 1500), (10, 200, 10)).save(tmp_path / "wide.jpg")
    path = write(tmp_path, "Wide,sandbox:team.sandbox,,,,wide.jpg,A green field\n")
    import_csv(path, as_email="vol@example.org")
    session.commit()
    (post,) = posts(session)
    (media,) = post.media
    stored = get_settings().data_dir / media.path
    assert (media.width, media.height) == (2048, 1024)  # normalised to the stated side
    assert media.size_bytes == stored.stat().st_size and media.sha256 in media.path


def test_it_refuses_csv_images_outside_the_csv_folder_and_text_named_png(
    session: Session, team: dict[str, User], tmp_path: Path
) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "secret.png")
    (folder / "notes.png").write_text("this is not a picture\n")
    path = write(
        folder,
        f"Absolute,sandbox:team.sandbox,,,,{tmp_path / 'secret.png'},alt\n"
        "Climbs out,sandbox:team.sandbox,,,,../secret.png,alt\n"
        "Text,sandbox:team.sandbox,,,,notes.png,alt\n",
    )
    with pytest.raises(ImportFailed) as info:
        import_csv(path, as_email="vol@example.org")
    session.rollback()
    problems = {p.line: p.reason for p in info.value.problems}
    assert "absolute path" in problems[2]
    assert "outside the CSV file's folder" in problems[3]
    assert "'notes.png' is not a picture" in problems[4]
    assert posts(session) == []


# --------------------------------------------------------------------------- hostile files


def stored() -> list[Post]:
    """The stories in the database, read without holding the write lock (the importer
    writes in its own transactions)."""
    with session_scope(readonly=True) as s:
        return list(s.scalars(select(Post).order_by(Post.id)))


def _only_problem(path: Path, **kw: object) -> Problem:
    with pytest.raises(ImportFailed) as info:
        import_csv(path, **kw)  # type: ignore[arg-type]
    (problem,) = info.value.problems
    return problem


def test_it_refuses_a_time_past_the_end_of_the_calendar(
    session: Session, team: dict[str, User], tmp_path: Path
) -> None:
    path = write(tmp_path, "Story,sandbox:team.sandbox,9999-12-31 23:59,,,,\n")
    problem = _only_problem(path, as_email="lead@example.org", approve=True)
    assert problem.line == 2 and "too far in the past or future; check the year" in problem.reason


@pytest.mark.parametrize("when", ["0001-01-01", "2020-01-01 09:00", "2001-01-01T00:00:00Z"])
def test_it_refuses_a_time_already_past_unless_told_to_publish_now(
    session: Session, team: dict[str, User], tmp_path: Path, when: str
) -> None:
    path = write(tmp_path, f"Story,sandbox:team.sandbox,{when},,,,\n")
    problem = _only_problem(path, as_email="lead@example.org", approve=True)
    assert "has already passed" in problem.reason and "'now'" in problem.reason
    assert stored() == []
    now = write(tmp_path, "Story,sandbox:team.sandbox,now,,,,\n", name="now.csv")
    result = import_csv(now, as_email="lead@example.org", approve=True)
    (post,) = stored()
    assert result.imported == 1 and post.state == PostState.APPROVED
    assert post.scheduled_for is not None
    assert abs((post.scheduled_for - datetime.now(UTC)).total_seconds()) < 60


def test_it_refuses_a_time_the_clocks_skip(
    session: Session, team: dict[str, User], tmp_path: Path
) -> None:
    day = f"{NEXT}-03-{_second_sunday(NEXT, 3)}"
    path = write(tmp_path, f"Story,sandbox:team.sandbox,{day} 02:30,,,,\n")
    problem = _only_problem(path, as_email="lead@example.org", approve=True)
    assert "does not exist in America/Chicago" in problem.reason
    assert "the clocks jump from 2:00 to 3:00" in problem.reason


def test_it_asks_which_of_two_times_a_repeated_hour_means(
    session: Session, team: dict[str, User], tmp_path: Path
) -> None:
    day = f"{NEXT}-11-{_first_sunday(NEXT, 11)}"
    path = write(tmp_path, f"Story,sandbox:team.sandbox,{day} 01:30,,,,\n")
    problem = _only_problem(path, as_email="lead@example.org", approve=True)
    assert "happens twice in America/Chicago" in problem.reason
    assert f"{day} 01:30-05:00" in problem.reason and f"{day} 01:30-06:00" in problem.reason
    chosen = write(tmp_path, f"Story,sandbox:team.sandbox,{day} 01:30-06:00,,,,\n", name="b.csv")
    import_csv(chosen, as_email="lead@example.org", approve=True)
    (post,) = stored()
    assert post.scheduled_for == datetime.fromisoformat(f"{day}T07:30:00+00:00")


def test_it_reports_an_unclosed_quote_where_it_opens(
    session: Session, team: dict[str, User], tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "Fine,sandbox:team.sandbox,,,,,\n"
        '"Oops, forgot to close,sandbox:team.sandbox,,,,,\n'
        "Another,sandbox:team.sandbox,,,,,\n",
    )
    problem = _only_problem(path, as_email="vol@example.org")
    assert problem.line == 3
    assert "never closed" in problem.reason and "accounts is empty" not in problem.reason
    assert stored() == []


def test_it_refuses_more_rows_than_the_limit_and_says_to_split(
    session: Session, team: dict[str, User], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "MAX_ROWS", 3)
    path = write(tmp_path, "".join(f"Story {i},sandbox:team.sandbox,,,,,\n" for i in range(4)))
    problem = _only_problem(path, as_email="vol@example.org")
    assert "more than 3 stories" in problem.reason and "split it" in problem.reason
    assert stored() == []


def test_other_writers_carry_on_while_a_big_file_is_checked(
    session: Session,
    team: dict[str, User],
    tmp_path: Path,
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = 1500
    path = write(tmp_path, "".join(f"Story {i},sandbox:team.sandbox,,,,,\n" for i in range(rows)))
    database = sqlite_url.split("///", 1)[1]
    outcomes: list[str] = []

    def another_writer() -> None:  # like `amplify users add` in another process
        con = sqlite3.connect(database, timeout=2)
        try:
            con.execute("INSERT INTO settings (key, value) VALUES ('probe', '{}')")
            con.commit()
            outcomes.append("written")
        except sqlite3.OperationalError as exc:
            outcomes.append(str(exc))
        finally:
            con.close()

    checking = importer.check_rows

    def check_rows_beside_a_writer(*args: Any, **kw: Any) -> Any:
        writer = threading.Thread(target=another_writer)
        writer.start()
        try:
            return checking(*args, **kw)
        finally:
            writer.join()

    monkeypatch.setattr(importer, "check_rows", check_rows_beside_a_writer)
    result = import_csv(path, as_email="vol@example.org")
    assert outcomes == ["written"]
    assert result.imported == rows
    assert len(stored()) == rows


def test_it_imports_nothing_when_two_rows_are_the_same_story(
    session: Session, team: dict[str, User], tmp_path: Path
) -> None:
    path = write(
        tmp_path, "Same story,sandbox:team.sandbox,,,,,\nSame story,sandbox:team.sandbox,,,,,\n"
    )
    problem = _only_problem(path, as_email="vol@example.org")
    assert problem.line == 3 and "the same story as line 2" in problem.reason
    assert stored() == []


def _nth_sunday(year: int, month: int, n: int) -> str:
    first = datetime(year, month, 1)
    day = 1 + (6 - first.weekday()) % 7 + 7 * (n - 1)
    return f"{day:02d}"


def _first_sunday(year: int, month: int) -> str:
    return _nth_sunday(year, month, 1)


def _second_sunday(year: int, month: int) -> str:
    return _nth_sunday(year, month, 2)


@pytest.fixture
def lead_on(db_url: str) -> str:
    with session_scope(db_url) as s:
        s.add(User(email="lead@example.org", name="Lee", role="lead", password_hash="x"))
        s.add(Account(platform="sandbox", handle="team.sandbox", credentials_enc=encrypt_json({})))
    return db_url


def test_it_refuses_a_nul_byte_with_its_line_on_both_databases(
    lead_on: str, tmp_path: Path
) -> None:
    path = write(
        tmp_path, "Fine,sandbox:team.sandbox,,,,,\nBad\x00byte,sandbox:team.sandbox,,,,,\n"
    )
    problem = _only_problem(path, as_email="lead@example.org", url=lead_on)
    assert problem.line == 3 and "NUL character" in problem.reason
    with session_scope(lead_on, readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(Post)) == 0
    with_skip = import_csv(path, as_email="lead@example.org", url=lead_on, skip_invalid=True)
    assert with_skip.imported == 1 and [p.line for p in with_skip.problems] == [3]


def test_it_writes_approved_stories_that_read_back_whole_on_both_databases(
    lead_on: str, tmp_path: Path
) -> None:
    when = datetime(NEXT, 1, 5, 15, 0, tzinfo=UTC)
    path = write(
        tmp_path,
        f"First,sandbox:team.sandbox,{when.isoformat()},,https://example.org/a,,\n"
        f"Second,sandbox:team.sandbox,{when.isoformat()},,,,\n",
    )
    result = import_csv(path, as_email="lead@example.org", approve=True, url=lead_on)
    with session_scope(lead_on) as s:
        stored_posts = list(s.scalars(select(Post).order_by(Post.id)))
        assert [p.id for p in stored_posts] == result.post_ids
        first = stored_posts[0]
        assert (first.body, first.link) == ("First", "https://example.org/a")
        assert first.state == PostState.APPROVED
        assert first.scheduled_for == when and first.target_platforms == ["sandbox"]
        (delivery,) = first.deliveries
        assert delivery.status == "pending" and delivery.next_attempt_at == when
        actions = [
            (e.action, e.detail.get("source"))
            for e in s.scalars(
                select(AuditEvent).where(AuditEvent.subject_id == first.id).order_by(AuditEvent.id)
            )
        ]
        assert actions == [
            ("post.created", "csv"),
            ("post.submitted", "csv"),
            ("post.approved", "csv"),
        ]
        later = Post(author_id=first.author_id, body="Written later", state="draft")
        s.add(later)
        s.flush()  # the id sequence moved past the imported posts
        assert later.id > max(result.post_ids)
