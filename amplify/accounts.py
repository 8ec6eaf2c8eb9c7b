"""Social accounts: connect (credentials encrypted at rest), test, reconnect, remove.

Credentials and platform sessions are stored only as Fernet tokens (``amplify.crypto``);
they are decrypted into a ``ConnectorContext`` at the moment a connector needs them and
never logged, audited or put in an error message.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session, object_session
from sqlalchemy.orm.attributes import set_committed_value

from amplify import crypto, events, queue, ratelimit
from amplify.config import get_settings
from amplify.db import get_engine
from amplify.errors import AmplifyError, ConfigError, NotFound, ValidationFailed
from amplify.models import Account, AccountStatus, Delivery, DeliveryStatus, User
from amplify.permissions import Action, can, require
from amplify.workflow import audit, refresh_post_state
from connectors import registry
from connectors.base import (
    AuthError,
    Connector,
    ConnectorContext,
    ConnectorError,
    Identity,
    PlatformInfo,
)


@dataclass(frozen=True)
class PlatformHelp:
    """What to paste for a platform, for forms and the CLI."""

    platform: str
    how_to: str
    service_url_default: str
    service_url_required: bool


def platform_help(platform: str) -> PlatformHelp:
    info = _info(platform)
    return PlatformHelp(platform, info.how_to, info.default_service_url, info.service_url_required)


def _info(platform: str) -> PlatformInfo:
    """The platform as its connector module describes it; a connector a test registered
    without a description gets a plain one (no credentials, no server, http allowed)."""
    _check_platform(platform)
    try:
        return registry.info(platform)
    except ValueError:
        return PlatformInfo(platform, platform, "", "", "Handle", https_only=False)


def _known_platforms() -> tuple[str, ...]:
    # The ones offered to people, and connectors tests registered without offering them.
    return (*registry.platforms(), *registry.buildable())


def _check_platform(platform: str) -> None:
    if platform not in _known_platforms():
        raise ValidationFailed(
            [f"Unknown platform {platform!r}; choose one of: {', '.join(registry.platforms())}."]
        )


# --------------------------------------------------------------------------- credentials


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def parse_credentials(platform: str, text: str) -> dict[str, str]:
    """Turn pasted text (CLI stdin, a text box) into the credentials mapping for ``platform``:
    one line per credential field its connector names, in order, or ``key=value`` lines.

    The error says what to paste and never repeats what was pasted.
    """
    info = _info(platform)
    keys = [f.key for f in info.credentials]
    if not keys:
        token = (text or "").strip()
        return {"token": token} if token else {}
    lines = _lines(text)
    if len(keys) == 1:
        if len(lines) != 1 or any(ch.isspace() for ch in lines[0]):
            found = "nothing" if not lines else f"{len(lines)} line(s)"
            raise ValidationFailed([f"Got {found}. {info.how_to}"])
        return {keys[0]: lines[0]}
    alternative = info.token_alternative
    if alternative and len(lines) == 1 and lines[0].lower().startswith(f"{alternative}="):
        token = lines[0].split("=", 1)[1].strip()
        if token and not any(ch.isspace() for ch in token):
            return {alternative: token}
        raise ValidationFailed([f"The {alternative}= line has no token after it. {info.how_to}"])
    named: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition("=")
        if sep and name.strip().lower() in keys:
            named[name.strip().lower()] = value.strip()
    if named and len(named) == len(lines):
        lines = [named.get(k, "") for k in keys]
    if len(lines) != len(keys) or not all(lines) or any(" " in v for v in lines):
        raise ValidationFailed([f"Got {len(lines)} usable line(s). {info.how_to}"])
    return dict(zip(keys, lines, strict=True))


def _credential_problems(platform: str, credentials: dict[str, str]) -> list[str]:
    info = _info(platform)
    if info.token_alternative and credentials.get(info.token_alternative):
        return []
    missing = [f for f in info.credentials if not credentials.get(f.key)]
    if not missing:
        return []
    if len(info.credentials) == 1:
        return [f"The {missing[0].label.lower()} is missing. {info.how_to}"]
    names = ", ".join(f.key.replace("_", " ") for f in missing)
    return [f"Missing {names}. {info.how_to}"]


def _clean_credentials(platform: str, credentials: dict[str, str]) -> dict[str, str]:
    cleaned = {str(k): str(v).strip() for k, v in (credentials or {}).items()}
    cleaned = {k: v for k, v in cleaned.items() if v}
    problems = _credential_problems(platform, cleaned)
    if problems:
        raise ValidationFailed(problems)
    return cleaned


# --------------------------------------------------------------------------- reading


def get_account(s: Session, account_id: int) -> Account:
    account = s.get(Account, account_id)
    if account is None:
        raise NotFound(f"There is no account #{account_id}; reload the page.")
    return account


def list_accounts(
    s: Session,
    *,
    platform: str | None = None,
    owner_id: int | None = None,
    include_disabled: bool = False,
) -> Sequence[Account]:
    stmt = select(Account).order_by(Account.platform, Account.handle, Account.id)
    if platform is not None:
        stmt = stmt.where(Account.platform == platform)
    if owner_id is not None:
        stmt = stmt.where(Account.owner_id == owner_id)
    if not include_disabled:
        stmt = stmt.where(Account.status != AccountStatus.DISABLED)
    return s.scalars(stmt).all()


def require_manager(
    actor: User, account: Account | None = None, owner_id: int | None = None
) -> None:
    """Admins manage every account; anyone else only the accounts they own."""
    if can(actor, Action.MANAGE_ACCOUNTS):
        return
    own = owner_id if account is None else account.owner_id
    if own is not None and own == actor.id and can(actor, Action.CONNECT_OWN_ACCOUNT):
        return
    require(actor, Action.MANAGE_ACCOUNTS)  # raises with the admins-only message


# --------------------------------------------------------------------------- connectors


def context_for(account: Account) -> ConnectorContext:
    """A connector context for ``account``: credentials decrypted, session restored.

    A refreshed platform session is saved back encrypted: into the account's own session
    when that is mid-transaction (so it commits with it and never waits on itself for a
    SQLite lock), otherwise in a short transaction of its own.
    """
    owner = object_session(account)
    engine: Engine = owner.get_bind() if owner is not None else get_engine()  # type: ignore[assignment]
    account_id = account.id

    def save_session(new_session: str) -> None:
        token = crypto.encrypt(new_session)
        current = object_session(account)
        if current is not None and current.in_transaction():
            account.session_enc = token
            return
        with Session(engine) as s, s.begin():
            s.execute(update(Account).where(Account.id == account_id).values(session_enc=token))
        if current is not None:
            # Keep the loaded object in step without marking it dirty.
            set_committed_value(account, "session_enc", token)

    info = _info(account.platform)
    service_url = account.service_url or info.default_service_url
    insecure = _insecure_url(service_url) if info.https_only else None
    if insecure:  # saved before https was required, or the setting was turned off since
        raise ConfigError(f"{account.label}: {insecure}")
    return ConnectorContext(
        handle=account.handle,
        service_url=service_url,
        credentials={k: str(v) for k, v in crypto.decrypt_json(account.credentials_enc).items()},
        session=crypto.decrypt(account.session_enc) if account.session_enc else None,
        on_session_change=save_session,
        account_id=account_id,
    )


def connector_for(account: Account) -> Connector:
    return registry.build(account.platform, context_for(account))


# --------------------------------------------------------------------------- changes


def _service_url(platform: str, service_url: str, handle: str) -> tuple[str, list[str]]:
    info = _info(platform)
    url = (service_url or "").strip().rstrip("/")
    if not url and info.server_in_handle and "@" in handle:
        url = "https://" + handle.rsplit("@", 1)[1]
    if not url:
        url = info.default_service_url
    example = info.form_service_url or "https://mastodon.social"
    if info.service_url_required and not url:
        what = (info.service_label or "server")[:1].lower() + (info.service_label or "server")[1:]
        return "", [f"Give the {info.label} {what}, for example {example}."]
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return url, [f"The service URL must start with https:// (for example {example})."]
        insecure = _insecure_url(url) if info.https_only else None
        if insecure:
            return url, [insecure]
    return url, []


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _insecure_url(url: str) -> str | None:
    """Why ``url`` may not carry an account's token, or None. Tokens travel only over https;
    plain http only to this machine (a test server) and only when explicitly allowed."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and _loopback(parts.hostname):
        if get_settings().allow_insecure_loopback:
            return None
        return (
            f"The service URL {url} uses plain http, which would send the account's token "
            "unencrypted. Use https://; for a test server on this machine only, set "
            "AMPLIFY_ALLOW_INSECURE_LOOPBACK=true."
        )
    return (
        f"The service URL {url} must start with https:// (plain http would send the "
        "account's token unencrypted)."
    )


