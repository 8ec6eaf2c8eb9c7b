"""CSV exports are safe to open in a spreadsheet (OWASP CSV injection): one writer for all."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pandas as pd
import pytest
from typer.testing import CliRunner

from amplify import analytics, csvsafe, snapshots
from amplify.cli import app
from amplify.db import session_scope
from amplify.models import DeliveryStatus, utcnow
from amplify.report import delivery_rows, to_csv
from connectors.base import Metrics
from tests.factories import make_account, make_delivery, make_post, make_spreader, make_user

FORMULA = '=HYPERLINK("http://x","y")'
runner = CliRunner()


def _cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def _live_formulas(text: str) -> list[str]:
    return [c for c in _cells(text) if c.startswith(csvsafe.FORMULA_STARTS) and not _number(c)]


def _number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _published_formula_story(url: str) -> int:
    with session_scope(url) as s:
        author = make_user(s, name="@SUM(1+1)")
        account = make_account(s, platform="sandbox", handle="team.sandbox")
        post = make_post(s, author=author, body=FORMULA)
        when = utcnow() - timedelta(hours=3)
        d = make_delivery(
            s,
            post=post,
            account=account,
            status=DeliveryStatus.PUBLISHED,
            published_at=when,
            last_error="-2+3 went wrong",
        )
        snapshots.append(s, d, Metrics("1", likes=4, reposts=1), when + timedelta(hours=1))
        make_spreader(s, d, "evil", "+cmd|' /C calc'!A0", 10)
        return post.id


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (FORMULA, "'" + FORMULA),
        ("+1+2", "'+1+2"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("a plain story", "a plain story"),
        ("", ""),
        (None, ""),
    ],
)
def test_it_neutralises_text_a_spreadsheet_would_run(value: str | None, written: str) -> None:
    assert csvsafe.safe_cell(value) == written


def test_it_keeps_numbers_numeric_even_when_negative() -> None:
    text = csvsafe.rows_to_csv(
        [{"a": -3, "b": 2.5, "c": Decimal("-1.25"), "d": "-3"}], ["a", "b", "c", "d"]
    )
    assert text.splitlines()[1] == "-3,2.5,-1.25,'-3"


def test_it_writes_missing_dataframe_values_as_empty_cells() -> None:
    frame = pd.DataFrame({"story": [FORMULA, None], "n": [1.0, float("nan")]})
    rows = list(csv.reader(io.StringIO(csvsafe.frame_to_csv(frame))))
    assert rows == [["story", "n"], ["'" + FORMULA, "1.0"], ["", ""]]


def test_the_reach_report_as_csv_carries_no_live_formula(sqlite_url: str) -> None:
    _published_formula_story(sqlite_url)
    result = runner.invoke(app, ["report", "reach", "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert "'" + FORMULA in _cells(result.stdout)
    assert _live_formulas(result.stdout) == []


def test_the_delivery_report_as_csv_carries_no_live_formula(sqlite_url: str) -> None:
    _published_formula_story(sqlite_url)
    result = runner.invoke(app, ["report", "deliveries", "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert "'-2+3 went wrong" in _cells(result.stdout)
    assert _live_formulas(result.stdout) == []
    with session_scope(sqlite_url) as s:
        assert to_csv(delivery_rows(s)) == result.stdout


def test_every_reach_page_table_downloads_without_a_live_formula(sqlite_url: str) -> None:
    post_id = _published_formula_story(sqlite_url)
    now = utcnow()
    period = analytics.Period(now - timedelta(days=7), now + timedelta(hours=1), None)
    with session_scope(sqlite_url, readonly=True) as s:
        frames = {
            "top": analytics.top_posts(s, period),
            "over_time": analytics.engagement_over_time(s, period, "post", [post_id]),
            "volunteers": analytics.volunteer_leaderboard(s, period),
            "advocates": analytics.advocate_leaderboard(s, period),
            "resharers": analytics.spread(s, post_id).resharers,
        }
    assert "'" + FORMULA in _cells(csvsafe.frame_to_csv(frames["top"]))
    assert "'+cmd|' /C calc'!A0" in _cells(csvsafe.frame_to_csv(frames["resharers"]))
    for name, frame in frames.items():
        assert _live_formulas(csvsafe.frame_to_csv(frame)) == [], name
