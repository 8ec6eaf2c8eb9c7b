from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from amplify.retry import DEFAULT_POLICY, Failure, RetryDecision, RetryPolicy, Verdict

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Fixed:
    """A stand-in random source that always picks the same point of the range."""

    def __init__(self, where: float) -> None:
        self.where = where

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.where


def test_it_grows_the_delay_exponentially_until_the_cap() -> None:
    policy = RetryPolicy(base_seconds=30, factor=2, cap_seconds=600, max_attempts=20, jitter=0)
    delays = [policy.delay(n) for n in range(1, 8)]
    assert delays == [30, 60, 120, 240, 480, 600, 600]


def test_it_never_exceeds_the_cap_even_after_very_many_attempts() -> None:
    policy = RetryPolicy(cap_seconds=3600, max_attempts=10_000)
    assert policy.delay(5000, random.Random(1)) <= 3600
    assert policy.nominal_delay(5000) == 3600


def test_it_jitters_within_the_configured_fraction_below_the_nominal_delay() -> None:
    policy = RetryPolicy(base_seconds=100, factor=2, jitter=0.25)
    rng = random.Random(7)
    samples = [policy.delay(2, rng) for _ in range(500)]
    assert min(samples) >= 150 and max(samples) <= 200
    assert len({round(x, 3) for x in samples}) > 100  # really spread, not one value


def test_it_spreads_full_jitter_over_zero_to_the_nominal_delay() -> None:
    policy = RetryPolicy(base_seconds=100, mode="full")
    assert policy.delay(3, Fixed(0.0)) == 0
    assert policy.delay(3, Fixed(1.0)) == 400
    samples = [policy.delay(3, random.Random(i)) for i in range(200)]
    assert all(0 <= x <= 400 for x in samples)


def test_it_keeps_decorrelated_jitter_between_base_and_three_times_the_previous_delay() -> None:
    policy = RetryPolicy(base_seconds=10, factor=2, cap_seconds=1000, mode="decorrelated")
    assert policy.delay(3, Fixed(0.0)) == 10
    assert policy.delay(3, Fixed(1.0)) == 60  # previous nominal 20 s, times three
    assert policy.delay(30, Fixed(1.0)) == 1000  # capped


def test_it_gives_up_after_max_attempts() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert policy.next_attempt_at(2, NOW) is not None
    assert policy.next_attempt_at(3, NOW) is None


def test_it_never_schedules_earlier_than_the_platform_reset_time() -> None:
    reset = NOW + timedelta(minutes=15)
    when = DEFAULT_POLICY.next_attempt_at(1, NOW, retry_at=reset, rng=Fixed(1.0))
    assert when == reset


def test_it_keeps_its_own_later_time_when_the_platform_reset_is_sooner() -> None:
    policy = RetryPolicy(base_seconds=600, jitter=0)
    when = policy.next_attempt_at(1, NOW, retry_at=NOW + timedelta(seconds=5))
    assert when == NOW + timedelta(seconds=600)


def test_it_returns_a_time_after_now_for_the_default_policy() -> None:
    when = DEFAULT_POLICY.next_attempt_at(1, NOW, rng=random.Random(3))
    assert when is not None
    assert NOW + timedelta(seconds=22.5) <= when <= NOW + timedelta(seconds=30)


def test_it_refuses_a_nonsensical_policy_with_every_problem_named() -> None:
    with pytest.raises(ValueError) as err:
        RetryPolicy(base_seconds=0, max_attempts=0, jitter=2)
    message = str(err.value)
    assert "base_seconds" in message and "max_attempts" in message and "jitter" in message


# --------------------------------------------------------------------------- the decision


def test_it_decides_to_retry_a_transient_failure_at_the_backoff_time() -> None:
    policy = RetryPolicy(base_seconds=30, factor=2, jitter=0, max_attempts=5)
    decision = policy.decide(Failure.TRANSIENT, 2, NOW)
    assert decision == RetryDecision(Verdict.RETRY, 2, NOW + timedelta(seconds=60))


def test_it_gives_up_on_a_transient_failure_once_the_attempts_are_used_up() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert policy.decide(Failure.TRANSIENT, 2, NOW).verdict == Verdict.RETRY
    decision = policy.decide(Failure.TRANSIENT, 3, NOW)
    assert decision == RetryDecision(Verdict.GIVE_UP, 3, None, exhausted=True)


def test_it_gives_up_on_a_permanent_failure_at_once_without_calling_it_exhausted() -> None:
    decision = DEFAULT_POLICY.decide(Failure.PERMANENT, 1, NOW)
    assert decision == RetryDecision(Verdict.GIVE_UP, 1, None, exhausted=False)


def test_it_sends_an_auth_failure_to_an_admin_whatever_the_attempts() -> None:
    for attempts in (1, 50):
        decision = DEFAULT_POLICY.decide(Failure.AUTH, attempts, NOW)
        assert decision == RetryDecision(Verdict.NEEDS_ATTENTION, attempts)


def test_it_waits_for_the_platforms_reset_and_does_not_count_the_attempt() -> None:
    reset = NOW + timedelta(minutes=15)
    decision = RetryPolicy(max_attempts=2).decide(Failure.RATE_LIMITED, 2, NOW, retry_at=reset)
    assert decision == RetryDecision(Verdict.WAIT_FOR_RESET, 1, reset)


def test_it_never_lets_a_rate_limit_give_up_even_past_the_attempt_limit() -> None:
    decision = RetryPolicy(max_attempts=1).decide(Failure.RATE_LIMITED, 9, NOW)
    assert decision.verdict == Verdict.WAIT_FOR_RESET and decision.attempts == 8


def test_it_backs_off_a_rate_limit_whose_reset_is_missing_or_already_past() -> None:
    policy = RetryPolicy(base_seconds=40, jitter=0)
    for retry_at in (None, NOW - timedelta(seconds=5)):
        decision = policy.decide(Failure.RATE_LIMITED, 1, NOW, retry_at=retry_at)
        # attempts 1 → 0 after the refund; the backoff still uses at least one attempt
        assert decision == RetryDecision(Verdict.WAIT_FOR_RESET, 0, NOW + timedelta(seconds=40))


def test_it_keeps_a_reset_time_that_is_exactly_now() -> None:
    decision = DEFAULT_POLICY.decide(Failure.RATE_LIMITED, 1, NOW, retry_at=NOW)
    assert decision.at == NOW


def test_it_decides_the_same_way_twice_for_the_same_inputs() -> None:
    # Pure: the answer depends only on its arguments (the random source is one of them).
    first = DEFAULT_POLICY.decide(Failure.TRANSIENT, 3, NOW, rng=Fixed(0.3))
    second = DEFAULT_POLICY.decide(Failure.TRANSIENT, 3, NOW, rng=Fixed(0.3))
    assert first == second and first.at is not None and first.at > NOW