def _normalise_handle(platform: str, handle: str) -> str:
    value = (handle or "").strip().lstrip("@")
    if "@" in value and _info(platform).server_in_handle:
        value = value.split("@", 1)[0]
    return value


def add_account(
    s: Session,
    actor: User,
    *,
    platform: str,
    handle: str,
    service_url: str = "",
    credentials: dict[str, str],
    owner_id: int | None = None,
    amplify_opt_in: bool = False,
    x_plan: str | None = None,
) -> Account:
    """Connect an account. Admins connect any; a team member connects their own.
    ``x_plan``: the X API plan the chapter pays for (``ratelimit.X_PLANS``; X only)."""
    require_manager(actor, owner_id=owner_id)
    _check_platform(platform)
    problems: list[str] = []
    clean_handle = _normalise_handle(platform, handle)
    if not clean_handle:
        problems.append("Give the account's handle, for example team.bsky.social.")
    url, url_problems = _service_url(platform, service_url, handle)
    problems.extend(url_problems)
    try:
        creds = _clean_credentials(platform, credentials)
    except ValidationFailed as exc:
        problems.extend(exc.problems)
        creds = {}
    if owner_id is not None and s.get(User, owner_id) is None:
        problems.append(f"There is no person #{owner_id} to own this account.")
    problems.extend(_x_plan_problems(platform, x_plan))
    existing = s.scalar(
        select(Account).where(
            Account.platform == platform,
            func.lower(Account.handle) == clean_handle.lower(),
            Account.service_url == url,
        )
    )
    if existing is not None and existing.status != AccountStatus.DISABLED:
        problems.append(
            f"{existing.label} is already connected; use Reconnect to change its credentials."
        )
    if problems:
        raise ValidationFailed(problems)

    if existing is not None:  # removed earlier but kept for its history: bring it back
        account = existing
        account.credentials_enc = crypto.encrypt_json(creds)
        account.session_enc = None
        account.status = AccountStatus.OK
        account.last_error = None
        account.owner_id = owner_id
        account.amplify_opt_in = amplify_opt_in
        if x_plan:
            account.options = {**(account.options or {}), "x_plan": x_plan.strip().lower()}
    else:
        account = Account(
            platform=platform,
            handle=clean_handle,
            service_url=url,
            credentials_enc=crypto.encrypt_json(creds),
            owner_id=owner_id,
            amplify_opt_in=amplify_opt_in,
            status=AccountStatus.OK,
            options={"x_plan": x_plan.strip().lower()} if x_plan else {},
        )
        s.add(account)
    s.flush()
    audit(
        s,
        actor,
        "account.added",
        "account",
        account.id,
        platform=platform,
        handle=clean_handle,
        owner_id=owner_id,
    )
    return account


