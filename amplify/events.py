"""In-process events: how domain code tells the runtime something happened, without importing it.

Domain modules (workflow, accounts, queue, publishing) call ``emit(s, "story.approved",
post_id=...)`` inside their transaction. The event waits on the session and reaches the
subscribers only once that session commits; a rollback drops it, so nobody hears about a
change that did not happen. The runtime subscribes at start-up (notifications, the embedded
worker's wake-up); a failing subscriber is logged and never raised into the domain call.

Events carry ids and plain values, not ORM objects: subscribers run after the commit, when
the emitting session can no longer load anything, and open their own session on ``bind``.

Events and their data:

- ``story.submitted``  post_id, actor_id, author_id
- ``story.approved``   post_id, actor_id, author_id, scheduled_for
- ``story.rejected``   post_id, actor_id, author_id, note
- ``story.cancelled``  post_id, actor_id, author_id
- ``story.rescheduled``  post_id, actor_id
- ``delivery.retried``  post_id, delivery_id, actor_id
- ``story.published``  post_id (the story is out everywhere)
- ``story.ready_to_amplify``  post_id, share_links, user_ids, [auto_reshare, original_url]
- ``delivery.failed``  delivery_id, post_id, reason (failed for good)
- ``account.needs_attention``  account_id, reason
- ``user.reset_link_issued``  user_id, email, link (secret: never log it)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

_PENDING_KEY = "amplify.events.pending"


@dataclass(frozen=True)
class Event:
    name: str
    data: dict[str, Any] = field(default_factory=dict)
    # The database the emitting session committed to, for subscribers that need to read.
    bind: Engine | Connection | None = None


Handler = Callable[[Event], None]

_lock = threading.Lock()
_handlers: dict[str, list[Handler]] = {}


def subscribe(name: str, handler: Handler) -> Callable[[], None]:
    """Call ``handler`` after each committed ``name`` event; subscribing twice is one
    subscription. Returns a function that unsubscribes (tests, shutdown)."""
    with _lock:
        handlers = _handlers.setdefault(name, [])
        if handler not in handlers:
            handlers.append(handler)

    def unsubscribe() -> None:
        with _lock:
            if handler in _handlers.get(name, []):
                _handlers[name].remove(handler)

    return unsubscribe


def subscribe_many(names: Iterable[str], handler: Handler) -> Callable[[], None]:
    """``subscribe`` to each of ``names``; returns one function that undoes them all."""
    stops = [subscribe(name, handler) for name in names]

    def unsubscribe() -> None:
        for stop in stops:
            stop()

    return unsubscribe


def emit(s: Session, name: str, **data: Any) -> None:
    """Queue ``name`` on ``s``; it is delivered once ``s`` commits, dropped if it rolls back."""
    if not sa_event.contains(s, "after_commit", _after_commit):
        sa_event.listen(s, "after_commit", _after_commit)
        sa_event.listen(s, "after_soft_rollback", _after_soft_rollback)
    if not s.in_transaction():
        s.begin()  # so that a rollback before anything else is written still drops it
    s.info.setdefault(_PENDING_KEY, []).append(Event(name, dict(data), _bind_of(s)))


def _bind_of(s: Session) -> Engine | Connection | None:
    try:
        return s.get_bind()
    except Exception:  # an unbound session: subscribers that need the database skip it
        return None


def _after_commit(s: Session) -> None:
    for ev in s.info.pop(_PENDING_KEY, []):
        deliver(ev)


def _after_soft_rollback(s: Session, transaction: Any) -> None:
    if getattr(transaction, "nested", False):
        return  # a savepoint undone (e.g. a duplicate insert skipped): the outer work stands
    s.info.pop(_PENDING_KEY, None)


def deliver(ev: Event) -> None:
    """Hand ``ev`` to its subscribers now; each failure is logged, none is raised."""
    with _lock:
        handlers = list(_handlers.get(ev.name, ()))
    for handler in handlers:
        try:
            handler(ev)
        except Exception:
            log.exception("a subscriber to %s failed; the change it reports is saved", ev.name)
