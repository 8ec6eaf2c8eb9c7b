"""The secret key: never silently replaced, a wrong or damaged one named, kept private."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select
from typer.testing import CliRunner

from amplify import crypto
from amplify.cli import app
from amplify.config import get_settings, reset_settings
from amplify.db import session_scope
from amplify.errors import ConfigError
from amplify.models import Account, AccountStatus, AuditEvent, NotificationChannel, Setting

runner = CliRunner()


@pytest.fixture
def key_file(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No AMPLIFY_SECRET_KEY: the key lives in data/secret.key, as in a real install."""
    monkeypatch.delenv("AMPLIFY_SECRET_KEY")
    reset_settings()
    return get_settings().key_file


def _connect_account(url: str) -> None:
    with session_scope(url) as s:
        s.add(
            Account(
                platform="mastodon",
                handle="team",
                service_url="https://social.example",
                credentials_enc=crypto.encrypt_json({"access_token": "secret-token"}),
            )
        )


def test_it_makes_a_private_key_file_for_the_first_credential(key_file: Path, sqlite_url) -> None:
    assert not key_file.exists()
    _connect_account(sqlite_url)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    crypto.verify_key()  # the key it made opens what it sealed


def test_it_refuses_to_start_without_the_key_instead_of_making_a_new_one(
    key_file: Path, sqlite_url: str
) -> None:
    _connect_account(sqlite_url)
    key_file.unlink()
    with pytest.raises(ConfigError) as refused:
        crypto.verify_key()
    message = str(refused.value)
    assert str(key_file) in message and "backup" in message
    assert "amplify accounts reset-credentials" in message
    with pytest.raises(ConfigError, match="is missing"):
        crypto.encrypt("a new credential")  # a later save must not make a key either
    assert not key_file.exists()


def test_it_tells_a_wrong_key_from_an_empty_workspace(key_file: Path, sqlite_url: str) -> None:
    _connect_account(sqlite_url)
    crypto.verify_key()  # stores the check value
    with session_scope(sqlite_url, readonly=True) as s:
        assert s.get(Setting, crypto.CHECK_SETTING) is not None
    key_file.write_bytes(Fernet.generate_key())
    with pytest.raises(ConfigError, match="is not the key the stored credentials were sealed"):
        crypto.verify_key()


def test_it_recognises_a_wrong_key_in_a_workspace_without_a_check_value(
    key_file: Path, sqlite_url: str
) -> None:
    _connect_account(sqlite_url)  # sealed, but no check value stored yet (an older install)
    key_file.write_bytes(Fernet.generate_key())
    with pytest.raises(ConfigError, match="is not the key"):
        crypto.verify_key()


def test_it_accepts_a_new_key_while_nothing_is_sealed(key_file: Path, sqlite_url: str) -> None:
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_bytes(Fernet.generate_key())
    crypto.verify_key()
    key_file.write_bytes(Fernet.generate_key())
    crypto.verify_key()  # no credentials anywhere: nothing to lose, the check value moves on


def test_it_names_a_damaged_key_file_as_the_culprit(key_file: Path, sqlite_url: str) -> None:
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_bytes(b"not a key at all")
    key_file.chmod(0o600)
    with pytest.raises(ConfigError) as refused:
        crypto.encrypt("x")
    assert str(key_file) in str(refused.value) and "damaged" in str(refused.value)
    assert "AMPLIFY_SECRET_KEY" not in str(refused.value)


def test_it_tightens_a_key_file_others_can_read(
    key_file: Path, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_bytes(Fernet.generate_key())
    key_file.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        crypto.decrypt(crypto.encrypt("x"))
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert "readable by other users" in caplog.text


def test_the_cli_refuses_to_run_then_recovers_with_reset_credentials(
    key_file: Path, sqlite_url: str
) -> None:
    _connect_account(sqlite_url)
    with session_scope(sqlite_url) as s:
        s.add(NotificationChannel(label="Chat", url_enc=crypto.encrypt("json://x"), audiences=[]))
    key_file.unlink()
    refused = runner.invoke(app, ["accounts", "list"])
    assert refused.exit_code == 1 and str(key_file) in refused.output
    assert runner.invoke(app, ["accounts", "reset-credentials"]).exit_code == 1  # needs --yes
    reset = runner.invoke(app, ["accounts", "reset-credentials", "--yes"])
    assert reset.exit_code == 0, reset.output
    assert "Reset 1 account(s)" in reset.output and "Removed 1 notification" in reset.output
    assert runner.invoke(app, ["accounts", "list"]).exit_code == 0
    with session_scope(sqlite_url, readonly=True) as s:
        account = s.scalars(select(Account)).one()
        assert account.status == AccountStatus.NEEDS_ATTENTION
        assert crypto.decrypt_json(account.credentials_enc) == {}
        assert s.scalars(select(NotificationChannel)).all() == []
        (event,) = s.scalars(select(AuditEvent).where(AuditEvent.action == "credentials.reset"))
        assert event.detail == {"accounts": 1, "channels_removed": 1}


def test_the_worker_refuses_to_start_without_the_key(key_file: Path, sqlite_url: str) -> None:
    _connect_account(sqlite_url)
    key_file.unlink()
    refused = runner.invoke(app, ["worker", "--once", "--no-metrics"])
    assert refused.exit_code == 1
    assert str(key_file) in refused.output
