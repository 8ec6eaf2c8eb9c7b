"""Notifications through apprise URLs, sent after commit, off the publishing path.

``emit(s, event, **data)`` is what workflow and the publisher call. It works out who
hears about the event (leads, the author, advocates, admins), composes the message, and
queues it on the session; the messages go to a background thread only once the session
commits (a rollback drops them). A failing notifier is logged without its URL (URLs
usually embed a token) and never raises into the caller.

Events and the data they take:

- ``submitted``  post=Post → leads
- ``approved``   post=Post → the author
- ``rejected``   post=Post, note=str → the author
- ``cancelled``  post=Post → the author
- ``published``  post=Post, links=[url, ...] (default: the post's published deliveries) → the author
- ``amplify``    post=Post, share_links=[url, ...], user_ids=[advocate ids] → those advocates
- ``account_attention``  account=Account, reason=str → admins
- ``delivery_failed``    delivery=Delivery, reason=str → admins
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.orm import Session

from amplify import crypto, events
from amplify.models import (
    Account,
    Delivery,
    DeliveryStatus,
    NotificationChannel,
    Post,
    Role,
    User,
)

log = logging.getLogger(__name__)

AUDIENCES = ("leads", "admins", "authors", "advocates")
EVENTS = (
    "submitted",
    "approved",
    "rejected",
    "cancelled",
    "published",
    "amplify",
    "account_attention",
    "delivery_failed",
)
_PENDING_KEY = "amplify_notify_pending"


@dataclass(frozen=True)
class Message:
    channel_id: int
    label: str
    url: str = field(repr=False)  # decrypted: never logged
    title: str
    body: str


# --------------------------------------------------------------------------- redaction


class _Redactor(logging.Filter):
    """Blanks the parts of notification URLs (tokens in hosts, paths, queries, user info)
    out of what apprise and urllib3 log: at DEBUG they print whole request URLs."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def remember(self, url: str) -> None:
        parts = urlsplit(url)
        pieces = {parts.netloc, parts.path, parts.query, parts.netloc.rpartition("@")[0]}
        pieces.update(seg for seg in parts.path.split("/") if seg)
        pieces.update(v for _k, v in parse_qsl(parts.query))
        with self._lock:
            self._secrets.update(p for p in pieces if len(p) >= 4)

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        if not secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:
            return True
        redacted = message
        for secret in secrets:
            redacted = redacted.replace(secret, "[redacted]")
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


_redactor = _Redactor()
for _name in ("apprise", "urllib3.connectionpool"):
    logging.getLogger(_name).addFilter(_redactor)


# --------------------------------------------------------------------------- sender


