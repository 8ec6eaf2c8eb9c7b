"""Every role's whole job in a real browser: the journeys of issue 8, each from sign-in to done.

Drives Debian's /usr/bin/chromium through Playwright (never a downloaded browser) against
`streamlit run app.py` started as a subprocess on a free local port, with a temporary SQLite
database and the embedded worker on. Publishing goes to the sandbox (the practice network),
so nothing leaves this machine. Every page a journey passes is photographed to
tests/artifacts/<journey>-<nn>-<step>.png.

Two servers serve the module: an empty workspace for the admin's set-up, and a team
workspace (admin, lead, volunteers, an advocate, a practice account with posting slots) for
the other journeys, each of which seeds what it needs itself.

Robustness: steps wait for Streamlit's own run state (``data-test-script-state`` on the app
root, counted by a small observer) and find things by role and label, never by sleeping.
In CI (CI=true) a missing chromium fails; elsewhere it skips with the command to install it.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from amplify import db as amplify_db
from amplify.config import get_settings, reset_settings
from amplify.migrate import upgrade
from amplify.models import Account, Delivery, Post, User, utcnow

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
PASSWORD = "violet tugboat marmalade 42"
EVIL_CAMPAIGN = "**bold** :red[red] [link](http://evil.example)"
WAIT = 30_000  # ms: the longest any single step may take
# What `make run` starts: the server that also sets the sign-in cookie, else the bare app.
ENTRY = "amplify/ui/server.py" if (ROOT / "amplify/ui/server.py").is_file() else "app.py"

# Counts how often Streamlit starts a run, so a step can wait for *its* run to finish.
RUN_COUNTER = """
window.__amplifyRuns = 0;
new MutationObserver((records) => {
  for (const r of records) {
    if (r.target.getAttribute('data-test-script-state') === 'running' && r.oldValue !== 'running')
      window.__amplifyRuns += 1;
  }
}).observe(document, {attributes: true, subtree: true, attributeOldValue: true,
                      attributeFilter: ['data-test-script-state']});
