"""The dashboard refuses to start with a lost secret key, and says where it belongs."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from uikit import APP

from amplify import crypto
from amplify.config import get_settings, reset_settings
from amplify.db import session_scope
from amplify.models import Account


def test_the_dashboard_names_the_missing_key_file_instead_of_starting(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AMPLIFY_SECRET_KEY")
    reset_settings()
    with session_scope(sqlite_url) as s:
        s.add(Account(platform="sandbox", handle="team", credentials_enc=crypto.encrypt_json({})))
    key_file: Path = get_settings().key_file
    key_file.unlink()
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception, [e.value for e in at.exception]
    (error,) = at.error
    assert "Amplify cannot start" in error.value and str(key_file) in error.value
    assert "amplify accounts reset-credentials" in error.value