class _Sender:
    """One daemon thread per process draining a queue of messages."""

    def __init__(self) -> None:
        self._queue: queue.Queue[Message | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.sent = 0
        self.failed = 0

    def put(self, messages: Iterable[Message]) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="amplify-notify", daemon=True
                )
                self._thread.start()
        for m in messages:
            self._queue.put(m)

    def _run(self) -> None:
        while True:
            message = self._queue.get()
            try:
                if message is not None:
                    self._send(message)
            finally:
                self._queue.task_done()

    def _send(self, message: Message) -> None:
        _redactor.remember(message.url)
        try:
            import apprise

            app = apprise.Apprise()
            if not app.add(message.url):
                self.failed += 1
                log.warning(
                    "notification channel %r (#%s) has a URL apprise does not understand; "
                    "edit it under Settings → Notifications",
                    message.label,
                    message.channel_id,
                )
                return
            ok = bool(app.notify(body=message.body, title=message.title))
        except Exception as exc:  # a notifier must never take anything down with it
            self.failed += 1
            log.warning(
                "notification to channel %r (#%s) failed: %s",
                message.label,
                message.channel_id,
                type(exc).__name__,
            )
            return
        if ok:
            self.sent += 1
        else:
            self.failed += 1
            log.warning(
                "notification to channel %r (#%s) was not accepted by the receiving service; "
                "check the channel under Settings → Notifications",
                message.label,
                message.channel_id,
            )

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued message was tried (tests, shutdown)."""
        done = threading.Event()

        def waiter() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=waiter, daemon=True).start()
        return done.wait(timeout)


_sender = _Sender()


def flush(timeout: float = 10.0) -> bool:
    return _sender.flush(timeout)


def stats() -> dict[str, int]:
    return {"sent": _sender.sent, "failed": _sender.failed}


# --------------------------------------------------------------------------- queue on commit


def _after_commit(s: Session) -> None:
    pending: list[Message] = s.info.pop(_PENDING_KEY, [])
    if pending:
        _sender.put(pending)


def _after_rollback(s: Session) -> None:
    s.info.pop(_PENDING_KEY, None)


def _queue_on_commit(s: Session, messages: list[Message]) -> None:
    if not messages:
        return
    if not sa_event.contains(s, "after_commit", _after_commit):
        sa_event.listen(s, "after_commit", _after_commit)
        sa_event.listen(s, "after_soft_rollback", lambda sess, _tx: _after_rollback(sess))
    s.info.setdefault(_PENDING_KEY, []).extend(messages)


# --------------------------------------------------------------------------- routing


def channels_for(
    s: Session, *, audiences: Iterable[str] = (), user_ids: Iterable[int] = ()
) -> list[NotificationChannel]:
    """Active channels for a message: a shared channel (no user) when it serves one of
    ``audiences`` or names one of ``user_ids``; a personal channel when its user is one of
    ``user_ids`` (a personal channel never hears about other people's stories)."""
    wanted = set(audiences)
    users = {int(u) for u in user_ids}
    user_names = {str(u) for u in users}
    out: list[NotificationChannel] = []
    stmt = (
        select(NotificationChannel)
        .where(NotificationChannel.active.is_(True))
        .order_by(NotificationChannel.id)
    )
    for ch in s.scalars(stmt):
        serves = {str(a) for a in (ch.audiences or [])}
        if ch.user_id is None:
            if serves & wanted or serves & user_names:
                out.append(ch)
        elif ch.user_id in users:
            out.append(ch)
    return out


def _role_user_ids(s: Session, *roles: str) -> list[int]:
    return list(s.scalars(select(User.id).where(User.role.in_(roles), User.active.is_(True))).all())


def send(
    s: Session,
    event: str,
    *,
    to: Iterable[str] = (),
    title: str,
    body: str,
    user_ids: Iterable[int] = (),
) -> int:
    """Queue ``title``/``body`` for every channel of audiences ``to`` or of ``user_ids``;
    sent after ``s`` commits. Returns how many channels it goes to. Never raises."""
    try:
        messages: list[Message] = []
        for ch in channels_for(s, audiences=to, user_ids=user_ids):
            try:
                url = crypto.decrypt(ch.url_enc)
            except Exception:
                log.warning(
                    "notification channel %r (#%s) cannot be decrypted with this secret key; "
                    "re-enter its URL under Settings → Notifications",
                    ch.label,
                    ch.id,
                )
                continue
            messages.append(Message(ch.id, ch.label, url, title, body))
        _queue_on_commit(s, messages)
        return len(messages)
    except Exception:
        log.exception("could not queue the %r notification; publishing goes on", event)
        return 0


# --------------------------------------------------------------------------- events


def _excerpt(text: str, n: int = 80) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= n else one_line[: n - 1] + "…"


def _post_links(post: Post) -> list[str]:
    links = []
    for d in post.deliveries:
        if d.status == DeliveryStatus.PUBLISHED and d.remote_url:
            links.append(f"{d.account.label}: {d.remote_url}" if d.account else d.remote_url)
    return links


def _compose(s: Session, event: str, data: dict[str, Any]) -> tuple[list[str], list[int], str, str]:
    post: Post | None = data.get("post")
    if post is None and data.get("post_id") is not None:
        post = s.get(Post, int(data["post_id"]))
    story = f"“{_excerpt(post.body)}”" if post is not None else "a story"
    author = [post.author_id] if post is not None else []
    if not author and data.get("author_id") is not None:
        author = [int(data["author_id"])]
    if event == "submitted":
        return (
            ["leads"],
            _role_user_ids(s, Role.LEAD, Role.ADMIN),
            "Story waiting for review",
            f"{story} was submitted and waits for a lead to review it.",
        )
    if event == "approved":
        when = data.get("scheduled_for") or (post.scheduled_for if post else None)
        at = f" for {when:%Y-%m-%d %H:%M} UTC" if when else ""
        return (
            ["authors"],
            author,
            "Your story was approved",
            f"{story} was approved and scheduled{at}.",
        )
    if event == "rejected":
        note = data.get("note") or (post.review_note if post else "") or ""
        return (
            ["authors"],
            author,
            "Your story needs changes",
            f"{story} was sent back to drafts. Reviewer's note: {note}",
        )
    if event == "cancelled":
        return (
            ["authors"],
            author,
            "Your story was cancelled",
            f"{story} was cancelled; what had not been published yet will not be.",
        )
    if event == "published":
        links = list(data.get("links") or (_post_links(post) if post else []))
        lines = "\n".join(links) if links else "(no links reported)"
        return (["authors"], author, "Your story is live", f"{story} was published:\n{lines}")
    if event == "amplify":
        share = list(data.get("share_links") or [])
        lines = "\n".join(share)
        body = f"{story} is live and ready to amplify."
        if lines:
            body += f"\nShare it from your account:\n{lines}"
        window = data.get("auto_reshare")
        if window:
            body += (
                f"\nYour opted-in account reshares it automatically in {window[0]}–{window[1]}"
                " minutes; nothing to do."
            )
            if data.get("original_url"):
                body += f"\nThe original: {data['original_url']}"
        return (
            ["advocates"],
            [int(u) for u in data.get("user_ids") or []],
            "Something to amplify",
            body,
        )
    if event == "account_attention":
        account: Account | None = data.get("account")
        name = account.label if account else "an account"
        reason = data.get("reason") or (account.last_error if account else "") or ""
        return (
            ["admins"],
            _role_user_ids(s, Role.ADMIN),
            "Account needs attention",
            f"{name} needs attention: {reason}\nReconnect it under Accounts.",
        )
    if event == "delivery_failed":
        delivery: Delivery | None = data.get("delivery")
        reason = data.get("reason") or (delivery.last_error if delivery else "") or ""
        where = delivery.account.label if delivery and delivery.account else "an account"
        what = f"“{_excerpt(delivery.post.body)}”" if delivery and delivery.post else story
        return (
            ["admins"],
            _role_user_ids(s, Role.ADMIN),
            "A delivery failed",
            f"{what} could not be published to {where}: {reason}\n"
            "Fix the cause, then retry it from the story's page.",
        )
    raise ValueError(f"unknown notification event {event!r}; one of: {', '.join(EVENTS)}")


def emit(s: Session, event: str, **data: Any) -> int:
    """Tell the people concerned by ``event`` (see the module doc), after ``s`` commits.
    Never raises; returns how many channels the message goes to."""
    if event not in EVENTS:
        log.warning("no notification is defined for event %r; nothing sent", event)
        return 0
    try:
        audiences, user_ids, title, body = _compose(s, event, data)
    except Exception:
        log.exception("could not compose the %r notification; publishing goes on", event)
        return 0
    return send(s, event, to=audiences, title=title, body=body, user_ids=user_ids)


# --------------------------------------------------------------------------- domain events

# The domain's events (amplify.events) and the notification each one becomes.
FROM_EVENTS = {
    "story.submitted": "submitted",
    "story.approved": "approved",
    "story.rejected": "rejected",
    "story.cancelled": "cancelled",
    "account.needs_attention": "account_attention",
    "story.published": "published",
    "story.ready_to_amplify": "amplify",
    "delivery.failed": "delivery_failed",
}


def _on_event(ev: events.Event) -> None:
    """A committed domain event: compose its notification in a fresh session (the emitting
    one cannot load anything any more) and send it once that session commits."""
    if ev.bind is None:
        return
    with Session(ev.bind, expire_on_commit=False) as s:
        data = dict(ev.data)
        if data.get("post_id") is not None:
            data["post"] = s.get(Post, int(data["post_id"]))
        if data.get("account_id") is not None:
            data["account"] = s.get(Account, int(data["account_id"]))
        if data.get("delivery_id") is not None:
            data["delivery"] = s.get(Delivery, int(data["delivery_id"]))
        emit(s, FROM_EVENTS[ev.name], **data)
        s.commit()


def _on_reset_link(ev: events.Event) -> None:
    """A reset link was issued: send it to the person's own channels (never a shared one)."""
    if ev.bind is None:
        return
    with Session(ev.bind, expire_on_commit=False) as s:
        send(
            s,
            "password_reset",
            user_ids=[int(ev.data["user_id"])],
            title="Your Amplify password reset link",
            body=(
                f"An admin made a password reset link for {ev.data['email']}. Open it within "
                f"24 hours to choose a new password (it works once): {ev.data['link']}"
            ),
        )
        s.commit()


def listen() -> Callable[[], None]:
    """Subscribe notifications to the domain's events (at start-up; twice is once).
    Returns a function that unsubscribes them (tests)."""
    stop_events = events.subscribe_many(FROM_EVENTS, _on_event)
    stop_resets = events.subscribe("user.reset_link_issued", _on_reset_link)

    def stop() -> None:
        stop_events()
        stop_resets()

    return stop
