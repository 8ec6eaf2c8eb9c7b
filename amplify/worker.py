"""The worker: publishes due deliveries on time, recovers expired leases, sweeps metrics.

APScheduler (a ``BackgroundScheduler`` with an in-memory job store) only fires local
timers; the queue, the leases and the rate budgets live in the database, so any number of
workers (``amplify worker``) and at most one embedded worker per Streamlit process can run
against one database.

Jobs:

- **dispatch** — wakes at the next due time (and at least every second), or at once on
  ``wake()``; claims up to the free slots of the publishing pool and hands each claimed
  delivery to ``publisher.publish_one`` on a thread. Deliveries of accounts over their
  shared budget are pushed back to pending at the window reset before the claim.
- **recover** — ``queue.expire_leases`` then ``publisher.reconcile_one`` for each delivery
  whose worker died mid-publish (ask the platform, never re-send blindly).
- **heartbeat** — one ``WorkerHeartbeat`` row per worker, with the last action.
- **metrics** — ``metrics.sweep`` of whatever snapshots are due.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session, sessionmaker

from amplify import ratelimit
from amplify.config import get_settings
from amplify.db import serialize_sqlite_writers, session_factory
from amplify.models import (
    Account,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Post,
    WorkerHeartbeat,
    utcnow,
)
from amplify.queue import Outcome
from amplify.retry import DEFAULT_POLICY, RetryPolicy
from connectors.base import Connector

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
HEARTBEAT_KEEP = timedelta(days=2)  # heartbeat rows of workers silent longer are deleted
METRICS_SECONDS = 60.0
MEDIA_SWEEP_SECONDS = 900.0  # unused image files are removed this often (media.remove_orphans)
MAX_IDLE_SECONDS = 1.0  # the dispatch job runs at least this often
# Over-budget accounts' due deliveries are pushed to their reset at most this often (a
# claimed one of such an account is deferred on its own, so this only saves claims).
DEFER_EVERY_SECONDS = 1.0


@dataclass(frozen=True)
class _Claimed:
    id: int
    account_id: int
    platform: str
    kind: str
    amplify: bool = False
    handle: str = ""  # the account's handle, for the one log line per publish


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """One publishing worker. ``start()``/``stop()`` for a long-lived one, ``run_once()``
    to drain what is due now and return."""

    def __init__(
        self,
        worker_id: str | None = None,
        concurrency: int = 4,
        embedded: bool = False,
        *,
        factory: sessionmaker[Session] | None = None,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        metrics_seconds: float = METRICS_SECONDS,
        recover_seconds: float | None = None,
        metrics_enabled: bool = True,
        connector_for: Callable[[Account], Connector] | None = None,
        idle_seconds: float = MAX_IDLE_SECONDS,
        policy: RetryPolicy | None = None,
        prefetch: int | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1 (how many posts publish at once)")
        self.worker_id = worker_id or default_worker_id()
        self.concurrency = concurrency
        self.embedded = embedded
        self.factory = factory or session_factory()
        bind = self.factory.kw.get("bind")
        if isinstance(bind, Engine):
            serialize_sqlite_writers(bind)
        self.heartbeat_seconds = heartbeat_seconds
        self.metrics_seconds = metrics_seconds
        lease = get_settings().lease_seconds
        self.recover_seconds = recover_seconds or max(0.5, min(10.0, lease / 3))
        self.metrics_enabled = metrics_enabled
        # None: accounts.connector_for (the real platforms); benchmarks and tests pass one.
        self.connector_for = connector_for
        self.idle_seconds = idle_seconds
        self.policy = policy or DEFAULT_POLICY
        # Claimed deliveries queued behind the busy threads, so a thread that comes free
        # starts at once instead of waiting for the next claim (fewer, larger claims).
        self.prefetch = concurrency if prefetch is None else max(0, prefetch)
        self._claim_batch = max(1, self.prefetch // 2)
        self.stats: Counter[str] = Counter()
        self.last_action = "starting"
        self._pool: ThreadPoolExecutor | None = None
        self._scheduler: BackgroundScheduler | None = None
        self._lock = threading.Lock()
        self._in_flight = 0
        self._futures: set[Future[str]] = set()
        self._dispatching = False
        self._wake_flag = False
        self._stopping = threading.Event()
        self._started_at = utcnow()
        self._deferred_at = -DEFER_EVERY_SECONDS

    # ------------------------------------------------------------------ lifecycle

    def _ensure_pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=self.concurrency, thread_name_prefix="amplify-publish"
            )
        return self._pool

    @property
    def running(self) -> bool:
        return self._scheduler is not None and self._scheduler.running

    @property
    def idle(self) -> bool:
        """Nothing publishing and no dispatch running right now."""
        with self._lock:
            return self._in_flight == 0 and not self._dispatching

    def start(self) -> None:
        """Start the timers (returns at once; the work happens on background threads)."""
        if self.running:
            return
        from amplify import notify

        notify.listen()  # committed domain events (a story submitted...) become notifications
        self._stopping.clear()
        self._ensure_pool()
        sched = BackgroundScheduler(timezone=UTC, job_defaults={"misfire_grace_time": None})
        now = datetime.now(UTC)
        # (job, seconds between runs, first run, instances): a second dispatch instance only
        # notes a wake-up for the running one (see _dispatch_job).
        jobs: list[tuple[Callable[[], None], float, datetime, int]] = [
            (self._dispatch_job, self.idle_seconds, now, 2),
            (self._recover_job, self.recover_seconds, now, 1),
            (self._heartbeat_job, self.heartbeat_seconds, now, 1),
            (self._media_job, MEDIA_SWEEP_SECONDS, now + timedelta(minutes=1), 1),
        ]
        if self.metrics_enabled:
            first = now + timedelta(seconds=min(5.0, self.metrics_seconds))
            jobs.append((self._metrics_job, self.metrics_seconds, first, 1))
        for job, seconds, first_run, instances in jobs:
            sched.add_job(
                job,
                "interval",
                seconds=seconds,
                id=job.__name__.strip("_").removesuffix("_job"),
                next_run_time=first_run,
                coalesce=True,
                max_instances=instances,
            )
        self._scheduler = sched
        sched.start()
        self._act("started")
        log.info("worker %s started (%d publishing slots)", self.worker_id, self.concurrency)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop taking work, let in-flight publishes finish, give back the leases."""
        self._stopping.set()
        sched, self._scheduler = self._scheduler, None
        if sched is not None and sched.running:
            sched.shutdown(wait=True)
        pool, self._pool = self._pool, None
        if pool is not None:
            # Claims still queued are not started: cancelled here, given back by release().
            pool.shutdown(wait=False, cancel_futures=True)
            with self._lock:
                pending = list(self._futures)
            wait(pending, timeout=timeout)
            pool.shutdown(wait=True)
        released = self._release()
        self._act(f"stopped (released {released} leases)" if released else "stopped")
        try:
            self.heartbeat()
        except Exception:
            log.exception("could not write the final heartbeat")
        log.info("worker %s stopped", self.worker_id)

    def run_forever(self, install_signals: bool = True) -> None:
        """Run until SIGTERM/SIGINT; then finish in-flight publishes and release leases."""
        if install_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self._stopping.set())
        self.start()
        try:
            while not self._stopping.wait(1.0):
                pass
        finally:
            self.stop()

    def wake(self) -> None:
        """Dispatch now (a story was approved or rescheduled, or a slot came free)."""
        with self._lock:
            self._wake_flag = True
            if self._dispatching:
                return  # the running dispatch sees the flag and goes round again
            self._reschedule(datetime.now(UTC))

    def _reschedule(self, when: datetime) -> None:
        sched = self._scheduler
        if sched is None or not sched.running or self._stopping.is_set():
            return
        with contextlib.suppress(JobLookupError):
            sched.modify_job("dispatch", next_run_time=when)

    # ------------------------------------------------------------------ jobs

    def _dispatch_job(self) -> None:
        with self._lock:
            if self._dispatching:
                self._wake_flag = True
                return
            self._dispatching = True
        round_began = datetime.now(UTC)
        try:
            while not self._stopping.is_set():
                with self._lock:
                    self._wake_flag = False
                round_began = datetime.now(UTC)
                self.dispatch_round()
                with self._lock:
                    if not self._wake_flag:
                        break
        except Exception:
            log.exception("dispatch failed; trying again within a second")
        finally:
            next_at = self._next_dispatch_time(round_began)
            with self._lock:
                self._dispatching = False
                self._reschedule(datetime.now(UTC) if self._wake_flag else next_at)

    def _next_dispatch_time(self, round_began: datetime | None = None) -> datetime:
        now = datetime.now(UTC)
        latest = now + timedelta(seconds=self.idle_seconds)
        try:
            from amplify import queue

            with self.factory() as s:
                due = queue.next_due(s)
        except Exception:
            log.exception("could not read the next due time")
            return latest
        if due is None or due >= latest:
            return latest
        if due <= now:
            if round_began is not None and due >= round_began and self.free_slots() > 0:
                return now  # it came due while the last round was claiming: go again
            # Due before the last claim and still not claimed: no free slot, its account
            # busy in another worker, or waiting on something that may never come (a repost
            # of a failed post). A finishing publish here wakes us; otherwise look again at
            # the idle tick rather than spin on the claim query.
            return latest
        return due

    def _recover_job(self) -> None:
        try:
            self.recover()
        except Exception:
            log.exception("lease recovery failed; trying again shortly")

    def _heartbeat_job(self) -> None:
        try:
            self.heartbeat()
        except Exception:
            log.exception("heartbeat failed")

    def _metrics_job(self) -> None:
        try:
            from amplify import metrics

            result = metrics.sweep(self.factory, connector_for=self.connector_for)
            if result.snapshots:
                self._act(f"metrics: {result.snapshots} snapshots in {result.calls} calls")
        except Exception:
            log.exception("metrics sweep failed; trying again at the next one")

    def _media_job(self) -> None:
        try:
            from amplify import media

            with self.factory() as s:
                removed = media.remove_orphans(s)
            if removed:
                self._act(f"media: removed {len(removed)} unused image files")
        except Exception:
            log.exception("unused-image sweep failed; trying again at the next one")

    # ------------------------------------------------------------------ dispatch

    def free_slots(self) -> int:
        """How many more deliveries this worker may claim now (threads + queue)."""
        with self._lock:
            return max(0, self.concurrency + self.prefetch - self._in_flight)

    def dispatch_round(self, now: datetime | None = None) -> int:
        """Claim due deliveries up to the free slots, repeatedly; returns how many started."""
        from amplify import queue

        started = 0
        if now is not None or time.monotonic() - self._deferred_at >= DEFER_EVERY_SECONDS:
            self._deferred_at = time.monotonic()
            with self.factory() as s:
                if ratelimit.defer_blocked(s, now=now):
                    s.commit()
        while not self._stopping.is_set():
            free = self.free_slots()
            if free <= 0:
                break
            ids = queue.claim_due(self.factory, self.worker_id, limit=free, now=now)
            if not ids:
                break
            for item in self._describe(ids):
                self._submit(self._publish, item)
            started += len(ids)
            if len(ids) < free:
                break
        return started

    def _describe(self, ids: list[int]) -> list[_Claimed]:
        with self.factory() as s:
            rows = s.execute(
                select(
                    Delivery.id,
                    Delivery.account_id,
                    Account.platform,
                    Delivery.kind,
                    Post.amplify,
                    Account.handle,
                )
                .join(Account, Delivery.account_id == Account.id)
                .join(Post, Delivery.post_id == Post.id)
                .where(Delivery.id.in_(ids))
            ).all()
        found = {r[0]: _Claimed(r[0], r[1], r[2], r[3], bool(r[4]), r[5]) for r in rows}
        return [found[i] for i in ids if i in found]

    def _submit(self, fn: Callable[[_Claimed], str], item: _Claimed) -> None:
        pool = self._ensure_pool()
        with self._lock:
            self._in_flight += 1
        try:
            future = pool.submit(fn, item)
        except RuntimeError:  # pool shut down under us: give the claim back
            with self._lock:
                self._in_flight -= 1
            raise
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[str]) -> None:
        outcome = None
        if not future.cancelled() and future.exception() is None:
            outcome = future.result()
        with self._lock:
            self._in_flight -= 1
            self._futures.discard(future)
            if outcome is not None:
                self.stats[outcome] += 1
            # Claim again once half the queue drained (or all is done): fewer, larger claims.
            claim_now = self._in_flight == 0 or (
                self.concurrency + self.prefetch - self._in_flight >= self._claim_batch
            )
        if claim_now:
            self.wake()

    def _publish(self, item: _Claimed) -> Outcome:
        from amplify import publisher

        try:
            if item.platform in ratelimit.LIMITS:
                wait_until = self._spend_budget(item)
                if wait_until is not None:
                    self._act(f"deferred delivery {item.id} to {wait_until:%H:%M:%S} (budget)")
                    return Outcome.DEFERRED
            outcome = publisher.publish_one(
                self.factory,
                item.id,
                self.worker_id,
                policy=self.policy,
                connector_for=self.connector_for,
            )
            self._after_publish(item, outcome)
            self._act(f"delivery {item.id}: {outcome}")
            # The one line per publish: which send, where, how it ended (never the text).
            log.info(
                "delivery %s (%s to %s %s): %s",
                item.id,
                item.kind,
                item.platform,
                item.handle,
                outcome,
            )
            return outcome
        except Exception:
            log.exception("publishing delivery %s crashed; its lease will be reconciled", item.id)
            return Outcome.CRASHED

    def _spend_budget(self, item: _Claimed) -> datetime | None:
        from amplify import queue

        with self.factory() as s:
            delivery = s.get(Delivery, item.id)
            if delivery is None:
                return None
            units = ratelimit.units_for(delivery, self._parts(delivery))
            wait_until = ratelimit.acquire(s, item.platform, item.account_id, units)
            if wait_until is not None:
                queue.defer_claimed(s, item.id, self.worker_id, wait_until)
            s.commit()
            return wait_until

    @staticmethod
    def _parts(delivery: Delivery) -> int:
        if delivery.kind != DeliveryKind.POST:
            return 1
        try:
            from amplify import publisher

            return len(publisher.outgoing_for(delivery).parts)
        except Exception:
            return 1

    def _after_publish(self, item: _Claimed, outcome: Outcome) -> None:
        """Start the amplification wave of a landed original; after a 429, block the
        account's shared budget until the platform's reset. Most outcomes need neither,
        and then no transaction is spent."""
        if outcome == Outcome.PUBLISHED:
            with self._lock:
                self.stats["published_total"] += 1
            if item.kind != DeliveryKind.POST or not item.amplify:
                return
        elif not (outcome == Outcome.RATE_LIMITED and item.platform in ratelimit.LIMITS):
            return
        with self.factory() as s:
            delivery = s.get(Delivery, item.id)
            if delivery is None:
                return
            if delivery.status == DeliveryStatus.PUBLISHED:
                from amplify import amplification

                # Reposts, or share-link notifications (sent after this commit).
                amplification.on_published(s, delivery)
            elif delivery.error_kind == "rate_limited" and delivery.status in (
                DeliveryStatus.PENDING,
                DeliveryStatus.RECONCILE,
            ):
                ratelimit.block(s, item.platform, item.account_id, delivery.next_attempt_at)
            s.commit()

    # ------------------------------------------------------------------ recovery

    def recover(self, now: datetime | None = None) -> int:
        """Expired leases → reconcile through the platform; returns how many were started."""
        from amplify import publisher, queue

        with self.factory() as s:
            expired = queue.expire_leases(s, now=now)
            s.commit()
        if expired:
            self._act(f"lease expired on {len(expired)} deliveries; reconciling")
        started = 0
        while not self._stopping.is_set():
            free = self.free_slots()
            if free <= 0:
                break
            ids = queue.claim_reconcile(self.factory, self.worker_id, limit=free, now=now)
            if not ids:
                break

            def reconcile(item: _Claimed) -> str:
                try:
                    outcome = publisher.reconcile_one(
                        self.factory,
                        item.id,
                        self.worker_id,
                        policy=self.policy,
                        connector_for=self.connector_for,
                    )
                    self._after_publish(item, outcome)
                    log.info(
                        "delivery %s (%s to %s %s) checked after a lost answer: %s",
                        item.id,
                        item.kind,
                        item.platform,
                        item.handle,
                        outcome,
                    )
                    return f"reconcile:{outcome}"
                except Exception:
                    log.exception("reconciling delivery %s crashed", item.id)
                    return f"reconcile:{Outcome.CRASHED}"

            for item in self._describe(ids):
                self._submit(reconcile, item)
            started += len(ids)
            if len(ids) < free:
                break
        return started

    # ------------------------------------------------------------------ heartbeat

    def _act(self, action: str) -> None:
        self.last_action = action

    def heartbeat(self) -> None:
        with self.factory() as s:
            row = s.get(WorkerHeartbeat, self.worker_id)
            if row is None:
                row = WorkerHeartbeat(
                    worker_id=self.worker_id,
                    hostname=socket.gethostname(),
                    pid=os.getpid(),
                    embedded=self.embedded,
                    started_at=self._started_at,
                )
                s.add(row)
            row.last_seen_at = utcnow()
            row.last_action = self.last_action[:1000]
            row.published_count = self.stats["published_total"]
            # Rows of workers gone for days (restarts get new ids) would crowd the dashboard.
            s.execute(
                delete(WorkerHeartbeat).where(
                    WorkerHeartbeat.last_seen_at < row.last_seen_at - HEARTBEAT_KEEP
                )
            )
            s.commit()

    def _release(self) -> int:
        try:
            from amplify import queue

            with self.factory() as s:
                released = queue.release(s, self.worker_id)
                s.commit()
            return len(released) if isinstance(released, list | tuple | set) else int(released or 0)
        except Exception:
            log.exception("could not release this worker's leases; they expire on their own")
            return 0

    # ------------------------------------------------------------------ one pass

    def run_once(self, *, timeout: float = 600.0, metrics: bool = True) -> dict[str, Any]:
        """Publish everything due now (until nothing is claimable), reconcile expired
        leases, then one metrics sweep. Returns a summary."""
        deadline = time.monotonic() + timeout
        before = Counter(self.stats)
        self._ensure_pool()
        started = reconciled = 0
        try:
            while time.monotonic() < deadline:
                with self._lock:
                    pending = list(self._futures)
                if pending and self.free_slots() < self._claim_batch:
                    # Threads are busy and work is queued: claim when half the queue drained.
                    wait(
                        pending,
                        timeout=max(0.0, deadline - time.monotonic()),
                        return_when="FIRST_COMPLETED",
                    )
                    continue
                round_started = self.dispatch_round()
                started += round_started
                with self._lock:
                    pending = list(self._futures)
                if not pending:
                    if round_started:
                        continue  # they finished already: more may be claimable now
                    # Nothing due is left: leases that expired meanwhile, then done.
                    round_reconciled = self.recover()
                    reconciled += round_reconciled
                    if round_reconciled:
                        continue
                    break
                wait(
                    pending,
                    timeout=max(0.0, deadline - time.monotonic()),
                    return_when="FIRST_COMPLETED",
                )
            summary: dict[str, Any] = {
                "worker_id": self.worker_id,
                "claimed": started,
                "reconciled": reconciled,
                "outcomes": {
                    k: v - before.get(k, 0)
                    for k, v in self.stats.items()
                    if v - before.get(k, 0) and k != "published_total"
                },
            }
            if metrics:
                from amplify import metrics as metrics_mod

                result = metrics_mod.sweep(self.factory, connector_for=self.connector_for)
                summary["metrics"] = result.as_dict()
            self._act(f"run once: {started} claimed, {reconciled} reconciled")
            self.heartbeat()
            return summary
        finally:
            if not self.running and self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