def update_credentials(
    s: Session, actor: User, account_id: int, *, credentials: dict[str, str]
) -> Account:
    """Reconnect: replace the credentials, forget the old session, clear the error."""
    account = get_account(s, account_id)
    require_manager(actor, account)
    insecure = _insecure_url(account.service_url) if _info(account.platform).https_only else None
    if insecure and account.service_url:  # the new token would go the same insecure way
        raise ValidationFailed([f"{insecure} Remove this account and add it again with https."])
    account.credentials_enc = crypto.encrypt_json(_clean_credentials(account.platform, credentials))
    account.session_enc = None
    if account.status == AccountStatus.NEEDS_ATTENTION:
        account.status = AccountStatus.OK
    account.last_error = None
    audit(s, actor, "account.reconnected", "account", account.id)
    s.flush()
    return account


def set_opt_in(s: Session, actor: User, account_id: int, opt_in: bool) -> Account:
    """Whether this account reshares the team's stories (its owner or an admin decides)."""
    account = get_account(s, account_id)
    require_manager(actor, account)
    if account.amplify_opt_in != opt_in:
        account.amplify_opt_in = opt_in
        audit(s, actor, "account.opt_in" if opt_in else "account.opt_out", "account", account.id)
        s.flush()
    return account


def _x_plan_problems(platform: str, plan: str | None) -> list[str]:
    if not plan:
        return []
    if platform != "x":
        return ["An API plan is a setting of X connections only; leave it empty here."]
    if plan.strip().lower() not in ratelimit.X_PLANS:
        names = ", ".join(ratelimit.X_PLANS)
        return [f"{plan!r} is not an X API plan Amplify knows; choose one of {names}."]
    return []


def set_x_plan(s: Session, actor: User, account_id: int, plan: str) -> Account:
    """Which X API plan this connection's developer app is on: its daily post caps
    (``ratelimit.X_PLANS``) are what the shared budgets hold it to."""
    account = get_account(s, account_id)
    require_manager(actor, account)
    problems = _x_plan_problems(account.platform, plan)
    if problems:
        raise ValidationFailed(problems)
    plan = plan.strip().lower()
    if ratelimit.x_plan_of(account.options) != plan or "x_plan" not in (account.options or {}):
        # X's own figures were for the old plan: forget them with it.
        kept = {k: v for k, v in (account.options or {}).items() if k != ratelimit.X_CAPS_SEEN}
        account.options = {**kept, "x_plan": plan}
        audit(s, actor, "account.x_plan", "account", account.id, plan=plan)
        s.flush()
    return account


