"""When to try a failed delivery again: exponential backoff with jitter, capped (pure).

This is the policy only; the retry *loop* is the queue. In the style of procrastinate's
retry strategy, ``RetryPolicy.decide(failure, attempts, now)`` returns a ``RetryDecision``
(retry at T, wait for the platform's reset, give up, or needs attention) without touching
anything; ``amplify.queue.fail`` maps the connector error onto a ``Failure`` and applies
the decision to the delivery.

Jitter modes:

- ``"proportional"`` (default): the nominal delay ``base * factor**(n-1)`` shortened by up
  to ``jitter`` of itself, so the first retry of a 30 s policy lands in 22.5–30 s.
- ``"full"``: uniform in ``[0, nominal]`` (AWS "full jitter"); spreads a thundering herd
  best, but may retry almost at once.
- ``"decorrelated"``: uniform in ``[base, 3 * previous nominal]``, capped (AWS
  "decorrelated jitter", with the previous delay taken as the nominal one since the
  queue stores times, not delays).

A platform's own ``retry_at`` (a rate-limit reset time) always wins when it is later:
the answer is never earlier than it.
"""

from __future__ import annotations

import enum
import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

JitterMode = Literal["proportional", "full", "decorrelated"]


class UniformSource(Protocol):
    def uniform(self, a: float, b: float) -> float: ...


class Failure(enum.StrEnum):
    """What ended an attempt (the queue maps a connector error onto one)."""

    TRANSIENT = "transient"  # a timeout, a 5xx: try again later
    RATE_LIMITED = "rate_limited"  # the platform said wait (until its reset time, if given)
    PERMANENT = "permanent"  # the platform refused this post: retrying cannot help
    AUTH = "auth"  # the account's credentials failed


class Verdict(enum.StrEnum):
    RETRY = "retry"  # try again at ``at`` (backoff)
    WAIT_FOR_RESET = "wait_for_reset"  # again at ``at``; the attempt does not count
    GIVE_UP = "give_up"  # permanent, or out of attempts: a lead must look
    NEEDS_ATTENTION = "needs_attention"  # an admin must fix the account first


@dataclass(frozen=True)
class RetryDecision:
    verdict: Verdict
    attempts: int  # the attempts count to store
    at: datetime | None = None  # when to try again (retry, wait for reset)
    exhausted: bool = False  # gave up because ``max_attempts`` was reached


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 30
    factor: float = 2
    cap_seconds: float = 3600
    max_attempts: int = 8
    jitter: float = 0.25
    mode: JitterMode = "proportional"

    def __post_init__(self) -> None:
        problems = []
        if self.base_seconds <= 0:
            problems.append("base_seconds must be greater than 0")
        if self.factor < 1:
            problems.append("factor must be at least 1")
        if self.cap_seconds < self.base_seconds:
            problems.append("cap_seconds must be at least base_seconds")
        if self.max_attempts < 1:
            problems.append("max_attempts must be at least 1")
        if not 0 <= self.jitter <= 1:
            problems.append("jitter must be between 0 and 1")
        if problems:
            raise ValueError("invalid retry policy: " + "; ".join(problems))

    def nominal_delay(self, attempts: int) -> float:
        """The un-jittered delay in seconds after ``attempts`` failed attempts (>= 1)."""
        n = max(attempts, 1)
        # Compare exponents rather than computing a huge power for large attempt counts.
        room = math.log(self.cap_seconds / self.base_seconds)
        if self.factor > 1 and (n - 1) * math.log(self.factor) >= room:
            return float(self.cap_seconds)
        return float(min(self.cap_seconds, self.base_seconds * self.factor ** (n - 1)))

    def delay(self, attempts: int, rng: UniformSource = random) -> float:
        """The jittered delay in seconds after ``attempts`` failed attempts, never above the cap."""
        nominal = self.nominal_delay(attempts)
        if self.mode == "full":
            value = rng.uniform(0, nominal)
        elif self.mode == "decorrelated":
            previous = self.nominal_delay(attempts - 1) if attempts > 1 else self.base_seconds
            value = rng.uniform(self.base_seconds, max(self.base_seconds, 3 * previous))
        else:
            value = rng.uniform(nominal * (1 - self.jitter), nominal)
        return max(0.0, min(float(self.cap_seconds), value))

    def gives_up(self, attempts: int) -> bool:
        return attempts >= self.max_attempts

    def next_attempt_at(
        self,
        attempts: int,
        now: datetime,
        retry_at: datetime | None = None,
        rng: UniformSource = random,
    ) -> datetime | None:
        """When to try again after ``attempts`` attempts have failed; None means give up.

        ``retry_at`` (the platform's reset time) is honoured: the result is never earlier.
        """
        if self.gives_up(attempts):
            return None
        when = now + timedelta(seconds=self.delay(attempts, rng))
        if retry_at is not None and retry_at > when:
            return retry_at
        return when

    def decide(
        self,
        failure: Failure,
        attempts: int,
        now: datetime,
        *,
        retry_at: datetime | None = None,
        rng: UniformSource = random,
    ) -> RetryDecision:
        """What to do after an attempt failed with ``failure`` (``attempts`` counts it).

        A rate limit does not count toward giving up: it waits for the platform's
        ``retry_at`` (or a backoff when none, or a past one, was given).
        """
        if failure == Failure.RATE_LIMITED:
            attempts = max(0, attempts - 1)
            if retry_at is None or retry_at < now:
                retry_at = now + timedelta(seconds=self.delay(max(attempts, 1), rng))
            return RetryDecision(Verdict.WAIT_FOR_RESET, attempts, retry_at)
        if failure == Failure.AUTH:
            return RetryDecision(Verdict.NEEDS_ATTENTION, attempts)
        if failure == Failure.PERMANENT:
            return RetryDecision(Verdict.GIVE_UP, attempts)
        when = self.next_attempt_at(attempts, now, rng=rng)
        if when is None:
            return RetryDecision(Verdict.GIVE_UP, attempts, exhausted=True)
        return RetryDecision(Verdict.RETRY, attempts, when)


DEFAULT_POLICY = RetryPolicy()
