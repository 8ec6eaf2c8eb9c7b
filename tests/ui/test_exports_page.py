"""Every dashboard CSV download neutralises spreadsheet formulas (OWASP CSV injection)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from amplify import csvsafe, snapshots
from amplify.db import session_scope
from amplify.models import DeliveryStatus, User, utcnow
from connectors.base import Metrics
from tests.factories import make_account, make_delivery, make_post, make_spreader

FORMULA = '=HYPERLINK("http://x","y")'


def _formula_story(author_id: int) -> None:
    with session_scope() as s:
        org = make_account(s, platform="sandbox", handle="chapter.sandbox", followers_count=900)
        post = make_post(s, author=s.get(User, author_id), body=FORMULA)
        when = utcnow() - timedelta(hours=5)
        d = make_delivery(
            s, post=post, account=org, status=DeliveryStatus.PUBLISHED, published_at=when
        )
        snapshots.append(s, d, Metrics("1", likes=2, reposts=1), when + timedelta(hours=1))
        make_spreader(s, d, "evil", "@evil", 100)


def test_every_reach_download_is_safe_to_open_in_a_spreadsheet(
    app_as: Callable[..., AppTest], people: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    _formula_story(people["volunteer"])
    downloads: dict[str, str] = {}
    add = MediaFileManager.add

    def capture(self: MediaFileManager, data: Any, mimetype: str, *args: Any, **kw: Any) -> str:
        if mimetype == "text/csv":
            downloads[kw.get("file_name") or args[1]] = bytes(data).decode()
        return add(self, data, mimetype, *args, **kw)

    monkeypatch.setattr(MediaFileManager, "add", capture)
    at = app_as("admin", "reach.py")
    assert not at.exception, [e.value for e in at.exception]
    assert len(downloads) == len(at.get("download_button")) >= 4
    cells = {n: [c for r in csv.reader(io.StringIO(t)) for c in r] for n, t in downloads.items()}
    assert "'" + FORMULA in cells["top_posts.csv"]
    assert any(c == "'@evil" for c in cells[next(n for n in cells if "resharers" in n)])
    for name, found in cells.items():
        assert [c for c in found if _live(c)] == [], name


def _live(cell: str) -> bool:
    """Text a spreadsheet would run (a plain negative number is just a number)."""
    try:
        float(cell)
    except ValueError:
        return cell.startswith(csvsafe.FORMULA_STARTS)
    return False
