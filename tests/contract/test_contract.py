"""The contract every connector passes. Environments live in tests/contract/envs.py."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from envs import ENVS, ContractHelpers
from PIL import Image

from connectors.base import Connector, Identity, Media, Metrics, OutgoingPost, Receipt


@pytest.fixture(params=[factory for _, factory in ENVS], ids=[name for name, _ in ENVS])
def contract_env(request: pytest.FixtureRequest) -> Iterator[tuple[Connector, ContractHelpers]]:
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
