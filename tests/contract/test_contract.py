"""The contract every connector passes. Environments live in tests/contract/envs.py."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from envs import ENVS, GARBAGE_ENVS, GARBAGE_KINDS, ContractHelpers, Spoil
from PIL import Image

from connectors.base import (
    CLOCK_SKEW_ALLOWANCE,
    Connector,
    ConnectorError,
    Identity,
    Media,
    Metrics,
    OutgoingPost,
    PermanentError,
    Receipt,
    TransientError,
    not_before_for,
)


@pytest.fixture(params=[factory for _, factory in ENVS], ids=[name for name, _ in ENVS])
def contract_env(request: pytest.FixtureRequest) -> Iterator[tuple[Connector, ContractHelpers]]:
    with contextlib.contextmanager(request.param)(request) as env:
        yield env


@pytest.fixture(params=[factory for _, factory in GARBAGE_ENVS], ids=[n for n, _ in GARBAGE_ENVS])
def garbage_env(request: pytest.FixtureRequest) -> Iterator[tuple[Connector, Spoil]]:
    with contextlib.contextmanager(request.param)(request) as env:
        yield env


def key() -> str:
    return uuid.uuid4().hex


def story(text: str = "Our clinic cut ER wait times by 40%") -> str:
    return f"{text} ({uuid.uuid4().hex[:8]})"


@pytest.fixture
def image(tmp_path: Path) -> str:
    path = tmp_path / "chart.png"
    Image.new("RGB", (8, 8), (200, 30, 30)).save(path)
    return str(path)


def test_it_flags_an_over_long_text(contract_env: tuple[Connector, ContractHelpers]) -> None:
    connector, _ = contract_env
    assert connector.validate(OutgoingPost(parts=("x" * 5000,), idempotency_key=key()))
    assert connector.validate(OutgoingPost(parts=(story(),), idempotency_key=key())) == []


def test_it_flags_a_missing_alt_text(
    contract_env: tuple[Connector, ContractHelpers], image: str
) -> None:
    connector, _ = contract_env
    problems = connector.validate(
        OutgoingPost(parts=(story(),), idempotency_key=key(), media=(Media(image, ""),))
    )
    assert any("alt" in p.lower() for p in problems)


def test_it_publishes_and_returns_a_receipt(
    contract_env: tuple[Connector, ContractHelpers],
) -> None:
    connector, helpers = contract_env
    before = helpers.count_posts()
    receipts = connector.publish(OutgoingPost(parts=(story(),), idempotency_key=key()))
    assert len(receipts) == 1
    assert isinstance(receipts[0], Receipt) and receipts[0].remote_id
    assert helpers.count_posts() == before + 1


def test_it_publishes_once_for_the_same_idempotency_key(
    contract_env: tuple[Connector, ContractHelpers],
) -> None:
    connector, helpers = contract_env
    before = helpers.count_posts()
    post = OutgoingPost(parts=(story(),), idempotency_key=key())
    first = connector.publish(post)
    second = connector.publish(post)
    assert helpers.count_posts() == before + 1
    assert [r.remote_id for r in second] == [r.remote_id for r in first]


def test_it_finds_what_was_published_and_nothing_before(
    contract_env: tuple[Connector, ContractHelpers],
) -> None:
    connector, _ = contract_env
    post = OutgoingPost(parts=(story(),), idempotency_key=key())
    assert connector.find_published(post) is None
    receipts = connector.publish(post)
    found = connector.find_published(post)
    assert found is not None
    assert [r.remote_id for r in found] == [r.remote_id for r in receipts]


def test_it_fetches_one_metrics_reading_per_receipt(
    contract_env: tuple[Connector, ContractHelpers],
) -> None:
    connector, _ = contract_env
    receipts = [
        connector.publish(OutgoingPost(parts=(story(f"story {i}"),), idempotency_key=key()))[0]
        for i in range(3)
    ]
    metrics = connector.fetch_metrics(receipts)
    assert len(metrics) == 3
    assert all(isinstance(m, Metrics) for m in metrics)
    assert {m.remote_id for m in metrics} == {r.remote_id for r in receipts}
    assert all(m.likes >= 0 and m.reposts >= 0 for m in metrics)


def test_it_publishes_a_thread_in_order_part_by_part(
    contract_env: tuple[Connector, ContractHelpers],
) -> None:
    connector, helpers = contract_env
    before = helpers.count_posts()
    parts = tuple(story(f"{i}/3 part") for i in (1, 2, 3))
    seen: list[tuple[int, str]] = []
    receipts = connector.publish(
        OutgoingPost(parts=parts, idempotency_key=key()),
        on_part=lambda index, receipt: seen.append((index, receipt.remote_id)),
    )
    assert [i for i, _ in seen] == [0, 1, 2]
    assert [rid for _, rid in seen] == [r.remote_id for r in receipts]
    assert len({r.remote_id for r in receipts}) == 3
    assert helpers.count_posts() == before + 3
    if helpers.reply_parent is not None:
        assert helpers.reply_parent(receipts[0]) is None
        assert helpers.reply_parent(receipts[1]) == receipts[0].remote_id
        assert helpers.reply_parent(receipts[2]) == receipts[1].remote_id


def test_it_resumes_a_thread_after_the_landed_parts(
    contract_env: tuple[Connector, ContractHelpers],
) -> None:
    connector, helpers = contract_env
    parts = tuple(story(f"{i}/3 resumed") for i in (1, 2, 3))
    k = key()
    first = connector.publish(OutgoingPost(parts=parts[:1], idempotency_key=k))
    before = helpers.count_posts()
    receipts = connector.publish(OutgoingPost(parts=parts, idempotency_key=k, landed=tuple(first)))
    assert len(receipts) == 3
    assert receipts[0].remote_id == first[0].remote_id
    assert helpers.count_posts() == before + 2


def test_it_says_who_the_account_is(contract_env: tuple[Connector, ContractHelpers]) -> None:
    connector, helpers = contract_env
    identity = connector.whoami()
    assert isinstance(identity, Identity)
    assert identity.handle.lower() == helpers.handle.lower()
    assert identity.remote_user_id


# --------------------------------------------------------------------------- garbage answers


@pytest.mark.parametrize("action", ["publish", "find_published", "whoami"])
@pytest.mark.parametrize("kind", GARBAGE_KINDS)
def test_it_reports_an_answer_it_cannot_read_as_transient_or_permanent_in_plain_words(
    garbage_env: tuple[Connector, Spoil], kind: str, action: str
) -> None:
    """Empty bodies, HTML with 200, truncated JSON, missing ids, wrong types: never a
    KeyError or TypeError out of the connector, and a reason a lead can read."""
    connector, spoil = garbage_env
    post = OutgoingPost(parts=(story(),), idempotency_key=key())
    if action == "find_published":
        with contextlib.suppress(ConnectorError):
            connector.publish(post)  # something to find (where the server is not all garbage)
    spoil(kind, action)
    with pytest.raises(ConnectorError) as caught:
        if action == "publish":
            connector.publish(post)
        elif action == "find_published":
            connector.find_published(post)
        else:
            connector.whoami()
    error = caught.value
    assert isinstance(error, TransientError | PermanentError), type(error)
    message = str(error)
    assert "cannot read" in message, message
    for leak in ("<", "Error", "Traceback", "{"):
        assert leak not in message, message


# --------------------------------------------------------------------------- time bound


def test_it_never_takes_an_earlier_post_with_the_same_words_for_this_one(
    contract_env: tuple[Connector, ContractHelpers],
) -> None:
    """Reconciliation ignores anything older than ``not_before`` (the first claim less the
    clock-skew allowance): here the same words went out before this delivery was claimed."""
    connector, _ = contract_env
    words = (story("Advocacy day is tomorrow 1/2"), story("Bring a friend 2/2"))
    earlier = connector.publish(OutgoingPost(parts=words, idempotency_key=key()))
    # First claimed well after the earlier post went out, so the bound excludes it.
    first_claim = datetime.now(UTC) + CLOCK_SKEW_ALLOWANCE + timedelta(minutes=1)
    again = OutgoingPost(parts=words, idempotency_key=key(), not_before=not_before_for(first_claim))
    assert connector.find_published(again) is None
    # Without a bound (a delivery claimed before the bound existed) only the key or the
    # words decide, as before.
    same = OutgoingPost(parts=words, idempotency_key=key())
    found = connector.find_published(same)
    assert found is None or [r.remote_id for r in found] == [r.remote_id for r in earlier]
