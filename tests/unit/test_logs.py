import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from amplify.config import Settings, reset_settings
from amplify.db import session_factory
from amplify.logs import RedactingFilter, configure, redact
from amplify.models import Account, utcnow
from amplify.worker import Worker
from connectors.base import Connector, ConnectorContext
from tests import memory_connector as memory
from tests.factories import make_account, make_delivery, make_post

ROOT = Path(__file__).resolve().parents[2]


def test_it_masks_bearer_tokens_and_oauth_parameters():
    line = 'Authorization: Bearer abc.def.ghi oauth_token="tok123", oauth_signature=sig%3D'
    cleaned = redact(line)
    assert "abc.def.ghi" not in cleaned and "tok123" not in cleaned and "sig%3D" not in cleaned
    assert cleaned.count("[redacted]") == 3


def test_it_masks_passwords_in_json_like_text():
    cleaned = redact('{"identifier": "chapter.test", "password": "hunter2-app-pw"}')
    assert "hunter2-app-pw" not in cleaned
    assert "chapter.test" in cleaned


def test_it_holds_libraries_that_print_secrets_at_warning(caplog):
    configure(logging.DEBUG)
    assert logging.getLogger("oauthlib").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("amplify").getEffectiveLevel() == logging.DEBUG


def test_it_keeps_the_web_servers_access_log_with_its_sign_in_handoffs_quiet():
    # Streamlit's st.App (make run) logs every request through uvicorn.access at INFO,
    # including /auth/session?h=<one-time sign-in handoff>.
    access = logging.getLogger("uvicorn.access")
    access.setLevel(logging.INFO)
    configure(logging.DEBUG)
    assert not access.isEnabledFor(logging.INFO)
    assert access.isEnabledFor(logging.WARNING)


def test_it_filters_records_before_they_are_written():
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "token %s", ("access_token=s3cret",), None
    )
    RedactingFilter().filter(record)
    assert "s3cret" not in record.getMessage()


# --------------------------------------------------------------------------- quiet by default


@pytest.fixture
def fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    reset_settings()
    yield monkeypatch
    reset_settings()
    configure()


def test_it_keeps_the_scheduler_at_warning_and_amplify_at_info_by_default(
    fresh_settings: pytest.MonkeyPatch,
) -> None:
    fresh_settings.delenv("AMPLIFY_LOG_LEVEL", raising=False)
    configure()
    assert logging.getLogger("apscheduler.executors.default").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("amplify.worker").getEffectiveLevel() == logging.INFO
    assert logging.getLogger("connectors.x").getEffectiveLevel() == logging.INFO


def test_amplify_log_level_turns_amplify_up_but_never_the_libraries(
    fresh_settings: pytest.MonkeyPatch,
) -> None:
    fresh_settings.setenv("AMPLIFY_LOG_LEVEL", "debug")
    configure()
    assert logging.getLogger("amplify.worker").getEffectiveLevel() == logging.DEBUG
    assert logging.getLogger("apscheduler").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("urllib3").getEffectiveLevel() == logging.WARNING


def test_it_names_a_log_level_it_does_not_know(fresh_settings: pytest.MonkeyPatch) -> None:
    fresh_settings.setenv("AMPLIFY_LOG_LEVEL", "chatty")
    with pytest.raises(ValidationError, match="AMPLIFY_LOG_LEVEL='chatty' is not a log level"):
        Settings()


def test_the_worker_logs_one_line_per_publish_without_the_text(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    memory.reset()
    factory = session_factory(sqlite_url)
    with factory() as s:
        acct = make_account(s, platform="sandbox", handle="chapter.sandbox")
        post = make_post(s, body="A secret-ish story body that must stay out of logs.")
        d = make_delivery(s, post=post, account=acct, next_attempt_at=utcnow())
        s.commit()
    caplog.set_level(logging.INFO, logger="amplify")

    def as_memory(account: Account) -> Connector:
        return memory.MemoryConnector(
            ConnectorContext(handle=account.handle, service_url="", credentials={})
        )

    Worker(concurrency=1, connector_for=as_memory).run_once(metrics=False)
    memory.reset()
    lines = [r.getMessage() for r in caplog.records if r.name == "amplify.worker"]
    assert f"delivery {d.id} (post to sandbox chapter.sandbox): published" in lines
    assert not any("secret-ish" in r.getMessage() for r in caplog.records)


def test_the_embedded_worker_stops_before_python_closes_its_thread_pools(
    sqlite_url: str, tmp_path: Path
) -> None:
    """A plain atexit hook ran after concurrent.futures refused new work: the scheduler's
    last tick failed with a traceback at every Ctrl-C of `streamlit run`."""
    script = tmp_path / "probe.py"
    script.write_text(
        textwrap.dedent(
            """
            import concurrent.futures.thread as pools
            from amplify import embedded

            worker = embedded.ensure_started()
            real_stop = worker.stop

            def probe(*args, **kwargs):
                print("pools closed" if pools._shutdown else "pools open", flush=True)
                real_stop(*args, **kwargs)

            worker.stop = probe
            """
        )
    )
    env = dict(
        os.environ, AMPLIFY_DATABASE_URL=sqlite_url, AMPLIFY_EMBEDDED_WORKER="true", PYTHONPATH="."
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "pools open"
    assert "Traceback" not in done.stderr, done.stderr
