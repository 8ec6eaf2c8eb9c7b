"""Dashboard speed: every page's script run with 100,000 deliveries and 2,000,000 snapshots.

    python benchmarks/dashboard_speed.py [--deliveries N] [--snapshots-per N] [--db PATH]

Builds (once; reused when the file exists with the same size) a SQLite workspace of that
size, then times each page's script run with Streamlit's AppTest as a signed-in admin,
cold (first run, caches empty) and warm (second run), and the Reach page's analytics
queries on their own. Prints JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def populate(path: Path, deliveries: int, snapshots_per: int, seed: int = 3) -> None:
    """Bulk-load a workspace with raw sqlite3 (SQLAlchemy's ORM would take minutes)."""
    from argon2 import PasswordHasher

    from amplify import crypto
    from amplify.migrate import upgrade

    upgrade(f"sqlite:///{path}")
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(tzinfo=None)
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    pw = PasswordHasher().hash("bench-password")
    users = [
        (
            i,
            f"user{i}@bench.example",
            f"User {i}",
            ["admin", "lead", "volunteer"][min(i, 2)],
            pw,
            1,
            now,
        )
        for i in range(1, 201)
    ]
    con.executemany(
        "INSERT INTO users (id,email,name,role,password_hash,active,created_at) "
        "VALUES (?,?,?,?,?,?,?)",
        users,
    )
    con.executemany(
        "INSERT INTO campaigns (id,name,description,hashtags,utm_campaign,utm_enabled,archived,"
        "created_at) "
        "VALUES (?,?,?,?,?,?,?,?)",
        [(i, f"Campaign {i}", "", "", f"c{i}", 1, 0, now) for i in range(1, 11)],
    )
    empty = crypto.encrypt_json({})
    accounts = []
    for i in range(1, 1001):
        owner = rng.randint(3, 200) if i > 50 else None
        accounts.append(
            (
                i,
                ["sandbox", "bluesky", "mastodon", "x"][i % 4],
                f"acct{i}",
                "",
                "",
                owner,
                empty,
                "ok",
                1 if owner else 0,
                "[]",
                rng.randint(50, 50000),
                now,
            )
        )
    con.executemany(
        "INSERT INTO accounts (id,platform,handle,service_url,display_name,owner_id,"
        "credentials_enc,status,"
        "amplify_opt_in,posting_slots,followers_count,created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        accounts,
    )
    posts_n = deliveries // 4
    posts = []
    for i in range(1, posts_n + 1):
        when = now - timedelta(days=rng.uniform(0, 30))
        posts.append(
            (
                i,
                rng.randint(3, 200),
                rng.randint(1, 10),
                f"Story {i} " + "x" * 80,
                "{}",
                "[]",
                "published",
                when,
                0,
                now,
                now,
                1,
                when,
            )
        )
    con.executemany(
        "INSERT INTO posts (id,author_id,campaign_id,body,overrides,target_platforms,state,"
        "scheduled_for,"
        "amplify,created_at,updated_at,version,published_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        posts,
    )
    rows = []
    snaps: list[tuple[Any, ...]] = []
    sid = 0
    for d in range(1, deliveries + 1):
        post = posts[(d - 1) % posts_n]
        when = post[7]
        kind = "post" if d <= posts_n * 3 else "repost"
        account = (post[0] * 7 + ((d - 1) // posts_n) * 250) % 1000 + 1
        rows.append(
            (
                d,
                post[0],
                account,
                kind,
                "published",
                1,
                when,
                uuid.uuid4().hex,
                f"r{d}",
                when,
                "[]",
                0,
                now,
            )
        )
        for k in range(snapshots_per):
            sid += 1
            taken = when + timedelta(hours=k * 3)
            g = k + 1
            snaps.append((sid, d, taken, g * 2, g, g // 2, g // 4, None, None, 1))
        if len(snaps) >= 200_000:
            _flush(con, rows, snaps)
    _flush(con, rows, snaps)
    _rollups(con)
    con.commit()
    con.execute("ANALYZE")
    con.close()


def _flush(
    con: sqlite3.Connection, rows: list[tuple[Any, ...]], snaps: list[tuple[Any, ...]]
) -> None:
    con.executemany(
        "INSERT INTO deliveries (id,post_id,account_id,kind,status,attempts,next_attempt_at,"
        "idempotency_key,texts,"
        "remote_id,published_at,parts,metrics_step,created_at,likes,reposts,replies,quotes,"
        "engagement,metrics_simulated) VALUES (?,?,?,?,?,?,?,?,'[]',?,?,?,?,?,0,0,0,0,0,0)",
        rows,
    )
    con.executemany(
        "INSERT INTO metric_snapshots (id,delivery_id,taken_at,likes,reposts,replies,quotes,"
        "impressions,"
        "bookmarks,simulated) VALUES (?,?,?,?,?,?,?,?,?,?)",
        snaps,
    )
    rows.clear()
    snaps.clear()


def _rollups(con: sqlite3.Connection) -> None:
    """What amplify.snapshots.append keeps up to date, computed once for the bulk load."""
    con.execute(
        """UPDATE deliveries SET (likes, reposts, replies, quotes, engagement, metrics_simulated)
           = (SELECT likes, reposts, replies, quotes, likes + reposts + replies + quotes, 1
              FROM metric_snapshots m WHERE m.id =
                (SELECT MAX(id) FROM metric_snapshots WHERE delivery_id = deliveries.id))"""
    )
    con.execute(
        """INSERT INTO engagement_daily (day, post_id, platform, gain)
           SELECT date(g.taken_at), d.post_id, a.platform, SUM(g.gain) FROM
             (SELECT delivery_id, taken_at, (likes + reposts + replies + quotes) -
                COALESCE(LAG(likes + reposts + replies + quotes) OVER
                  (PARTITION BY delivery_id ORDER BY id), 0) AS gain
              FROM metric_snapshots) g
           JOIN deliveries d ON d.id = g.delivery_id AND d.kind = 'post'
           JOIN accounts a ON a.id = d.account_id
           GROUP BY date(g.taken_at), d.post_id, a.platform"""
    )


def time_analytics(url: str) -> dict[str, float]:
    from amplify import analytics
    from amplify.db import session_scope

    out: dict[str, float] = {}
    now = datetime.now(UTC)
    period = analytics.Period(now - timedelta(days=30), now + timedelta(days=1))
    with session_scope(url) as s:
        for name, fn in [
            ("data_version", lambda: analytics.data_version(s)),
            ("kpis", lambda: analytics.kpis(s, period)),
            ("best_times", lambda: analytics.best_times(s, period)),
            ("top_posts", lambda: analytics.top_posts(s, period)),
            ("volunteer_leaderboard", lambda: analytics.volunteer_leaderboard(s, period)),
            ("advocate_leaderboard", lambda: analytics.advocate_leaderboard(s, period)),
            ("engagement_over_time", lambda: analytics.engagement_over_time(s, period)),
            ("post_timeline", lambda: analytics.post_timeline(s, 1)),
            ("spread", lambda: analytics.spread(s, 1)),
        ]:
            t = time.perf_counter()
            fn()
            out[name + "_s"] = round(time.perf_counter() - t, 3)
    return out


def time_pages(url: str) -> dict[str, dict[str, float]]:
    """Each page's script run through the real router (app.py) as an admin: the first run
    (cold caches), then a rerun (warm). Page errors are counted, their output kept off
    stdout so the JSON stays clean."""
    from streamlit.testing.v1 import AppTest

    from amplify.config import reset_settings
    from amplify.ui.nav import PAGES, PAGES_DIR

    os.environ["AMPLIFY_DATABASE_URL"] = url
    os.environ["AMPLIFY_EMBEDDED_WORKER"] = "false"
    reset_settings()
    results: dict[str, dict[str, float]] = {}
    with contextlib.redirect_stdout(sys.stderr):
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        at.session_state["user_id"] = 1
        at.run()
        for spec in PAGES:
            at.switch_page(f"{PAGES_DIR}/{spec.file}")
            runs = []
            for _ in range(2):
                t = time.perf_counter()
                at.run()
                runs.append(round(time.perf_counter() - t, 3))
            results[spec.file.removesuffix(".py")] = {
                "cold_s": runs[0],
                "warm_s": runs[1],
                "errors": len(at.exception),
            }
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--deliveries", type=int, default=100_000)
    ap.add_argument("--snapshots-per", type=int, default=20)
    ap.add_argument(
        "--db", type=Path, default=Path(tempfile.gettempdir()) / "amplify-bench-dashboard.db"
    )
    args = ap.parse_args()
    os.environ.setdefault("AMPLIFY_DATA_DIR", str(args.db.parent / "amplify-bench-data"))
    stamp = args.db.with_suffix(".size")
    # Rebuild when the size or the schema changed.
    from alembic.script import ScriptDirectory

    from amplify.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    size = f"{args.deliveries}x{args.snapshots_per}@{head}"
    build_s = 0.0
    if not (args.db.exists() and stamp.exists() and stamp.read_text() == size):
        for p in (args.db, Path(str(args.db) + "-wal"), Path(str(args.db) + "-shm")):
            p.unlink(missing_ok=True)
        t = time.perf_counter()
        populate(args.db, args.deliveries, args.snapshots_per)
        build_s = round(time.perf_counter() - t, 1)
        stamp.write_text(size)
    url = f"sqlite:///{args.db}"
    report = {
        "dashboard": {
            "deliveries": args.deliveries,
            "snapshots": args.deliveries * args.snapshots_per,
            "build_s": build_s,
            "analytics": time_analytics(url),
            "pages": time_pages(url),
        }
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
