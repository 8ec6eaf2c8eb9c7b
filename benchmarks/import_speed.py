"""CSV import speed, and whether publishing carries on meanwhile. Prints JSON.

    .venv/bin/python benchmarks/import_speed.py [--rows 10000] [--drafts]

Builds a throw-away SQLite workspace (one lead, two sandbox accounts, one story due now),
writes a CSV of ``--rows`` stories (approved and scheduled across the next weeks unless
``--drafts``) and runs ``amplify.importer.import_csv`` while another thread does what
``amplify worker --once`` does to the database: claim due deliveries (a write) every 50 ms.

Reports:
- ``total_s``: the whole import (reading, checking, writing);
- ``longest_write_lock_s``: the longest the import's own thread held the SQLite write lock
  (BEGIN IMMEDIATE to COMMIT), and ``write_transactions``: how many it opened;
- ``other_writer``: the claims made during the import (``writes``), how many failed
  (``failures``, e.g. "database is locked"), and the longest a claim took (``longest_s``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _workspace(folder: Path) -> str:
    url = f"sqlite:///{folder}/bench.db"
    os.environ["AMPLIFY_DATABASE_URL"] = url
    os.environ["AMPLIFY_DATA_DIR"] = str(folder / "data")
    os.environ.setdefault("AMPLIFY_SECRET_KEY", "YmVuY2htYXJrLWtleS1ub3QtYS1yZWFsLXNlY3JldCE=")
    os.environ["AMPLIFY_EMBEDDED_WORKER"] = "false"
    from amplify.config import reset_settings

    reset_settings()
    from amplify.crypto import encrypt_json
    from amplify.db import session_scope
    from amplify.migrate import upgrade
    from amplify.models import Account, Delivery, Post, User, utcnow

    upgrade(url)
    with session_scope(url) as s:
        lead = User(email="lead@bench.example", name="Lead", role="lead", password_hash="x")
        s.add(lead)
        for handle in ("team.sandbox", "second.sandbox"):
            s.add(Account(platform="sandbox", handle=handle, credentials_enc=encrypt_json({})))
        s.flush()
        # Something for the other writer to claim: a story due now.
        post = Post(author_id=lead.id, body="Due now", state="approved", scheduled_for=utcnow())
        s.add(post)
        s.flush()
        s.add(
            Delivery(
                post_id=post.id,
                account_id=1,
                kind="post",
                status="pending",
                next_attempt_at=utcnow(),
                idempotency_key="bench-due",
            )
        )
    return url


def _csv(folder: Path, rows: int, approve: bool) -> Path:
    start = datetime.now(UTC) + timedelta(days=1)
    lines = ["body,accounts,scheduled_for,link"]
    both = "sandbox:team.sandbox;sandbox:second.sandbox"
    for i in range(rows):
        when = (start + timedelta(minutes=7 * i)).strftime("%Y-%m-%dT%H:%M:00Z") if approve else ""
        accounts = both if i % 3 else "sandbox:team.sandbox"
        lines.append(
            f'"Story {i}: the clinic cut wait times, and patients noticed.",{accounts},{when},'
            f"https://example.org/stories/{i}"
        )
    path = folder / "stories.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class LockClock:
    """Times each write transaction (BEGIN IMMEDIATE → COMMIT/ROLLBACK) of one thread."""

    def __init__(self, engine: Any, thread: int) -> None:
        from sqlalchemy import event

        self.thread = thread
        self.started: dict[int, float] = {}
        self.held: list[float] = []
        event.listen(engine, "begin", self._begin)
        event.listen(engine, "commit", self._end)
        event.listen(engine, "rollback", self._end)

    def _begin(self, conn: Any) -> None:
        if threading.get_ident() == self.thread:
            self.started[id(conn)] = time.perf_counter()

    def _end(self, conn: Any) -> None:
        began = self.started.pop(id(conn), None)
        if began is not None:
            self.held.append(time.perf_counter() - began)


def run(rows: int, approve: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = _workspace(folder)
        path = _csv(folder, rows, approve)
        from amplify import queue
        from amplify.db import get_engine, session_factory
        from amplify.importer import import_csv

        clock = LockClock(get_engine(url), threading.get_ident())
        factory = session_factory(url)
        stop = threading.Event()
        writes: list[float] = []
        failures: list[str] = []

        def other_writer() -> None:  # what `amplify worker --once` does to the database
            while not stop.is_set():
                began = time.perf_counter()
                try:
                    queue.claim_due(factory, "bench-worker", limit=4)
                    writes.append(time.perf_counter() - began)
                except Exception as exc:  # report, never hide, a failed write
                    failures.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
                stop.wait(0.05)

        writer = threading.Thread(target=other_writer, daemon=True)
        writer.start()
        began = time.perf_counter()
        result = import_csv(path, as_email="lead@bench.example", approve=approve, url=url)
        total = time.perf_counter() - began
        stop.set()
        writer.join()
        return {
            "rows": rows,
            "imported": result.imported,
            "approved": approve,
            "total_s": round(total, 3),
            "longest_write_lock_s": round(max(clock.held, default=0.0), 3),
            "write_transactions": len(clock.held),
            "other_writer": {
                "writes": len(writes),
                "failures": len(failures),
                "first_failure": failures[0] if failures else None,
                "longest_s": round(max(writes, default=0.0), 3),
            },
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--drafts", action="store_true", help="import drafts, not approved")
    args = parser.parse_args()
    print(json.dumps(run(args.rows, approve=not args.drafts), indent=2))


if __name__ == "__main__":
    main()
