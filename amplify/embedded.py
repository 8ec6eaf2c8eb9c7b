"""The worker inside the Streamlit server: exactly one per process.

``app.py`` calls ``ensure_started()`` on every page load when ``settings.embedded_worker``
is on; the first call starts the worker, later ones (other sessions, reruns) find it
running. It stops cleanly when the server stops (in-flight publishes finish, leases are
released) and before Python stops its thread pools, so a Ctrl-C leaves no traceback.
``wake()`` runs after an approval, a reschedule or a retry commits (it subscribes to those
events at start-up), so the worker dispatches at once instead of at its next tick; with no
embedded worker it does nothing (a standalone worker picks the change up within a second).
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable

from amplify import events
from amplify.config import get_settings
from amplify.worker import Worker

log = logging.getLogger(__name__)

_lock = threading.Lock()
_worker: Worker | None = None
_atexit_registered = False

# Publishing slots of the embedded worker: small, it shares the process with the dashboard.
EMBEDDED_CONCURRENCY = 4
# Committed changes that give the worker something to send now.
WAKE_ON = ("story.approved", "story.rescheduled", "delivery.retried")


def ensure_started(concurrency: int = EMBEDDED_CONCURRENCY) -> Worker | None:
    """Start this process's worker if it is not running; returns it (None when the
    workspace runs standalone workers: ``AMPLIFY_EMBEDDED_WORKER=false``)."""
    global _worker, _atexit_registered
    if not get_settings().embedded_worker:
        return None
    with _lock:
        if _worker is not None and _worker.running:
            return _worker
        from amplify import logs

        logs.configure()  # the worker's log lines go through the redacting filter
        worker = Worker(concurrency=concurrency, embedded=True)
        worker.start()
        _worker = worker
        listen()
        if not _atexit_registered:
            _at_exit(stop)
            _atexit_registered = True
        log.info("embedded worker %s started", worker.worker_id)
        return worker


def _at_exit(fn: Callable[[], None]) -> None:
    """Run ``fn`` when the server stops, *before* Python shuts its thread pools down.

    A plain ``atexit`` hook runs after ``concurrent.futures`` has refused new work, so the
    scheduler's last tick failed with a traceback at every Ctrl-C. Python's threading atexit
    hooks run first, newest first; fall back to ``atexit`` where that hook does not exist.
    """
    register = getattr(threading, "_register_atexit", None)
    if register is None:
        atexit.register(fn)
        return
    try:
        register(fn)
    except RuntimeError:  # the interpreter is already shutting down
        atexit.register(fn)


def current() -> Worker | None:
    with _lock:
        return _worker


def wake() -> None:
    """Ask the embedded worker to dispatch now; a no-op when there is none."""
    worker = current()
    if worker is not None and worker.running:
        worker.wake()


def listen() -> Callable[[], None]:
    """Wake the worker when a change that gives it work commits (twice is once).
    Returns a function that unsubscribes (tests)."""
    return events.subscribe_many(WAKE_ON, _wake_on)


def _wake_on(_event: events.Event) -> None:
    wake()


def stop() -> None:
    """Stop this process's worker (at exit, or in tests)."""
    global _worker
    with _lock:
        worker, _worker = _worker, None
    if worker is not None:
        worker.stop()
