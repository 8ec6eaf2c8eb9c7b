from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from amplify import cli, users
from amplify.cli import app
from amplify.crypto import encrypt_json
from amplify.db import session_scope
from amplify.models import Account, Delivery, Post, User, WorkerHeartbeat
from amplify.report import DELIVERY_COLUMNS
from connectors.registry import PLATFORMS

PASSWORD = "correct horse battery"
AMPLIFY = str(Path(sys.executable).with_name("amplify"))
runner = CliRunner()


def invoke(*args: str, input: str | None = None) -> Result:
    return runner.invoke(app, list(args), input=input)


@pytest.fixture
def people(sqlite_url: str) -> str:
    """An admin, a lead and a volunteer, plus two sandbox accounts."""
    for email, role in (
        ("admin@example.org", "admin"),
        ("lead@example.org", "lead"),
        ("vol@example.org", "volunteer"),
    ):
        result = invoke("users", "add", email, "--role", role, input=PASSWORD + "\n")
        assert result.exit_code == 0, result.output
    with session_scope(sqlite_url) as s:
        for handle in ("team.sandbox", "second.sandbox"):
            s.add(Account(platform="sandbox", handle=handle, credentials_enc=encrypt_json({})))
    return sqlite_url


def csv_file(tmp_path: Path, rows: str) -> Path:
    path = tmp_path / "stories.csv"
    path.write_text("body,accounts,scheduled_for,campaign,link,image,alt_text\n" + rows)
    return path


def test_it_offers_the_same_platforms_as_the_registry() -> None:
    shown = invoke("accounts", "add", "--help").output
    assert all(p in shown for p in PLATFORMS), shown