"""
IDLE = (
    "() => { const app = document.querySelector('[data-testid=stApp]');"
    " return !!app && app.getAttribute('data-test-script-state') === 'notRunning'; }"
)


# --------------------------------------------------------------------------- servers


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


@dataclass
class World:
    """One running dashboard: its address, database and environment."""

    base: str
    url: str
    env: dict[str, str]
    ids: dict[str, int] = field(default_factory=dict)
    log: Path | None = None

    def log_tail(self) -> str:
        """The end of the server's output (where Streamlit writes a page's traceback)."""
        return self.log.read_text(errors="replace")[-4000:] if self.log else ""

    @contextmanager
    def settings(self) -> Iterator[None]:
        """This process reads and writes the server's database, key and data folder."""
        keys = ("AMPLIFY_DATABASE_URL", "AMPLIFY_DATA_DIR", "AMPLIFY_SECRET_KEY")
        saved = {k: os.environ.get(k) for k in keys}
        os.environ.update({k: self.env[k] for k in keys})
        reset_settings()
        try:
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            reset_settings()

    def session(self) -> Any:
        return amplify_db.session_factory(self.url)()

    def wait_for(self, what: str, check: Callable[[Any], Any], timeout: float = 60) -> Any:
        """Poll the database until ``check(session)`` returns something truthy."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.session() as s:
                found = check(s)
                if found:
                    return found
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}")


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
            time.sleep(0.2)
    raise AssertionError(f"streamlit did not become healthy:\n{log.read_text()[-3000:]}")


@contextmanager
def _server(folder: Path, seed: Callable[[World], None] | None) -> Iterator[World]:
    folder.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{folder / 'e2e.db'}"
    env = {
        **os.environ,
        "AMPLIFY_DATABASE_URL": url,
        "AMPLIFY_DATA_DIR": str(folder / "data"),
        "AMPLIFY_SECRET_KEY": Fernet.generate_key().decode(),
        "AMPLIFY_EMBEDDED_WORKER": "true",
    }
    world = World(base="", url=url, env=env)
    with world.settings():
        upgrade(url)
        if seed is not None:
            seed(world)
    amplify_db.dispose_all()
    port = _free_port()
    log = folder / "streamlit.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                ENTRY,
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
    world.base = f"http://127.0.0.1:{port}"
    world.log = log
    try:
        _wait_healthy(world.base, proc, log)
        yield world
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        amplify_db.dispose_all()


def _seed_team(world: World) -> None:
    """What an admin would have set up: people of each role and a practice account with
    posting slots every day, so "next open slot" is always within a day."""
    from amplify import campaigns, slots, users
    from amplify.crypto import encrypt_json

    with world.session() as s, s.begin():
        admin = users.create_user(
            s, None, email="admin@example.org", name="Ada Admin", role="admin", password=PASSWORD
        )
        s.flush()
        made = {"admin": admin.id}
        for key, email, name, role in (
            ("lead", "lead@example.org", "Lee Lead", "lead"),
            ("volunteer", "vol@example.org", "Val Volunteer", "volunteer"),
            ("writer", "writer@example.org", "Wren Writer", "volunteer"),
            ("advocate", "adv@example.org", "Avery Advocate", "volunteer"),
        ):
            person = users.create_user(
                s, admin, email=email, name=name, role=role, password=PASSWORD
            )
            s.flush()
            made[key] = person.id
        org = Account(
            platform="sandbox", handle="chapter.sandbox", credentials_enc=encrypt_json({})
        )
        s.add(org)
        s.flush()
        days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        slots.set_slots(s, admin, org.id, [f"{d} {h:02d}:00" for d in days for h in (9, 13, 18)])
        camp = campaigns.create_campaign(s, admin, name=EVIL_CAMPAIGN)
        made.update(org=org.id, campaign=camp.id)
    world.ids.update(made)


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    _need_chromium()
    with _server(tmp_path_factory.mktemp("team"), _seed_team) as world:
        yield world


@pytest.fixture(scope="module")
def empty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    _need_chromium()
    with _server(tmp_path_factory.mktemp("empty"), None) as world:
        yield world


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


# --------------------------------------------------------------------------- a person at a browser


class Person:
    """One browser context (its own cookies) driving the dashboard, photographing each page."""

    def __init__(self, browser: Any, world: World, journey: str) -> None:
        self.world = world
        self.journey = journey
        self.shots = 0
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.context.add_init_script(RUN_COUNTER)
        self.page = self.context.new_page()
        self.page.set_default_timeout(WAIT)

    # -- waiting on Streamlit

    def idle(self) -> None:
        self.page.wait_for_function(IDLE, timeout=WAIT)

    def act(self, action: Callable[[], Any]) -> None:
        """Do something that makes Streamlit run the script, and wait until that run ends."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        before = self.page.evaluate("window.__amplifyRuns")
        action()
        # A run shorter than one frame may never show "running": then being idle is enough.
        with suppress(PlaywrightTimeout):
            self.page.wait_for_function(f"() => window.__amplifyRuns > {before}", timeout=2000)
        self.idle()

    def goto(self, path: str = "") -> None:
        self.page.goto(f"{self.world.base}/{path}")
        self.page.locator("[data-testid=stApp]").wait_for()
        self.idle()

    def reload(self) -> None:
        self.page.reload()
        self.page.locator("[data-testid=stApp]").wait_for()
        self.idle()

    # -- finding things

    def heading(self, text: str) -> Any:
        return self.page.get_by_role("heading", name=text).first

    def button(self, name: str, *, within: Any = None) -> Any:
        return (within or self.page).get_by_role("button", name=name, exact=True)

    def expander(self, label: str) -> Any:
        """An expander, opened."""
        box = self.page.locator("[data-testid=stExpander]").filter(has_text=label).first
        if box.locator("details[open]").count() == 0 and box.get_attribute("open") is None:
            box.locator("summary").first.click()
        return box

    def tab(self, name: str) -> None:
        """Select a tab (again: a rerun that redraws the tabs may select the first)."""
        tab = self.page.get_by_role("tab", name=name)
        if tab.get_attribute("aria-selected") != "true":
            tab.click()

    def shows(self, text: str) -> None:
        """``text`` is on the page, as text or as the value of a field or picker."""
        self.page.wait_for_function(
            # widgets.plain puts invisible word joiners (U+2060) into people's text.
            "(t) => document.body.innerText.replaceAll('\\u2060', '').includes(t) || "
            "[...document.querySelectorAll('input, textarea')].some(e => e.value.includes(t))",
            arg=text,
            timeout=WAIT,
        )

    def see(self, text: str | re.Pattern[str]) -> None:
        self.page.get_by_text(text).first.wait_for()

    def components_drawn(self) -> None:
        """Wait until every embedded component (the calendar) has drawn something."""
        for frame in self.page.locator("iframe[title]").all():
            body = frame.content_frame.locator("body")
            body.wait_for()
            self.page.wait_for_function(
                "(f) => f.contentDocument && f.contentDocument.body &&"
                " f.contentDocument.body.innerText.trim().length > 0 && f.offsetHeight > 100",
                arg=frame.element_handle(),
                timeout=WAIT,
            )

    def settle_drawing(self) -> None:
        """Charts and components redraw after a resize behind grey placeholders; a photo taken
        then shows empty boxes. Wait (a bounded while) until none is left."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        with suppress(PlaywrightTimeout):
            self.page.wait_for_function(
                "() => !document.querySelector('[data-testid^=stSkeleton]')", timeout=5000
            )

    def photo(self, step: str) -> None:
        self.shots += 1
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = f"{self.journey}-{self.shots:02d}-{step}.png"
        # Streamlit scrolls inside its main area, so the window grows to the page's height.
        height = self.page.evaluate(
            "() => Math.max(...[...document.querySelectorAll("
            "'[data-testid=stMain], [data-testid=stMainBlockContainer], section')]"
            ".map(e => e.scrollHeight), 0)"
        )
        self.page.set_viewport_size({"width": 1400, "height": min(max(int(height), 1000), 6000)})
        self.settle_drawing()
        self.page.screenshot(path=str(ARTIFACTS / name), full_page=True)
        self.page.set_viewport_size({"width": 1400, "height": 1000})

    # -- doing things

    def click(self, name: str, *, within: Any = None) -> None:
        self.act(lambda: self.button(name, within=within).click())

    def fill(self, label: str, value: str, *, within: Any = None, area: bool = False) -> None:
        """Type into a field and commit it (Enter, or Ctrl+Enter in a text area)."""
        box = (within or self.page).get_by_label(label, exact=True)
        box.fill(value)
        self.act(lambda: box.press("Control+Enter" if area else "Enter"))

    def open(self, title: str) -> None:
        """Open a page from the menu, as a person would."""
        link = self.page.get_by_role("link", name=title, exact=True).first
        more = self.page.get_by_text(re.compile(r"^View \d+ more$"))
        if not link.is_visible() and more.count():
            more.first.click()  # Streamlit folds a long menu
        self.act(lambda: link.click())
        self.heading(title).wait_for()

    def sign_in(self, email: str) -> None:
        self.goto()
        self.heading("Sign in to Amplify").wait_for()
        self.page.get_by_label("Email", exact=True).fill(email)
        self.page.get_by_label("Password", exact=True).fill(PASSWORD)
        self.act(lambda: self.button("Sign in").click())
        self.settle_sign_in()
        self.button("Sign out").wait_for()
        self.idle()

    def settle_sign_in(self) -> None:
        """Wait for the one-time trip through /auth/session that sets the HttpOnly cookie and
        reloads the page; a click made during that reload would be lost."""
        deadline = time.monotonic() + WAIT / 1000
        while not any(c["name"] == "amplify_sid" for c in self.context.cookies()):
            assert time.monotonic() < deadline, "the browser never got its session cookie"
            self.page.wait_for_timeout(100)
        self.page.wait_for_url(lambda u: "/auth/" not in u)
        self.page.wait_for_load_state("load")
        self.page.locator("[data-testid=stApp]").wait_for()
        self.idle()

    def signed_in(self) -> bool:
        return self.button("Sign out").count() > 0

    def close(self) -> None:
        self.context.close()


@contextmanager
def person(browser: Any, world: World, journey: str) -> Iterator[Person]:
    p = Person(browser, world, journey)
    try:
        yield p
    except BaseException:
        p.photo("FAILED")  # what the page looked like when the step gave up
        raise
    finally:
        p.close()


def _card(p: Person, post_id: int) -> Any:
    """The Review card of one story (the bordered box holding its Approve button)."""
    boxes = p.page.locator("[data-testid=stVerticalBlock]").filter(
        has=p.page.get_by_text(f"#{post_id}", exact=True)
    )
    return boxes.filter(has=p.page.get_by_role("button", name="Approve", exact=True)).last


def _submitted(world: World, author: str, body: str, **fields: Any) -> int:
    """A story already submitted by ``author`` (seeded through the workflow, as Share does)."""
    from amplify import workflow

    with world.settings(), world.session() as s, s.begin():
        who = s.get(User, world.ids[author])
        post = workflow.create_draft(s, who, body=body, target_platforms=["sandbox"], **fields)
        workflow.submit(s, who, post.id)
        return post.id


# --------------------------------------------------------------------------- journeys


def test_an_admin_sets_up_a_new_workspace_until_the_checklist_is_done(
    browser: Any, empty: World
) -> None:
    with person(browser, empty, "admin-setup") as admin:
        admin.goto()
        admin.heading("Welcome to Amplify").wait_for()
        admin.photo("first-visit")
        admin.page.get_by_label("Your name", exact=True).fill("Ada Admin")
        admin.page.get_by_label("Email", exact=True).fill("ada@example.org")
        admin.page.get_by_label(re.compile(r"^Password")).first.fill(PASSWORD)
        admin.page.get_by_label("Password again", exact=True).fill(PASSWORD)
        admin.act(lambda: admin.button("Create admin and sign in").click())
        admin.settle_sign_in()
        admin.heading("Get started").wait_for()
        admin.see("0 of 4 done")
        admin.photo("checklist-empty")

        admin.open("Accounts")
        admin.tab("Sandbox (practice)")
        admin.fill("Practice handle", "chapter.sandbox")
        admin.click("Connect and test")
        admin.see(re.compile("Connected .*chapter.sandbox"))
        admin.photo("accounts-connected")

        admin.open("Team & settings")
        adding = admin.expander("Add a person")
        admin.fill("Name", "Val Volunteer", within=adding)
        admin.fill("Email", "val@example.org", within=adding)
        admin.fill("First password (they can change it)", "plum harbour kettle 77", within=adding)
        admin.click("Add person")
        admin.see("Added Val Volunteer")
        admin.photo("team-person-added")

        admin.tab("Posting slots & time zone")
        admin.fill("Slots", "mon 09:00, tue 09:00, wed 09:00, thu 09:00, fri 09:00")
        admin.tab("Posting slots & time zone")
        admin.click("Save slots")
        admin.see("Saved posting slots")
        admin.photo("team-slots")

        admin.open("Share a story")
        admin.fill("Your story", "Our first practice story: the clinic opened.", area=True)
        admin.click("Submit for review")
        admin.see("is with the leads for review")
        admin.photo("share-practice-story")

        admin.open("Review")
        admin.act(lambda: admin.page.get_by_text("Publish now", exact=True).first.click())
        admin.click("Approve")
        admin.see("approved for")
        admin.photo("review-approved")
        empty.wait_for(
            "the practice story to publish",
            lambda s: s.scalar(select(Delivery).where(Delivery.status == "published")),
        )

        admin.open("Get started")
        admin.see("4 of 4 done")
        admin.see("All set")
        admin.photo("checklist-done")
        admin.click("Done — hide this checklist")
        admin.heading("Review").wait_for()
        admin.photo("checklist-hidden")


def test_a_volunteer_writes_a_story_then_another_right_after(browser: Any, team: World) -> None:
    with person(browser, team, "volunteer-story") as vol:
        vol.sign_in("vol@example.org")
        vol.heading("Share a story").wait_for()  # volunteers land on Share
        vol.photo("lands-on-share")
        vol.fill("Your story", "Volunteers screened 212 neighbours at the fair.", area=True)
        vol.fill("Link (optional)", "https://example.org/fair")
        vol.see("How it will look")
        vol.photo("first-story-typed")
        vol.click("Submit for review")
        vol.see("is with the leads for review")
        vol.see("Write another story")
        assert vol.page.get_by_label("Your story", exact=True).input_value() == ""
        assert vol.page.get_by_label("Link (optional)", exact=True).input_value() == ""
        vol.photo("form-reset")

        # A text file named .png is refused with a message; the page keeps working.
        vol.act(
            lambda: vol.page.locator(
                "[data-testid=stFileUploader] input[type=file]"
            ).set_input_files(
                files=[{"name": "photo.png", "mimeType": "image/png", "buffer": b"not an image\n"}]
            )
        )
        vol.see(re.compile("photo.png"))
        assert vol.page.locator("[data-testid=stException]").count() == 0
        vol.photo("text-file-named-png-refused")
        vol.act(lambda: vol.page.get_by_label("Remove photo.png").first.click())
        assert vol.page.get_by_text("photo.png").count() == 0

        vol.fill("Your story", "The food bank fed 80 families on Saturday.", area=True)
        vol.click("Submit for review")
        vol.see("is with the leads for review")
        vol.photo("second-story-sent")
        with team.session() as s:
            mine = s.scalars(
                select(Post).where(Post.author_id == team.ids["volunteer"]).order_by(Post.id)
            ).all()
            assert [p.state for p in mine] == ["submitted", "submitted"]
            assert mine[0].link == "https://example.org/fair"
            assert mine[1].link is None, "the second story kept the first one's link"

        vol.open("My stories")
        vol.see("Waiting for review (2)")
        vol.photo("my-stories")

        vol.goto("review")  # the lead's page, by its address
        vol.see("Only leads and admins can approve stories.")
        vol.photo("review-refused")


def test_reloading_mid_way_keeps_people_signed_in_and_their_words(
    browser: Any, team: World
) -> None:
    with person(browser, team, "reload") as vol:
        vol.sign_in("writer@example.org")
        vol.heading("Share a story").wait_for()
        vol.fill("Your story", "Half-written: the walk raised", area=True)
        vol.photo("typing")
        vol.reload()
        vol.button("Sign out").or_(vol.heading("Sign in to Amplify")).first.wait_for()
        assert vol.signed_in(), "a reload signed the person out"
        vol.heading("Share a story").wait_for()
        vol.shows("Half-written: the walk raised")  # restored from the autosaved draft
        vol.see("We kept what you were writing")
        vol.photo("after-reload")

        other = vol.context.new_page()  # a second tab of the same browser
        other.goto(f"{team.base}/my-stories")
        other.get_by_role("button", name="Sign out", exact=True).wait_for(timeout=WAIT)
        other.close()

        vol.click("Sign out")
        vol.reload()
        vol.heading("Sign in to Amplify").wait_for()
        vol.photo("signed-out-stays-out")


def test_a_lead_fixes_a_link_schedules_in_a_slot_and_sends_one_back(
    browser: Any, team: World
) -> None:
    fix = _submitted(
        team, "writer", "The clinic's new hours start Monday.", link="https://example.org/old"
    )
    back = _submitted(team, "writer", "We did a thing (details later).")
    styled = _submitted(
        team,
        "writer",
        "See [this](http://evil.example) **now** :red[please]",
        campaign_id=team.ids["campaign"],
    )
    with person(browser, team, "lead-review") as lead:
        lead.sign_in("lead@example.org")
        lead.heading("Review").wait_for()  # leads land on Review
        lead.photo("lands-on-review")

        # People's text is shown as typed: no link is made from it.
        _card(lead, styled).wait_for()
        assert lead.page.locator("a[href*='evil.example']").count() == 0

        card = _card(lead, fix)
        card.scroll_into_view_if_needed()
        lead.fill("Link", "https://example.org/new-hours", within=card)
        card.get_by_text("Next open posting slot").wait_for()
        lead.photo("link-edited")
        lead.click("Approve", within=card)
        lead.see(f"Story #{fix} approved for")
        lead.photo("approved-into-slot")
        with team.session() as s:
            post = s.get(Post, fix)
            assert post is not None and post.state == "approved"
            assert post.link == "https://example.org/new-hours"
            # In one of the account's slots (every day at 09:00, 13:00, 18:00), ahead.
            assert post.scheduled_for is not None and post.scheduled_for > utcnow()
            with team.settings():
                tz = get_settings().tz
            local = post.scheduled_for.astimezone(tz)
            assert (local.hour, local.minute) in {(9, 0), (13, 0), (18, 0)}, local

        card = _card(lead, back)
        card.scroll_into_view_if_needed()
        lead.fill("Note for the author (needed to send it back)", "Add the details.", within=card)
        lead.click("Send back", within=card)
        lead.see(f"Story #{back} sent back to its author")
        lead.photo("sent-back")
        with team.session() as s:
            post = s.get(Post, back)
            assert post is not None and post.state == "draft"
            assert post.review_note == "Add the details."

    with person(browser, team, "lead-review-author") as writer:
        writer.sign_in("writer@example.org")
        writer.open("My stories")
        writer.see("Note from the lead: Add the details.")
        # The story and its campaign name, styled as Markdown, read exactly as typed.
        writer.shows("See [this](http://evil.example) **now** :red[please]")
        writer.shows(f"campaign: {EVIL_CAMPAIGN}")
        main = writer.page.locator("[data-testid=stMain]")
        assert main.locator("a[href*='evil.example']").count() == 0
        assert main.locator("strong", has_text=re.compile("^(bold|now)$")).count() == 0
        writer.photo("author-sees-note-and-text-as-typed")


def test_an_advocate_shares_a_published_story_from_the_amplify_page(
    browser: Any, team: World
) -> None:
    from amplify.crypto import encrypt_json
    from tests.factories import make_delivery, make_post

    with team.settings(), team.session() as s, s.begin():
        # X is reshared by the advocate's own click (no automatic reposts there).
        org_x = Account(
            platform="x",
            handle="chapter_x",
            credentials_enc=encrypt_json({}),
            service_url="http://127.0.0.1:9",  # never the internet, should anything call it
        )
        mine = Account(
            platform="x",
            handle="avery_x",
            credentials_enc=encrypt_json({}),
            service_url="http://127.0.0.1:9",
            owner_id=team.ids["advocate"],
            amplify_opt_in=True,
        )
        s.add_all([org_x, mine])
        s.flush()
        post = make_post(
            s,
            author=s.get(User, team.ids["writer"]),
            body="Blood drive: 64 donors.",
            state="published",
            amplify=True,
        )
        make_delivery(
            s,
            post=post,
            account=org_x,
            status="published",
            published_at=utcnow() - timedelta(minutes=5),
            remote_id="1790000000000000001",
            remote_url="https://x.com/chapter_x/status/1790000000000000001",
        )
    with person(browser, team, "advocate-share") as adv:
        adv.sign_in("adv@example.org")
        adv.open("Amplify")
        adv.see("Blood drive: 64 donors.")
        link = adv.page.get_by_role("link", name="Share on X")
        href = link.first.get_attribute("href") or ""
        assert "1790000000000000001" in href and href.startswith("https://"), href
        adv.photo("ready-to-share")


def test_reach_shows_a_story_once_it_is_published(browser: Any, team: World) -> None:
    from amplify import workflow

    pid = _submitted(team, "volunteer", "Reach check: the 5k walk raised 3,000 dollars.")
    with team.settings(), team.session() as s, s.begin():
        workflow.approve(
            s,
            s.get(User, team.ids["lead"]),  # type: ignore[arg-type]
            pid,
            account_ids=[team.ids["org"]],
            scheduled_for=utcnow(),
            publish_now=True,
        )
    team.wait_for(
        "the story to publish",
        lambda s: s.scalar(
            select(Delivery).where(Delivery.post_id == pid, Delivery.status == "published")
        ),
    )
    with person(browser, team, "reach") as lead:
        lead.sign_in("lead@example.org")
        lead.open("Reach")
        metric = lead.page.locator("[data-testid=stMetric]", has_text="Stories published")
        value = metric.first.locator("[data-testid=stMetricValue]").inner_text()
        assert int(value.strip()) >= 1, f"Reach shows {value!r} stories published"
        lead.shows("Reach check: the 5k walk")  # a story is named by its first words
        lead.photo("after-publishing")


@pytest.mark.parametrize("role", ["volunteer", "lead", "admin"])
def test_every_role_opens_each_page_in_its_menu_without_an_error(
    browser: Any, team: World, role: str
) -> None:
    email = {"volunteer": "vol@example.org", "lead": "lead@example.org"}.get(
        role, "admin@example.org"
    )
    with person(browser, team, f"tour-{role}") as who:
        who.sign_in(email)
        menu = who.page.locator("[data-testid=stSidebarNav] a")
        # Each link reads "<icon name>\n\n<title>": the title is the last line.
        titles = [t.strip().splitlines()[-1].strip() for t in menu.all_inner_texts()]
        assert titles, "the menu is empty"
        for title in titles:
            who.open(title)
            who.components_drawn()
            errors = who.page.locator("[data-testid=stException]").count()
            assert errors == 0, f"{title} raised for the {role}:\n{team.log_tail()}"
            slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
            who.photo(slug)
