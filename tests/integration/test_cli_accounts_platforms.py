"""`amplify accounts add` + `accounts test` against each platform's test server.

X and Mastodon: the wire-level stand-ins on 127.0.0.1; Bluesky: the real local atproto
network. The credentials go in on stdin exactly as the README tells an admin to paste them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from amplify.cli import app
from amplify.db import session_scope
from amplify.models import Account
from tests.fakes.mastodon_server import FakeMastodonServer
from tests.fakes.x_server import XFakeServer

runner = CliRunner()


def invoke(*args: str, input: str | None = None) -> Result:
    return runner.invoke(app, list(args), input=input)


@pytest.fixture
def admin(sqlite_url: str) -> str:
    made = invoke(
        "users", "add", "admin@example.org", "--role", "admin", input="correct horse battery\n"
    )
    assert made.exit_code == 0, made.output
    return sqlite_url


@pytest.fixture
def x_server() -> Iterator[XFakeServer]:
    with XFakeServer() as server:
        yield server


def _account_id(url: str, platform: str, handle: str) -> int:
    with session_scope(url) as s:
        return s.scalars(
            select(Account.id).where(Account.platform == platform, Account.handle == handle)
        ).one()


def test_it_connects_and_tests_an_x_account(admin: str, x_server: XFakeServer) -> None:
    x_server.state.add_user("chapter", followers=321, token="access-1")
    added = invoke(
        "accounts",
        "add",
        "--platform",
        "x",
        "--handle",
        "chapter",
        "--service-url",
        x_server.url,
        input="api-key\napi-secret\naccess-1\naccess-secret\n",
    )
    assert added.exit_code == 0, added.output
    tested = invoke("accounts", "test", str(_account_id(admin, "x", "chapter")))
    assert tested.exit_code == 0, tested.output
    assert "signs in as chapter" in tested.stdout and "321" in tested.stdout


def test_it_says_why_a_revoked_x_token_cannot_sign_in(admin: str, x_server: XFakeServer) -> None:
    x_server.state.add_user("chapter", token="access-1")
    x_server.state.revoked.add("access-1")
    invoke(
        "accounts",
        "add",
        "--platform",
        "x",
        "--handle",
        "chapter",
        "--service-url",
        x_server.url,
        input="k\ns\naccess-1\nts\n",
    )
    tested = invoke("accounts", "test", str(_account_id(admin, "x", "chapter")))
    assert tested.exit_code == 1
    assert "cannot sign in" in tested.stderr and "access-1" not in tested.output
    assert "Traceback" not in tested.output


def test_it_connects_and_tests_a_mastodon_account(admin: str) -> None:
    with FakeMastodonServer() as server:
        added = invoke(
            "accounts",
            "add",
            "--platform",
            "mastodon",
            "--handle",
            "amplify",
            "--service-url",
            server.url,
            input="test-token\n",
        )
        assert added.exit_code == 0, added.output
        account_id = _account_id(admin, "mastodon", "amplify")
        tested = invoke("accounts", "test", str(account_id))
        assert tested.exit_code == 0, tested.output
        assert "signs in as amplify" in tested.stdout
        wrong = invoke(
            "accounts",
            "add",
            "--platform",
            "mastodon",
            "--handle",
            "other",
            "--service-url",
            server.url,
            input="not-a-token\n",
        )
        assert wrong.exit_code == 0, wrong.output
        refused = invoke("accounts", "test", str(_account_id(admin, "mastodon", "other")))
        assert refused.exit_code == 1
        assert "cannot sign in" in refused.stderr and "not-a-token" not in refused.output


@pytest.mark.atproto
def test_it_connects_and_tests_a_bluesky_account(admin: str, atproto_network) -> None:
    team = atproto_network.create_account("clichapter")
    atproto_network.process_all()
    added = invoke(
        "accounts",
        "add",
        "--platform",
        "bluesky",
        "--handle",
        team.handle,
        "--service-url",
        atproto_network.pds_url,
        input=team.app_password + "\n",
    )
    assert added.exit_code == 0, added.output
    tested = invoke("accounts", "test", str(_account_id(admin, "bluesky", team.handle)))
    assert tested.exit_code == 0, tested.output
    assert f"signs in as {team.handle}" in tested.stdout
    invoke(
        "accounts",
        "add",
        "--platform",
        "bluesky",
        "--handle",
        "nobody.test",
        "--service-url",
        atproto_network.pds_url,
        input="wrong-app-password\n",
    )
    refused = invoke("accounts", "test", str(_account_id(admin, "bluesky", "nobody.test")))
    assert refused.exit_code == 1
    assert "cannot sign in" in refused.stderr and "wrong-app-password" not in refused.output
