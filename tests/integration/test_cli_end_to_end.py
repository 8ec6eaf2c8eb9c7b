"""The whole path through the real `amplify` command, as separate processes:

a lead, a sandbox account, 100 stories imported with --approve (due now), one
`amplify worker --once` publishes every one of them to the sandbox exactly once, and
`amplify report deliveries --format json` shows it. Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from amplify.db import session_scope
from amplify.models import Delivery, SandboxRecord

AMPLIFY = str(Path(sys.executable).with_name("amplify"))
PASSWORD = "correct horse battery"
STORIES = 100


def amplify(*args: str, stdin: str = "", timeout: int = 300) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [AMPLIFY, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"amplify {' '.join(args)} failed:\n{done.stderr}"
    assert "Traceback" not in done.stderr
    return done


@pytest.mark.slow
def test_it_publishes_100_imported_stories_to_the_sandbox_exactly_once(
    db_url: str, tmp_path: Path
) -> None:
    amplify("db", "upgrade")
    amplify("users", "add", "admin@example.org", "--role", "admin", stdin=PASSWORD + "\n")
    amplify(
        "users", "add", "lead@example.org", "--role", "lead", "--name", "Lee", stdin=PASSWORD + "\n"
    )
    added = amplify("accounts", "add", "--platform", "sandbox", "--handle", "team.sandbox")
    assert "nothing is really posted" in added.stdout

    lines = ["body,accounts,scheduled_for,campaign,link,image,alt_text"]
    for i in range(STORIES):
        # 'now' is how a CSV asks to publish at once (a past time is refused).
        lines.append(
            f'"Story {i}: our clinic cut wait times, week {i}",sandbox:team.sandbox,now,,'
            f"https://example.org/stories/{i},,"
        )
    path = tmp_path / "stories.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    imported = amplify("posts", "import", str(path), "--approve", "--as", "lead@example.org")
    assert f"Imported {STORIES} stories approved and scheduled by lead@example.org" in (
        imported.stdout
    )

    amplify("worker", "--once", "--concurrency", "4", timeout=540)
    amplify("worker", "--once")  # a second run finds nothing left to send

    with session_scope(db_url) as s:
        assert s.scalar(select(func.count()).select_from(SandboxRecord)) == STORIES
        repeated = s.execute(
            select(SandboxRecord.idempotency_key)
            .group_by(SandboxRecord.idempotency_key)
            .having(func.count() > 1)
        ).all()
        assert repeated == []
        keys = set(s.scalars(select(Delivery.idempotency_key)))
        assert set(s.scalars(select(SandboxRecord.idempotency_key))) == keys
        texts = set(s.scalars(select(SandboxRecord.text)))
    assert len(texts) == STORIES
    assert all("example.org/stories/" in t for t in texts)

    report = json.loads(amplify("report", "deliveries", "--format", "json").stdout)
    assert len(report) == STORIES
    assert {r["status"] for r in report} == {"published"}
    assert {r["account"] for r in report} == {"sandbox:team.sandbox"}
    assert all(r["attempts"] == 1 and r["remote_id"] and r["last_error"] is None for r in report)
    assert len({r["remote_id"] for r in report}) == STORIES