def mark_needs_attention(s: Session, account: Account, reason: str) -> None:
    """The platform refused the credentials: stop using the account and tell an admin."""
    reason = (reason or "").strip() or "the platform refused the credentials; reconnect it"
    if account.status == AccountStatus.NEEDS_ATTENTION and account.last_error == reason:
        return
    account.status = AccountStatus.NEEDS_ATTENTION
    account.last_error = reason
    audit(s, None, "account.needs_attention", "account", account.id, reason=reason)
    s.flush()
    events.emit(s, "account.needs_attention", account_id=account.id, reason=reason)


def test_account(s: Session, actor: User, account_id: int) -> Identity:
    """Sign in and say who the account is; record what the platform said.

    On success the account's name, id and follower count are refreshed (the caller
    commits). On failure the account's status and last error are recorded, **this
    commits** (a refused sign-in must be remembered), and the ConnectorError is re-raised
    with a plain reason: AuthError marks the account as needing attention.
    """
    account = get_account(s, account_id)
    require_manager(actor, account)
    try:
        identity = connector_for(account).whoami()
    except AuthError as exc:
        mark_needs_attention(s, account, str(exc))
        s.commit()
        raise
    except ConnectorError as exc:
        account.last_error = str(exc)
        audit(s, actor, "account.test_failed", "account", account.id, reason=str(exc))
        s.commit()
        raise
    except AmplifyError as exc:  # e.g. credentials sealed with another secret key
        mark_needs_attention(s, account, str(exc))
        s.commit()
        raise AuthError(str(exc)) from None
    account.display_name = identity.display_name or account.display_name
    account.remote_user_id = identity.remote_user_id
    if identity.followers_count is not None:
        account.followers_count = identity.followers_count
    account.status = AccountStatus.OK
    account.last_error = None
    audit(
        s,
        actor,
        "account.tested",
        "account",
        account.id,
        remote_user_id=identity.remote_user_id,
        followers=identity.followers_count,
    )
    s.flush()
    return identity


# Not a pytest test, whatever its name says (tests import this module).
test_account.__test__ = False  # type: ignore[attr-defined]

_IN_FLIGHT = (DeliveryStatus.CLAIMED, DeliveryStatus.RECONCILE)


def remove_account(s: Session, actor: User, account_id: int, *, force: bool = False) -> None:
    """Disconnect an account. Its credentials are erased; its history is kept if it has one.

    Refused while it has scheduled sends (unless ``force``, which cancels them) and always
    while a send is being published from it right now.
    """
    account = get_account(s, account_id)
    require_manager(actor, account)
    rows = s.execute(
        select(Delivery.status, func.count(Delivery.id))
        .where(Delivery.account_id == account.id)
        .group_by(Delivery.status)
    ).all()
    counts: dict[str, int] = {str(status): int(n) for status, n in rows}
    in_flight = sum(counts.get(st, 0) for st in _IN_FLIGHT)
    if in_flight:
        raise ValidationFailed([f"{account.label} is publishing right now; try again in a minute."])
    pending = counts.get(DeliveryStatus.PENDING, 0)
    if pending and not force:
        raise ValidationFailed(
            [
                f"{account.label} has {pending} scheduled send(s); cancel those stories or "
                "remove the account anyway (its scheduled sends will be cancelled)."
            ]
        )
    if pending:
        affected = list(
            s.scalars(
                select(Delivery).where(
                    Delivery.account_id == account.id, Delivery.status == DeliveryStatus.PENDING
                )
            )
        )
        for delivery in affected:
            queue.cancel(delivery)
        s.flush()
        for post in {d.post for d in affected}:
            refresh_post_state(s, post)  # a story left with nothing to send settles
    audit(
        s,
        actor,
        "account.removed",
        "account",
        account.id,
        platform=account.platform,
        handle=account.handle,
        cancelled=pending,
    )
    if sum(counts.values()) == 0:
        s.delete(account)
    else:
        account.status = AccountStatus.DISABLED
        account.credentials_enc = crypto.encrypt_json({})
        account.session_enc = None
        account.amplify_opt_in = False
        account.last_error = "removed"
    s.flush()


def disconnect_reason(account: Account) -> str | None:
    """Why an account cannot publish now, for pages; None when it can."""
    if account.status == AccountStatus.OK:
        return None
    if account.status == AccountStatus.DISABLED:
        return "removed"
    return account.last_error or "needs attention: reconnect it"


def summary(account: Account) -> dict[str, Any]:
    """A safe summary of an account (no secrets), e.g. for JSON output."""
    return {
        "id": account.id,
        "platform": account.platform,
        "handle": account.handle,
        "service_url": account.service_url,
        "status": account.status,
        "followers_count": account.followers_count,
        "amplify_opt_in": account.amplify_opt_in,
        "owner_id": account.owner_id,
    }
