"""The ``amplify`` command: database, people, accounts, CSV import, worker, reports.

Exit codes: 0 done; 1 something to fix (the message on stderr says what); 2 wrong usage.
Secrets (passwords, tokens) are read from standard input when it is not a terminal, else
from a hidden prompt: never from the command line, where other users and shell history
could read them.
"""

from __future__ import annotations

import enum
import functools
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import typer
from sqlalchemy import select
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from amplify.db import session_factory, session_scope
from amplify.errors import AmplifyError, NotFound
from amplify.models import Role, User
from connectors.base import ConnectorError

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    name="amplify",
    help="Amplify: schedule advocacy stories to X, Bluesky and Mastodon, and watch them spread.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
users_app = typer.Typer(help="People who sign in to the dashboard.", no_args_is_help=True)
accounts_app = typer.Typer(help="Social accounts Amplify publishes from.", no_args_is_help=True)
posts_app = typer.Typer(help="Stories.", no_args_is_help=True)
report_app = typer.Typer(help="Reports as JSON or CSV on standard output.", no_args_is_help=True)
metrics_app = typer.Typer(help="Engagement readings.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(accounts_app, name="accounts")
app.add_typer(posts_app, name="posts")
app.add_typer(report_app, name="report")
app.add_typer(metrics_app, name="metrics")



def _offered_platforms() -> tuple[str, ...]:
    from connectors import registry

    return registry.platforms()


def _platform_option(value: str) -> str:
    """``--platform``: one of the platforms the registry offers now (case does not matter)."""
    offered = _offered_platforms()
    platform = value.strip().lower()
    if platform not in offered:
        raise typer.BadParameter(f"{value!r} is not one of: {', '.join(offered)}.")
    return platform


class Format(enum.StrEnum):
    JSON = "json"
    CSV = "csv"


#: Commands that run before the key can be checked or to recover from a lost key.
_NO_KEY_CHECK = {"db_upgrade", "accounts_reset_credentials"}


def friendly(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn errors meant for people into a message on stderr and exit code 1.

    Also refuses to run when stored credentials cannot be opened (missing or wrong key).
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            if fn.__name__ not in _NO_KEY_CHECK:
                from amplify.crypto import verify_key

                verify_key()
            return fn(*args, **kwargs)
        except (AmplifyError, ConnectorError) as exc:
            typer.echo(f"Error: {exc}", err=True)
            raise typer.Exit(1) from None
        except (OperationalError, ProgrammingError) as exc:
            typer.echo(f"Error: {_database_problem(exc)}", err=True)
            raise typer.Exit(1) from None

    return wrapper


def _database_problem(exc: Exception) -> str:
    """A database error a person can act on (the URL shown without its password)."""
    from sqlalchemy.engine import make_url

    from amplify.db import database_url

    url = make_url(database_url()).render_as_string(hide_password=True)
    text = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
    lowered = text.lower()
    if "no such table" in lowered or ("relation" in lowered and "does not exist" in lowered):
        return f"the database at {url} has no Amplify tables yet; run `amplify db upgrade` first"
    return f"cannot use the database at {url} ({text}); check AMPLIFY_DATABASE_URL"


def _fail(message: str) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(1)


# --------------------------------------------------------------------------- secrets


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def read_secret_lines(prompts: Sequence[str]) -> str:
    """Secret text: all of stdin when it is piped, else one hidden prompt per line."""
    if not _stdin_is_terminal():
        return sys.stdin.read()
    lines: list[str] = []
    for label in prompts:
        value = typer.prompt(label, hide_input=True)
        lines.append(value)
        if value.strip().lower().startswith("bearer="):
            break
    return "\n".join(lines)


def read_password() -> str:
    """A new password: first line of piped stdin, else a hidden prompt asked twice."""
    if not _stdin_is_terminal():
        text = sys.stdin.read()
        return text.splitlines()[0] if text else ""
    value: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


def credential_prompts(platform: str) -> list[str]:
    """One hidden prompt per credential the platform asks for (its connector says which)."""
    from connectors import registry

    return [f.prompt or f.label for f in registry.info(platform).credentials]


# --------------------------------------------------------------------------- helpers


def _user(s: Session, email: str) -> User:
    from amplify import users

    user = users.get_by_email(s, email)
    if user is None:
        raise NotFound(f"nobody signs in as {email}; list people with `amplify users list`")
    return user


def _operator(s: Session, as_email: str | None) -> User:
    """Who a command acts as: ``--as``, else the earliest active admin."""
    if as_email:
        return _user(s, as_email)
    admin = s.scalars(
        select(User).where(User.role == Role.ADMIN, User.active.is_(True)).order_by(User.id)
    ).first()
    if admin is None:
        raise NotFound("there is no active admin yet; add one with `amplify users add EMAIL "
                       "--role admin`")
    return admin


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    cells = [[str(c) for c in header]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells
    )


def _emit(rows: list[dict[str, Any]], fmt: Format, columns: Sequence[str] | None = None) -> None:
    from amplify.report import render

    text = render(rows, str(fmt), columns)
    typer.echo(text, nl=not text.endswith("\n"))


AsOption = typer.Option(
    None, "--as", metavar="EMAIL", help="Act as this person (default: the first admin)."
)


# --------------------------------------------------------------------------- db


@db_app.command("upgrade")
@friendly
def db_upgrade() -> None:
    """Create or upgrade the database schema (safe to run again)."""
    from sqlalchemy.engine import make_url

    from amplify.db import database_url
    from amplify.migrate import upgrade

    url = database_url()
    upgrade(url)
    typer.echo(f"Database is up to date: {make_url(url).render_as_string(hide_password=True)}")


# --------------------------------------------------------------------------- users


@users_app.command("add")
@friendly
def users_add(
    email: str = typer.Argument(..., help="Their sign-in address."),
    role: Role = typer.Option(..., "--role", case_sensitive=False),
    name: str | None = typer.Option(None, "--name", help="Full name (default: from the email)."),
    as_email: str | None = AsOption,
) -> None:
    """Add a person. The password comes from stdin when piped, else a hidden prompt."""
    from amplify import users

    password = read_password()
    with session_scope() as s:
        actor = _operator(s, as_email) if users.has_users(s) else None
        user = users.create_user(
            s,
            actor,
            email=email,
            name=name or email.split("@", 1)[0],
            role=str(role),
            password=password,
        )
        typer.echo(f"Added {user.email} ({user.role}) as person #{user.id}.")


@users_app.command("list")
@friendly
def users_list() -> None:
    """Everyone who can sign in (and who no longer can)."""
    from amplify import users

    with session_scope() as s:
        rows = [
            (u.id, u.email, u.name, u.role, "yes" if u.active else "no")
            for u in users.list_users(s)
        ]
    if not rows:
        typer.echo("No people yet: `amplify users add EMAIL --role admin` adds the first admin.")
        return
    typer.echo(_table(rows, ["id", "email", "name", "role", "active"]))


@users_app.command("reset-password")
@friendly
def users_reset_password(email: str = typer.Argument(..., help="Whose password to reset.")) -> None:
    """Print a one-time link (24 hours) where the person chooses a new password.
    Their browsers are signed out now; the link goes to their own notification channel too."""
    from amplify import resets

    with session_scope() as s:
        link = resets.issue(s, None, _user(s, email).id)
    typer.echo("Give this link to the person (it works once, for 24 hours):")
    typer.echo(link)


# --------------------------------------------------------------------------- accounts


def _practice(platform: str) -> bool:
    from connectors import registry

    try:
        return registry.info(platform).practice
    except ValueError:  # a connector a test registered without describing it
        return False


def _account_label(platform: str) -> str:
    from connectors import registry

    return registry.info(platform).description or platform


@accounts_app.command("add")
@friendly
def accounts_add(
    platform_name: str = typer.Option(
        ...,
        "--platform",
        metavar="PLATFORM",
        callback=_platform_option,
        autocompletion=_offered_platforms,
        help="Where the account is: " + ", ".join(_offered_platforms()) + ".",
    ),
    handle: str = typer.Option(..., "--handle", help="e.g. team.bsky.social, @team, team"),
    service_url: str = typer.Option(
        "", "--service-url", help="Server, e.g. https://mastodon.social (Bluesky: your PDS)."
    ),
    owner: str | None = typer.Option(
        None, "--owner", metavar="EMAIL", help="The advocate who owns it (default: the team)."
    ),
    opt_in: bool = typer.Option(False, "--opt-in", help="The owner agrees to amplify stories."),
    x_plan: str | None = typer.Option(
        None,
        "--x-plan",
        metavar="PLAN",
        help="X only: the API plan your X app is on (free, basic, pro, enterprise); "
        "sets how many posts a day Amplify sends. Default: pro's limits.",
    ),
    as_email: str | None = AsOption,
) -> None:
    """Connect an account. Credentials come from stdin when piped, else hidden prompts.

    bluesky: one line, an app password. mastodon: one line, an access token.
    x: four lines (api_key, api_secret, access_token, access_token_secret) or one line
    bearer=<token>. sandbox: nothing.
    """
    from amplify import accounts

    platform = platform_name
    prompts = credential_prompts(platform)
    text = read_secret_lines(prompts) if prompts else ""
    credentials = accounts.parse_credentials(platform, text)
    with session_scope() as s:
        actor = _operator(s, as_email)
        owner_id = _user(s, owner).id if owner else None
        account = accounts.add_account(
            s,
            actor,
            platform=platform,
            handle=handle,
            service_url=service_url,
            credentials=credentials,
            owner_id=owner_id,
            amplify_opt_in=opt_in,
            x_plan=x_plan,
        )
        typer.echo(
            f"Added {account.label} ({_account_label(platform)}) as account #{account.id}. "
            f"Check it with `amplify accounts test {account.id}`."
        )


@accounts_app.command("list")
@friendly
def accounts_list() -> None:
    """Every connected account with its status."""
    from sqlalchemy.orm import joinedload

    from amplify.models import Account

    with session_scope() as s:
        rows = [
            (
                a.id,
                a.label,
                a.service_url or "",
                a.owner.email if a.owner else "team",
                a.status,
                "yes" if a.amplify_opt_in else "no",
                a.followers_count,
                ("practice network — nothing is really posted" if _practice(a.platform) else "")
                + (f" {a.last_error}" if a.last_error else ""),
            )
            for a in s.scalars(
                select(Account).options(joinedload(Account.owner)).order_by(Account.id)
            )
        ]
    if not rows:
        typer.echo("No accounts yet: `amplify accounts add --platform sandbox --handle demo` "
                   "adds a practice one.")
        return
    typer.echo(
        _table(rows, ["id", "account", "server", "owner", "status", "opt-in", "followers", "note"])
    )


@accounts_app.command("reset-credentials")
@friendly
def accounts_reset_credentials(
    yes: bool = typer.Option(False, "--yes", help="Confirm: the stored credentials are lost."),
) -> None:
    """After losing the secret key: forget the stored credentials so each account can be
    reconnected (notification channels are removed and must be added again)."""
    from amplify.crypto import reset_credentials

    if not yes:
        raise _fail(
            "this forgets every account's stored credentials and removes notification "
            "channels; only do it when the secret key is lost for good (restore "
            "data/secret.key from a backup if you can). Run again with --yes to go ahead."
        )
    with session_scope() as s:
        accounts, channels = reset_credentials(s)
    typer.echo(
        f"Reset {accounts} account(s): reconnect each one (Accounts page → Reconnect). "
        f"Removed {channels} notification channel(s): add them again on the Team & settings page."
    )


@accounts_app.command("test")
@friendly
def accounts_test(
    account_id: int = typer.Argument(..., metavar="ID"), as_email: str | None = AsOption
) -> None:
    """Sign in to the platform and say who the account is, or plainly what is wrong."""
    from amplify import accounts
    from amplify.models import Account

    label = f"account #{account_id}"
    try:
        # test_account commits the failure itself (status, last error) before re-raising.
        with session_scope() as s:
            actor = _operator(s, as_email)
            account = s.get(Account, account_id)
            if account is None:
                raise NotFound(f"there is no account #{account_id}; see `amplify accounts list`")
            label = account.label
            identity = accounts.test_account(s, actor, account_id)
    except ConnectorError as exc:
        raise _fail(f"{label} cannot sign in: {exc}") from None
    followers = (
        f", {identity.followers_count} followers" if identity.followers_count is not None else ""
    )
    name = f" ({identity.display_name})" if identity.display_name else ""
    typer.echo(f"OK: {label} signs in as {identity.handle}{name}{followers}.")


# --------------------------------------------------------------------------- posts


@posts_app.command("import")
@friendly
def posts_import(
    file: Path = typer.Argument(..., metavar="FILE.csv", help="UTF-8 CSV with a header row."),
    approve: bool = typer.Option(
        False, "--approve", help="Approve and schedule every row (leads and admins only)."
    ),
    as_email: str | None = typer.Option(
        None, "--as", metavar="EMAIL", help="Import as this person (needed if there are several)."
    ),
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid", help="Import the valid rows and list the others."
    ),
) -> None:
    """Import stories from CSV: all rows, or none if any row is invalid.

    Columns: body, accounts (platform:handle;...), scheduled_for (ISO 8601, workspace
    time zone unless it has an offset; "now" publishes at once with --approve), campaign
    (an existing name), link, image (path relative to the CSV), alt_text (required with an
    image). At most 10,000 rows per file: split bigger files.
    """
    from amplify.importer import import_csv

    # Checks run without the write lock; the write itself is one short transaction.
    result = import_csv(file, as_email=as_email, approve=approve, skip_invalid=skip_invalid)
    for problem in result.problems:
        typer.echo(f"skipped {problem}", err=True)
    what = "approved and scheduled" if approve else "as drafts"
    noun = "story" if result.imported == 1 else "stories"
    typer.echo(f"Imported {result.imported} {noun} {what} by {result.actor_email}.")
    if result.problems:
        typer.echo(f"Skipped {len(result.problems)} invalid row(s) (listed above).", err=True)


# --------------------------------------------------------------------------- worker


@app.command("worker")
@friendly
def worker(
    once: bool = typer.Option(False, "--once", help="Publish what is due now, then exit."),
    concurrency: int = typer.Option(4, "--concurrency", min=1, help="Posts published at once."),
    worker_id: str | None = typer.Option(
        None, "--worker-id", help="Name shown on the System page (default: host:pid:random)."
    ),
    no_metrics: bool = typer.Option(False, "--no-metrics", help="Skip metrics readings."),
) -> None:
    """Publish due deliveries (and take metrics readings) until stopped."""
    from amplify import logs
    from amplify.worker import Worker

    logs.configure()  # AMPLIFY_LOG_LEVEL
    runner = Worker(worker_id=worker_id, concurrency=concurrency, metrics_enabled=not no_metrics)
    if once:
        typer.echo(json.dumps(drain(runner, metrics=not no_metrics), indent=2, default=str))
        return
    typer.echo(f"Worker {runner.worker_id} running; Ctrl+C or SIGTERM stops it cleanly.", err=True)
    runner.run_forever()


def drain(runner: Any, max_rounds: int = 10_000, *, metrics: bool = True) -> dict[str, Any]:
    """``run_once`` until a round claims and reconciles nothing: everything due now is sent.

    One ``run_once`` may return while deliveries of an account are still waiting their turn
    (an account publishes one post at a time), so the command repeats it and adds up.
    """
    total: dict[str, Any] = {"claimed": 0, "reconciled": 0, "rounds": 0, "outcomes": {}}
    for _ in range(max_rounds):
        summary = runner.run_once(metrics=metrics)
        total["rounds"] += 1
        total["worker_id"] = summary.get("worker_id")
        total["claimed"] += summary.get("claimed", 0)
        total["reconciled"] += summary.get("reconciled", 0)
        for outcome, count in (summary.get("outcomes") or {}).items():
            total["outcomes"][outcome] = total["outcomes"].get(outcome, 0) + count
        if "metrics" in summary:
            total["metrics"] = summary["metrics"]
        if not summary.get("claimed") and not summary.get("reconciled"):
            break
    return total


# --------------------------------------------------------------------------- metrics


@metrics_app.command("sweep")
@friendly
def metrics_sweep(
    all_: bool = typer.Option(False, "--all", help="Read every published delivery, due or not."),
) -> None:
    """Take the engagement readings that are due now."""
    from amplify import metrics

    result = metrics.sweep(session_factory(), force_all=all_)
    as_dict = getattr(result, "as_dict", None)
    typer.echo(json.dumps(as_dict() if callable(as_dict) else result, indent=2, default=str))


# --------------------------------------------------------------------------- reports


FormatOption = typer.Option(Format.JSON, "--format", case_sensitive=False)


@report_app.command("deliveries")
@friendly
def report_deliveries(fmt: Format = FormatOption) -> None:
    """Every delivery: post, account, status, attempts, remote id/url, last error."""
    from amplify.report import DELIVERY_COLUMNS, delivery_rows

    with session_scope() as s:
        rows = delivery_rows(s)
    _emit(rows, fmt, DELIVERY_COLUMNS)


@report_app.command("reach")
@friendly
def report_reach(fmt: Format = FormatOption) -> None:
    """Potential reach per story (author's followers plus each resharer's, once each)."""
    from amplify import metrics

    with session_scope() as s:
        rows = list(metrics.reach_report(s))
    _emit(rows, fmt)


# --------------------------------------------------------------------------- demo


@app.command("demo")
@friendly
def demo(
    path: Path | None = typer.Option(
        None,
        "--path",
        show_default="data/demo.db",
        help="SQLite file for the demo workspace (never your real one).",
    ),
) -> None:
    """Build a practice workspace (sandbox accounts, 30 days of stories) in its own file."""
    from amplify.config import get_settings
    from amplify.demo import build_demo

    path = (path or get_settings().data_dir / "demo.db").resolve()
    url = f"sqlite:///{path}"
    people = build_demo(url)
    typer.echo(f"Demo workspace ready in {path}.")
    for role, email in people.emails.items():
        typer.echo(f"  {role}: {email}")
    typer.echo(f"  password (demo only): {people.password}")
    typer.echo(
        f"Start it: AMPLIFY_DATABASE_URL={url} AMPLIFY_EMBEDDED_WORKER=true "
        "streamlit run amplify/ui/server.py"
    )


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``amplify``)."""
    from amplify import notify

    notify.listen()  # a change made from the command line is notified as from the dashboard
    app(args=argv if argv is not None else sys.argv[1:], prog_name="amplify")


if __name__ == "__main__":
    main()
