"""End to end in a real browser: a volunteer shares, a lead approves, the worker publishes.

Drives Debian's /usr/bin/chromium through Playwright (never a downloaded browser) against
`streamlit run app.py` started as a subprocess on a free local port, with a fresh SQLite
database and the embedded worker on. Publishing goes to the sandbox (practice network), so
nothing leaves this machine. Screenshots of every page land in tests/artifacts/.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from amplify import db as amplify_db
from amplify import users
from amplify.config import reset_settings
from amplify.crypto import encrypt_json
from amplify.migrate import upgrade
from amplify.models import Account, Delivery, Post, User

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct horse battery"
STORY = "Volunteers screened 212 neighbours for diabetes at the Eastside fair this weekend."


def _need_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    message = (
        f"{CHROMIUM} is missing: install Debian's chromium with "
        "`sudo bash scripts/ensure-chromium.sh` (or `sudo apt-get install chromium`)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"streamlit exited early:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"streamlit did not become healthy:\n{log.read_text()[-3000:]}")


def _seed(url: str) -> dict[str, int]:
    """Three people and one practice account, as an admin would have set them up."""
    factory = amplify_db.session_factory(url)
    with factory() as s, s.begin():
        admin = users.create_user(
            s, None, email="admin@example.org", name="Ada Admin", role="admin", password=PASSWORD
        )
        s.flush()
        lead = users.create_user(
            s, admin, email="lead@example.org", name="Lee Lead", role="lead", password=PASSWORD
        )
        vol = users.create_user(
            s,
            admin,
            email="vol@example.org",
            name="Val Volunteer",
            role="volunteer",
            password=PASSWORD,
        )
        acct = Account(
            platform="sandbox", handle="chapter.sandbox", credentials_enc=encrypt_json({})
        )
        s.add(acct)
        s.flush()
        return {"admin": admin.id, "lead": lead.id, "volunteer": vol.id, "account": acct.id}


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    _need_chromium()
    db_path = tmp_path / "e2e.db"
    url = f"sqlite:///{db_path}"
    monkeypatch.setenv("AMPLIFY_DATABASE_URL", url)
    reset_settings()
    upgrade(url)
    env = {
        **os.environ,
        "AMPLIFY_DATABASE_URL": url,
        "AMPLIFY_EMBEDDED_WORKER": "true",
        "AMPLIFY_DATA_DIR": os.environ["AMPLIFY_DATA_DIR"],
        "AMPLIFY_SECRET_KEY": os.environ["AMPLIFY_SECRET_KEY"],
    }
    port = _free_port()
    log = tmp_path / "streamlit.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "app.py",
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, proc, log)
        yield base, url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        amplify_db.dispose_all()


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(400)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _idle(page) -> None:
    """Wait until Streamlit has finished the current run."""
    page.wait_for_timeout(300)
    page.wait_for_selector("[data-testid='stStatusWidget']", state="detached", timeout=30_000)


def _sign_in(browser, base: str, email: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(base)
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Sign out").wait_for(timeout=30_000)
    _idle(page)
    return context, page


def _open(page, title: str) -> None:
    page.get_by_role("link", name=title, exact=True).first.click()
    page.get_by_role("heading", name=title).first.wait_for(timeout=30_000)
    _idle(page)


def _published(url: str, timeout: float = 90) -> Delivery:
    factory = amplify_db.session_factory(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with factory() as s:
            d = s.scalar(select(Delivery))
            if d is not None and d.status == "published":
                s.expunge(d)
                return d
        time.sleep(0.5)
    raise AssertionError("the embedded worker did not publish the approved story in time")


def test_it_takes_a_story_from_a_volunteer_to_the_practice_network(
    server: tuple[str, str],
) -> None:
    from playwright.sync_api import sync_playwright

    base, url = server
    people = _seed(url)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            # 1. The sign-in screen, then a volunteer shares a story.
            ctx, page = browser.new_context(viewport={"width": 1400, "height": 900}), None
            page = ctx.new_page()
            page.goto(base)
            page.get_by_role("heading", name="Sign in to Amplify").wait_for(timeout=30_000)
            _shot(page, "01-sign-in")
            ctx.close()

            vctx, vol = _sign_in(browser, base, "vol@example.org")
            vol.get_by_role("heading", name="Share a story").wait_for()
            vol.get_by_label("Your story").fill(STORY)
            vol.get_by_label("Your story").press("Control+Enter")
            _idle(vol)
            vol.get_by_text("How it will look").wait_for()
            _shot(vol, "02-share-a-story")
            vol.get_by_role("button", name="Submit for review").click()
            vol.get_by_text("is with the leads for review").wait_for(timeout=30_000)
            _idle(vol)
            factory = amplify_db.session_factory(url)
            with factory() as s:
                post = s.scalar(select(Post))
                assert post is not None and post.state == "submitted"
                assert post.target_platforms == ["sandbox"]
                post_id = post.id
            _open(vol, "My stories")
            vol.get_by_text("Waiting for review (1)").wait_for()
            _shot(vol, "03-my-stories-submitted")

            # 2. A volunteer who opens the lead's page by URL is refused.
            # (A reload starts a new Streamlit session, so the sign-in screen comes first.)
            vol.goto(f"{base}/review")
            vol.get_by_label("Email", exact=True).fill("vol@example.org")
            vol.get_by_label("Password", exact=True).fill(PASSWORD)
            vol.get_by_role("button", name="Sign in").click()
            vol.get_by_text("Only leads and admins can approve stories.").wait_for(timeout=30_000)
            _shot(vol, "04-volunteer-refused-review")

            # 3. The lead approves it for now on the sandbox account.
            lctx, lead = _sign_in(browser, base, "lead@example.org")
            _open(lead, "Review")
            lead.get_by_text(f"#{post_id}").first.wait_for()
            _shot(lead, "05-review")
            lead.get_by_role("button", name="Approve", exact=True).click()
            lead.get_by_text(f"Story #{post_id} approved").wait_for(timeout=30_000)
            _idle(lead)
            _shot(lead, "06-review-approved")

            # 4. The embedded worker publishes it to the practice network.
            delivery = _published(url)
            assert delivery.account_id == people["account"]
            assert delivery.remote_uri and delivery.remote_uri.startswith("sandbox://")

            # 5. The volunteer sees it published, with its link.
            _open(vol, "My stories")
            vol.get_by_text("Published (1)").wait_for(timeout=30_000)
            vol.get_by_text(delivery.remote_uri).first.wait_for()
            _idle(vol)
            _shot(vol, "07-my-stories-published")

            # 6. The lead's other pages, including Reach showing the story.
            _open(lead, "Calendar")
            _shot(lead, "08-calendar")
            _open(lead, "System")
            lead.get_by_text("worker(s) alive").wait_for(timeout=30_000)
            _shot(lead, "09-system")
            _open(lead, "Activity")
            _shot(lead, "10-activity")
            if (ROOT / "amplify/ui/pages/reach.py").exists():
                _open(lead, "Reach")
                metric = lead.locator("[data-testid='stMetric']", has_text="Stories published")
                metric.first.wait_for(timeout=30_000)
                value = metric.first.locator("[data-testid='stMetricValue']").inner_text()
                assert value.strip() == "1", f"Reach shows {value!r} stories published"
                _shot(lead, "11-reach")
            with factory() as s:
                assert s.get(Post, post_id).state == "published"  # type: ignore[union-attr]

            # 7. The admin's pages.
            actx, admin = _sign_in(browser, base, "admin@example.org")
            _open(admin, "Accounts")
            admin.get_by_text("chapter.sandbox").first.wait_for()
            _shot(admin, "12-accounts")
            _open(admin, "Team & settings")
            _shot(admin, "13-team")
            _open(admin, "Amplify")
            _shot(admin, "14-amplify")
            for c in (vctx, lctx, actx):
                c.close()
        finally:
            browser.close()
    with amplify_db.session_factory(url)() as s:
        assert s.scalar(select(User).where(User.email == "vol@example.org")) is not None