def test_it_upgrades_the_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMPLIFY_DATABASE_URL", f"sqlite:///{tmp_path}/fresh.db")
    from amplify.config import reset_settings

    reset_settings()
    result = invoke("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "up to date" in result.stdout
    assert (tmp_path / "fresh.db").exists()
    with session_scope(f"sqlite:///{tmp_path}/fresh.db") as s:
        assert s.scalars(select(User)).all() == []


def test_it_adds_the_first_admin_reading_the_password_from_stdin(sqlite_url: str) -> None:
    result = invoke(
        "users", "add", "Ada@Example.org", "--role", "admin", "--name", "Ada", input=PASSWORD + "\n"
    )
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    with session_scope(sqlite_url) as s:
        user = users.authenticate(s, "ada@example.org", PASSWORD)
        assert user is not None and user.role == "admin" and user.name == "Ada"
    listed = invoke("users", "list")
    assert "ada@example.org" in listed.stdout and "admin" in listed.stdout


def test_it_has_no_way_to_give_a_password_on_the_command_line(sqlite_url: str) -> None:
    result = invoke("users", "add", "a@example.org", "--role", "admin", "--password", PASSWORD)
    assert result.exit_code == 2
    assert "--password" not in invoke("users", "add", "--help").stdout
    with session_scope(sqlite_url) as s:
        assert s.scalars(select(User)).all() == []


def test_it_asks_twice_in_a_hidden_prompt_on_a_terminal(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "_stdin_is_terminal", lambda: True)
    result = invoke(
        "users",
        "add",
        "t@example.org",
        "--role",
        "admin",
        input=f"{PASSWORD}\nsomething else!\n{PASSWORD}\n{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    assert "Repeat for confirmation" in result.output
    assert PASSWORD not in result.output  # hidden: never echoed
    with session_scope(sqlite_url) as s:
        assert users.authenticate(s, "t@example.org", PASSWORD) is not None


def test_it_exits_1_with_a_plain_message_for_a_user_error(sqlite_url: str) -> None:
    result = invoke("users", "add", "a@example.org", "--role", "admin", input="short\n")
    assert result.exit_code == 1
    assert "Error: Choose a password of at least 10 characters" in result.stderr
    assert "Traceback" not in result.output


def test_it_records_the_first_admin_as_the_one_adding_people(people: str) -> None:
    with session_scope(people) as s:
        roles = {u.email: u.role for u in s.scalars(select(User))}
    assert roles == {
        "admin@example.org": "admin",
        "lead@example.org": "lead",
        "vol@example.org": "volunteer",
    }
    refused = invoke(
        "users",
        "add",
        "x@example.org",
        "--role",
        "lead",
        "--as",
        "lead@example.org",
        input=PASSWORD + "\n",
    )
    assert refused.exit_code == 1
    assert "Only admins can" in refused.stderr


def test_it_imports_nothing_and_lists_every_bad_line(people: str, tmp_path: Path) -> None:
    path = csv_file(
        tmp_path,
        f"Good,sandbox:team.sandbox,{datetime.now(UTC).year + 1}-03-01 09:00,,,,\n"
        "Bad,sandbox:ghost.sandbox,,,,,\n"
        "Worse,sandbox:team.sandbox,soon,,,,\n",
    )
    result = invoke("posts", "import", str(path), "--as", "lead@example.org")
    assert result.exit_code == 1
    assert "line 3: no account sandbox:ghost.sandbox" in result.stderr
    assert "line 4: scheduled_for 'soon'" in result.stderr
    assert "nothing imported" in result.stderr
    with session_scope(people) as s:
        assert s.scalars(select(Post)).all() == []


def test_it_imports_the_valid_rows_with_skip_invalid(people: str, tmp_path: Path) -> None:
    path = csv_file(tmp_path, "Good,sandbox:team.sandbox,,,,,\nBad,sandbox:ghost.sandbox,,,,,\n")
    result = invoke("posts", "import", str(path), "--as", "vol@example.org", "--skip-invalid")
    assert result.exit_code == 0, result.output
    assert "Imported 1 story as drafts by vol@example.org" in result.stdout
    assert "skipped line 3" in result.stderr
    with session_scope(people) as s:
        assert [p.body for p in s.scalars(select(Post))] == ["Good"]


def test_it_refuses_approve_for_a_volunteer(people: str, tmp_path: Path) -> None:
    path = csv_file(tmp_path, "Good,sandbox:team.sandbox,2020-01-01 09:00,,,,\n")
    result = invoke("posts", "import", str(path), "--as", "vol@example.org", "--approve")
    assert result.exit_code == 1
    assert "Only leads and admins can approve" in result.stderr
    with session_scope(people) as s:
        assert s.scalars(select(Post)).all() == []


def test_it_requires_as_when_several_people_could_import(people: str, tmp_path: Path) -> None:
    path = csv_file(tmp_path, "Good,sandbox:team.sandbox,,,,,\n")
    result = invoke("posts", "import", str(path))
    assert result.exit_code == 1
    assert "--as EMAIL" in result.stderr


def test_it_reports_deliveries_as_json_and_csv(people: str, tmp_path: Path) -> None:
    path = csv_file(
        tmp_path, "Due,sandbox:team.sandbox;sandbox:second.sandbox,now,,,,\n"
    )
    imported = invoke("posts", "import", str(path), "--as", "lead@example.org", "--approve")
    assert imported.exit_code == 0, imported.output
    assert "approved and scheduled" in imported.stdout

    as_json = json.loads(invoke("report", "deliveries", "--format", "json").stdout)
    assert [r["account"] for r in as_json] == ["sandbox:team.sandbox", "sandbox:second.sandbox"]
    assert {r["status"] for r in as_json} == {"pending"}
    assert all(r["attempts"] == 0 and r["remote_id"] is None for r in as_json)
    with session_scope(people) as s:
        post_id = s.scalars(select(Delivery.post_id)).first()
    assert {r["post_id"] for r in as_json} == {post_id}

    text = invoke("report", "deliveries", "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == DELIVERY_COLUMNS
    assert [r["account"] for r in rows] == ["sandbox:team.sandbox", "sandbox:second.sandbox"]
    assert invoke("report", "deliveries", "--format", "xml").exit_code == 2


def _run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AMPLIFY, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=120,
        check=False,
    )


def test_it_exits_0_1_and_2_as_a_real_process(sqlite_url: str) -> None:
    ok = _run("users", "add", "a@example.org", "--role", "admin", stdin=PASSWORD + "\n")
    assert ok.returncode == 0, ok.stderr
    user_error = _run("users", "add", "a@example.org", "--role", "admin", stdin=PASSWORD + "\n")
    assert user_error.returncode == 1
    assert "already signs in as a@example.org" in user_error.stderr
    assert "Traceback" not in user_error.stderr
    usage = _run("users", "add", "--role", "wizard")
    assert usage.returncode == 2
    listed = _run("users", "list")
    assert listed.returncode == 0 and "a@example.org" in listed.stdout


def test_it_connects_a_sandbox_account_and_tests_it(people: str) -> None:
    added = invoke("accounts", "add", "--platform", "sandbox", "--handle", "practice")
    assert added.exit_code == 0, added.output
    assert "nothing is really posted" in added.stdout
    with session_scope(people) as s:
        account = s.scalars(select(Account).where(Account.handle == "practice")).one()
    tested = invoke("accounts", "test", str(account.id))
    assert tested.exit_code == 0, tested.output
    assert "signs in as practice" in tested.stdout
    listed = invoke("accounts", "list")
    assert "sandbox:practice" in listed.stdout and "practice network" in listed.stdout


def test_it_says_plainly_why_an_account_cannot_sign_in(people: str) -> None:
    added = invoke("accounts", "add", "--platform", "sandbox", "--handle", "fail-auth-demo")
    assert added.exit_code == 0, added.output
    with session_scope(people) as s:
        account_id = s.scalars(select(Account.id).where(Account.handle == "fail-auth-demo")).one()
    tested = invoke("accounts", "test", str(account_id))
    assert tested.exit_code == 1
    assert "sandbox:fail-auth-demo cannot sign in" in tested.stderr
    assert "refused the sign-in" in tested.stderr
    assert "Traceback" not in tested.output
    with session_scope(people) as s:
        account = s.get(Account, account_id)
        assert account is not None and account.status == "needs_attention"
    assert "needs_attention" in invoke("accounts", "list").stdout


def test_it_reads_mastodon_and_x_credentials_from_stdin_and_stores_them_sealed(
    people: str,
) -> None:
    token = "mastodon-token-abcdef123456"
    added = invoke(
        "accounts",
        "add",
        "--platform",
        "mastodon",
        "--handle",
        "team",
        "--service-url",
        "https://mastodon.example",
        input=token + "\n",
    )
    assert added.exit_code == 0, added.output
    x_lines = "key1\nsecret1\ntoken1\ntokensecret1\n"
    x = invoke("accounts", "add", "--platform", "x", "--handle", "team", input=x_lines)
    assert x.exit_code == 0, x.output
    with session_scope(people) as s:
        rows = {a.platform: a.credentials_enc for a in s.scalars(select(Account))}
    assert token not in rows["mastodon"] and "secret1" not in rows["x"]
    from amplify.crypto import decrypt_json

    assert decrypt_json(rows["x"]) == {
        "api_key": "key1",
        "api_secret": "secret1",
        "access_token": "token1",
        "access_token_secret": "tokensecret1",
    }
    bad = invoke("accounts", "add", "--platform", "x", "--handle", "other", input="only-one\n")
    assert bad.exit_code == 1 and "only-one" not in bad.output


def test_it_connects_an_x_account_on_the_plan_the_chapter_pays_for(people: str) -> None:
    lines = "key1\nsecret1\ntoken1\ntokensecret1\n"
    args = ("accounts", "add", "--platform", "x", "--handle", "chapter", "--x-plan")
    added = invoke(*args, "basic", input=lines)
    assert added.exit_code == 0, added.output
    with session_scope(people) as s:
        account = s.scalars(select(Account).where(Account.handle == "chapter")).one()
        assert account.options == {"x_plan": "basic"}
    wrong = invoke(*args[:-3], "--handle", "other", "--x-plan", "gold", input=lines)
    assert wrong.exit_code == 1
    assert "'gold' is not an X API plan" in wrong.output and "free, basic, pro" in wrong.output


def test_it_refuses_an_unknown_platform_as_usage(people: str) -> None:
    result = invoke("accounts", "add", "--platform", "myspace", "--handle", "x")
    assert result.exit_code == 2


class FakeWorker:
    """Claims in bursts, as a real worker does when one account has many posts due."""

    def __init__(self, bursts: list[int]) -> None:
        self.bursts = bursts
        self.calls = 0

    def run_once(self, *, metrics: bool = True) -> dict[str, object]:
        claimed = self.bursts[self.calls] if self.calls < len(self.bursts) else 0
        self.calls += 1
        return {
            "worker_id": "w",
            "claimed": claimed,
            "reconciled": 0,
            "outcomes": {"published": claimed} if claimed else {},
        }


def test_it_repeats_run_once_until_nothing_is_left_to_claim() -> None:
    fake = FakeWorker([1, 3, 2])
    total = cli.drain(fake)
    assert fake.calls == 4
    assert total["claimed"] == 6 and total["outcomes"] == {"published": 6}
    assert total["rounds"] == 4


def test_it_runs_a_named_worker_that_skips_metrics_readings(people: str, tmp_path: Path) -> None:
    path = csv_file(tmp_path, "Due,sandbox:team.sandbox,now,,,,\n")
    assert (
        invoke("posts", "import", str(path), "--as", "lead@example.org", "--approve").exit_code == 0
    )
    worked = invoke("worker", "--once", "--no-metrics", "--worker-id", "night-shift")
    assert worked.exit_code == 0, worked.output
    summary = json.loads(worked.stdout)
    assert summary["worker_id"] == "night-shift"
    assert summary["outcomes"] == {"published": 1}
    assert "metrics" not in summary
    with session_scope(people) as s:
        assert s.get(WorkerHeartbeat, "night-shift") is not None


def test_it_publishes_then_sweeps_metrics_and_reports_reach(people: str, tmp_path: Path) -> None:
    path = csv_file(tmp_path, "Due,sandbox:team.sandbox,now,,,,\n")
    assert (
        invoke("posts", "import", str(path), "--as", "lead@example.org", "--approve").exit_code == 0
    )
    worked = invoke("worker", "--once", "--concurrency", "2")
    assert worked.exit_code == 0, worked.output
    assert json.loads(worked.stdout)["outcomes"] == {"published": 1}

    swept = invoke("metrics", "sweep", "--all")
    assert swept.exit_code == 0, swept.output
    assert json.loads(swept.stdout)["snapshots"] == 1

    reach = invoke("report", "reach", "--format", "json")
    assert reach.exit_code == 0, reach.output
    with session_scope(people) as s:
        post_id = s.scalars(select(Post.id)).one()
    assert [r["post_id"] for r in json.loads(reach.stdout)] == [post_id]
    as_csv = invoke("report", "reach", "--format", "csv").stdout
    (row,) = list(csv.DictReader(io.StringIO(as_csv)))
    assert row["post_id"] == str(post_id)
    assert isinstance(json.loads(row["delivery_details"]), list)  # nested values stay JSON


def test_it_builds_the_demo_in_its_own_file_and_never_over_a_real_one(
    people: str, tmp_path: Path
) -> None:
    target = tmp_path / "practice" / "demo.db"
    built = invoke("demo", "--path", str(target))
    assert built.exit_code == 0, built.output
    assert target.exists() and "password (demo only)" in built.stdout
    real = people.split("///", 1)[1]
    refused = invoke("demo", "--path", real)
    assert refused.exit_code == 1
    assert "already holds a real workspace" in refused.stderr


def test_it_says_to_upgrade_when_the_database_has_no_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from amplify.config import reset_settings

    monkeypatch.setenv("AMPLIFY_DATABASE_URL", f"sqlite:///{tmp_path}/empty.db")
    reset_settings()
    result = invoke("users", "list")
    assert result.exit_code == 1
    assert "run `amplify db upgrade` first" in result.stderr
    assert "Traceback" not in result.output
