"""The Bluesky connector against a real local atproto network (PLC + PDS + AppView)."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from atproto import models
from atproto_net.network import AtprotoNetwork
from bluesky_helpers import BlueskyAccounts, ConnectorFactory, LinkPage, png_bytes

from connectors.base import AuthError, Media, OutgoingPost, Receipt
from connectors.bluesky import POST, REPOST, BlueskyConnector, record_key

pytestmark = [
    pytest.mark.atproto,
    # the SDK's upload_blob passes raw bytes the way httpx now deprecates
    pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning"),
]


def key() -> str:
    return uuid.uuid4().hex


def read_record(network: AtprotoNetwork, uri: str) -> dict[str, Any]:
    """The record at ``uri`` exactly as the PDS stores it (raw JSON)."""
    did, collection, rkey = uri[len("at://") :].split("/")
    response = httpx.get(
        f"{network.pds_url}/xrpc/com.atproto.repo.getRecord",
        params={"repo": did, "collection": collection, "rkey": rkey},
    )
    response.raise_for_status()
    value: dict[str, Any] = response.json()["value"]
    return value


def count_posts(network: AtprotoNetwork, did: str) -> int:
    return len(network.list_records(did, POST))


def span(text: str, fragment: str) -> tuple[int, int]:
    """The UTF-8 byte offsets of ``fragment`` in ``text``."""
    start = len(text[: text.index(fragment)].encode())
    return start, start + len(fragment.encode())


# --------------------------------------------------------------------------- publishing


def test_it_publishes_link_mention_and_hashtag_facets_at_utf8_byte_offsets(
    atproto_network: AtprotoNetwork,
    bsky_accounts: BlueskyAccounts,
    bsky_connector: ConnectorFactory,
) -> None:
    bob = bsky_accounts.bob
    text = (
        f"Café ☕ triage 🚑 story with @{bob.handle} — read https://example.org/er-waits "
        "#HealthIT and ask @nobody-here.test"
    )
    [receipt] = bsky_connector(bsky_accounts.team).publish(
        OutgoingPost(parts=(text,), idempotency_key=key())
    )
    record = read_record(atproto_network, receipt.uri or "")
    assert record["text"] == text
    facets = {
        feature["$type"]: (facet["index"]["byteStart"], facet["index"]["byteEnd"], feature)
        for facet in record["facets"]
        for feature in facet["features"]
    }
    assert set(facets) == {
        "app.bsky.richtext.facet#mention",
        "app.bsky.richtext.facet#link",
        "app.bsky.richtext.facet#tag",
    }
    mention = facets["app.bsky.richtext.facet#mention"]
    assert mention[:2] == span(text, f"@{bob.handle}")
    assert mention[2]["did"] == bob.did
    link = facets["app.bsky.richtext.facet#link"]
    assert link[:2] == span(text, "https://example.org/er-waits")
    assert link[2]["uri"] == "https://example.org/er-waits"
    tag = facets["app.bsky.richtext.facet#tag"]
    assert tag[:2] == span(text, "#HealthIT")
    assert tag[2]["tag"] == "HealthIT"
    assert receipt.url and receipt.url.endswith(receipt.uri.rsplit("/", 1)[-1])  # type: ignore[union-attr]


def test_it_attaches_images_with_alt_text_downscaled_under_one_megabyte(
    atproto_network: AtprotoNetwork,
    bsky_accounts: BlueskyAccounts,
    bsky_connector: ConnectorFactory,
    tmp_path: Path,
) -> None:
    big = tmp_path / "chart.png"
    big.write_bytes(png_bytes((1000, 1000), noise=True))
    small = tmp_path / "team.png"
    small.write_bytes(png_bytes())
    assert big.stat().st_size > 1_000_000
    post = OutgoingPost(
        parts=("Two pictures from the clinic",),
        idempotency_key=key(),
        media=(
            Media(str(big), "Bar chart: ER waits fell from 5 to 3 hours", "image/png"),
            Media(str(small), "The triage team in blue scrubs", "image/png"),
        ),
    )
    [receipt] = bsky_connector(bsky_accounts.team).publish(post)
    images = read_record(atproto_network, receipt.uri or "")["embed"]["images"]
    assert [i["alt"] for i in images] == [m.alt_text for m in post.media]
    assert all(0 < i["image"]["size"] <= 1_000_000 for i in images)
    assert images[0]["image"]["mimeType"] == "image/jpeg"  # re-encoded to fit
    assert images[1]["image"]["mimeType"] == "image/png"  # small enough as it was
    ratio = images[1]["aspectRatio"]
    assert (ratio["width"], ratio["height"]) == (64, 48)


def test_it_builds_a_link_card_from_the_pages_open_graph_data(
    atproto_network: AtprotoNetwork,
    bsky_accounts: BlueskyAccounts,
    bsky_connector: ConnectorFactory,
    link_page: LinkPage,
) -> None:
    link = link_page.url("/story")
    [receipt] = bsky_connector(bsky_accounts.team).publish(
        OutgoingPost(parts=(f"Read the story {link}",), idempotency_key=key(), link=link)
    )
    external = read_record(atproto_network, receipt.uri or "")["embed"]["external"]
    assert external["uri"] == link
    assert external["title"] == "Clinic cuts ER waits by 40%"
    assert external["description"] == "How a rural clinic changed triage."
    assert external["thumb"]["mimeType"] == "image/png"
    assert "/thumb.png" in link_page.requests


def test_it_publishes_a_plain_post_when_the_link_cannot_be_read(
    atproto_network: AtprotoNetwork,
    bsky_accounts: BlueskyAccounts,
    bsky_connector: ConnectorFactory,
    link_page: LinkPage,
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/gone"
    connector = bsky_connector(bsky_accounts.team)
    for link in (closed, link_page.url("/plain"), link_page.url("/missing")):
        [receipt] = connector.publish(
            OutgoingPost(parts=(f"Story {key()[:6]}",), idempotency_key=key(), link=link)
        )
        assert "embed" not in read_record(atproto_network, receipt.uri or "")


def test_it_threads_the_parts_with_root_and_parent_references(
    atproto_network: AtprotoNetwork,
    bsky_accounts: BlueskyAccounts,
    bsky_connector: ConnectorFactory,
) -> None:
    parts = ("Our clinic story 1/3", "What changed 2/3", "What's next 3/3")
    seen: list[int] = []
    receipts = bsky_connector(bsky_accounts.team).publish(
        OutgoingPost(parts=parts, idempotency_key=key()),
        on_part=lambda index, receipt: seen.append(index),
    )
    assert seen == [0, 1, 2]
    records = [read_record(atproto_network, r.uri or "") for r in receipts]
    assert [r["text"] for r in records] == list(parts)
    assert "reply" not in records[0]
    for index in (1, 2):
        reply = records[index]["reply"]
        assert (reply["root"]["uri"], reply["root"]["cid"]) == (receipts[0].uri, receipts[0].cid)
        parent = receipts[index - 1]
        assert (reply["parent"]["uri"], reply["parent"]["cid"]) == (parent.uri, parent.cid)


def test_it_refuses_a_post_that_fails_validation_before_calling_the_platform(
    bsky_accounts: BlueskyAccounts,
    bsky_connector: ConnectorFactory,
    atproto_network: AtprotoNetwork,
) -> None:
    before = count_posts(atproto_network, bsky_accounts.team.did)
    with pytest.raises(Exception, match="Bluesky allows 300"):
        bsky_connector(bsky_accounts.team).publish(
            OutgoingPost(parts=("é" * 301,), idempotency_key=key())
        )
    assert count_posts(atproto_network, bsky_accounts.team.did) == before


# --------------------------------------------------------------------------- exactly once


def test_it_publishes_once_when_retried_with_the_same_key(
    atproto_network: AtprotoNetwork,
    bsky_accounts: BlueskyAccounts,
    bsky_connector: ConnectorFactory,
) -> None:
    team = bsky_accounts.team
    before = count_posts(atproto_network, team.did)
    post = OutgoingPost(parts=(f"Once only {key()[:6]}",), idempotency_key=key())
    first = bsky_connector(team).publish(post)
    again = bsky_connector(team).publish(post)  # a fresh worker retrying the delivery
    assert [r.uri for r in again] == [r.uri for r in first]
    assert [r.cid for r in again] == [r.cid for r in first]
    assert count_posts(atproto_network, team.did) == before + 1
    assert (first[0].uri or "").endswith("/" + record_key(post.idempotency_key, 0))


class Crash(Exception):
    pass


def test_it_continues_a_thread_after_a_crash_without_duplicating_a_part(
    atproto_network: AtprotoNetwork,
    bsky_accounts: BlueskyAccounts,
    bsky_connector: ConnectorFactory,
) -> None:
    team = bsky_accounts.team
    post = OutgoingPost(parts=("Crash 1/3", "Crash 2/3", "Crash 3/3"), idempotency_key=key())
    before = count_posts(atproto_network, team.did)
    landed: list[Receipt] = []

    def crash_after_first(index: int, receipt: Receipt) -> None:
        landed.append(receipt)
        raise Crash("worker killed after part 1")

    with pytest.raises(Crash):
        bsky_connector(team).publish(post, on_part=crash_after_first)
    assert count_posts(atproto_network, team.did) == before + 1

    found = bsky_connector(team).find_published(post)
    assert found is not None and [r.uri for r in found] == [landed[0].uri]

    resumed = bsky_connector(team).publish(
        OutgoingPost(parts=post.parts, idempotency_key=post.idempotency_key, landed=tuple(found))
    )
    assert resumed[0].uri == landed[0].uri
    assert count_posts(atproto_network, team.did) == before + 3
    second = read_record(atproto_network, resumed[1].uri or "")
    assert second["reply"]["parent"]["uri"] == landed[0].uri

    # The receipt of part 1 was lost too (crash before it was stored): still no duplicate.
    blind = bsky_connector(team).publish(post)
    assert [r.uri for r in blind] == [r.uri for r in resumed]
    assert count_posts(atproto_network, team.did) == before + 3


def test_it_finds_nothing_for_a_post_that_never_landed(
    bsky_accounts: BlueskyAccounts, bsky_connector: ConnectorFactory
) -> None:
    post = OutgoingPost(parts=("Never sent", "Never sent 2"), idempotency_key=key())
    assert bsky_connector(bsky_accounts.team).find_published(post) is None


# --------------------------------------------------------------------------- sessions


def test_it_reuses_a_stored_session_instead_of_logging_in(
    atproto_network: AtprotoNetwork,
    bsky_accounts: BlueskyAccounts,
    bsky_connector: ConnectorFactory,
) -> None:
    stored: list[str] = []
    first = bsky_connector(bsky_accounts.team, on_session_change=stored.append)
    assert first.whoami().handle == bsky_accounts.team.handle
    assert len(stored) == 1 and bsky_accounts.team.did in stored[0]
    assert bsky_accounts.team.app_password not in stored[0]

    # The password is wrong, so only the stored session can make this work.
    second = bsky_connector(
        bsky_accounts.team,
        session=stored[0],
        password="wrong-pass-word",
        on_session_change=stored.append,
    )
    [receipt] = second.publish(OutgoingPost(parts=("Same session",), idempotency_key=key()))
    assert read_record(atproto_network, receipt.uri or "")["text"] == "Same session"
    assert len(stored) == 1  # no new session was created


def test_it_logs_in_again_when_the_stored_session_is_refused(
    bsky_accounts: BlueskyAccounts, bsky_connector: ConnectorFactory
) -> None:
    stored: list[str] = []
    bsky_connector(bsky_accounts.team, on_session_change=stored.append).whoami()
    handle, did, access, refresh, pds = stored[0].split(":::")
    broken = ":::".join([handle, did, access[:-4] + "AAAA", refresh, pds])  # bad signature
    connector = bsky_connector(bsky_accounts.team, session=broken, on_session_change=stored.append)
    assert connector.whoami().remote_user_id == bsky_accounts.team.did
    assert len(stored) == 2 and stored[1] != broken


def test_it_says_how_to_fix_a_refused_app_password(
    bsky_accounts: BlueskyAccounts, bsky_connector: ConnectorFactory
) -> None:
    connector = bsky_connector(bsky_accounts.team, password="not-the-app-password")
    with pytest.raises(AuthError) as refused:
        connector.whoami()
    message = str(refused.value)
    assert f"@{bsky_accounts.team.handle}" in message
    assert "App passwords" in message
    assert "not-the-app-password" not in message


# --------------------------------------------------------------------------- amplification


def test_it_counts_engagement_and_finds_spreaders_with_their_followers(
    atproto_network: AtprotoNetwork,
    bsky_accounts: BlueskyAccounts,
    bsky_connector: ConnectorFactory,
) -> None:
    team, bob, carol = bsky_accounts.team, bsky_accounts.bob, bsky_accounts.carol
    [receipt] = bsky_connector(team).publish(
        OutgoingPost(parts=(f"Amplify me {key()[:6]}",), idempotency_key=key())
    )
    bob_connector = bsky_connector(bob)
    repost_key = key()
    repost = bob_connector.repost(receipt, repost_key)
    assert bob_connector.repost(receipt, repost_key).uri == repost.uri  # once per key
    assert len(atproto_network.list_records(bob.did, REPOST)) == 1

    carol_client = atproto_network.client(carol)
    bob_client = atproto_network.client(bob)
    carol_client.like(receipt.uri or "", receipt.cid or "")
    bob_client.like(receipt.uri or "", receipt.cid or "")
    carol_client.follow(bob.did)
    team_client = atproto_network.client(team)
    team_client.follow(bob.did)
    ref = models.create_strong_ref(
        models.ComAtprotoRepoCreateRecord.Response(uri=receipt.uri or "", cid=receipt.cid or "")
    )
    carol_client.send_post("Quoting this", embed=models.AppBskyEmbedRecord.Main(record=ref))
    carol_client.send_post(
        "Replying to this", reply_to=models.AppBskyFeedPost.ReplyRef(root=ref, parent=ref)
    )
    atproto_network.process_all()

    [metrics] = bsky_connector(team).fetch_metrics([receipt])
    assert metrics.remote_id == receipt.remote_id
    assert (metrics.likes, metrics.reposts, metrics.replies, metrics.quotes) == (2, 1, 1, 1)
    assert metrics.impressions is None and not metrics.simulated

    spreaders = {s.handle: s for s in bsky_connector(team).fetch_spreaders(receipt)}
    assert set(spreaders) == {bob.handle, carol.handle}
    assert spreaders[bob.handle].kind == "repost"
    assert spreaders[bob.handle].followers_count == 2
    assert spreaders[bob.handle].remote_user_id == bob.did
    assert spreaders[carol.handle].kind == "quote"
    assert spreaders[carol.handle].followers_count == 0

    assert bsky_connector(bob).whoami().followers_count == 2


def test_it_reads_counts_for_more_posts_than_one_batch(
    atproto_network: AtprotoNetwork,
    bsky_accounts: BlueskyAccounts,
    bsky_connector: ConnectorFactory,
) -> None:
    connector = bsky_connector(bsky_accounts.team)
    receipts = [
        connector.publish(OutgoingPost(parts=(f"Batch {i}",), idempotency_key=key()))[0]
        for i in range(BlueskyConnector.metrics_batch_size + 2)
    ]
    atproto_network.process_all()
    metrics = connector.fetch_metrics(receipts)
    assert [m.remote_id for m in metrics] == [r.remote_id for r in receipts]


def test_it_deletes_a_post(
    atproto_network: AtprotoNetwork,
    bsky_accounts: BlueskyAccounts,
    bsky_connector: ConnectorFactory,
) -> None:
    connector = bsky_connector(bsky_accounts.team)
    post = OutgoingPost(parts=("Delete me",), idempotency_key=key())
    [receipt] = connector.publish(post)
    connector.delete(receipt)
    assert connector.find_published(post) is None
    atproto_network.process_all()
    assert connector.fetch_metrics([receipt]) == []


def test_it_continues_under_a_landed_part_known_only_by_its_address(
    atproto_network: AtprotoNetwork,
    bsky_accounts: BlueskyAccounts,
    bsky_connector: ConnectorFactory,
) -> None:
    connector = bsky_connector(bsky_accounts.team)
    parts = ("Known by uri 1/2", "Known by uri 2/2")
    k = key()
    [first] = connector.publish(OutgoingPost(parts=parts[:1], idempotency_key=k))
    landed = (Receipt(remote_id=first.remote_id),)  # no cid stored
    receipts = connector.publish(OutgoingPost(parts=parts, idempotency_key=k, landed=landed))
    reply = read_record(atproto_network, receipts[1].uri or "")["reply"]
    assert (reply["parent"]["uri"], reply["parent"]["cid"]) == (first.uri, first.cid)
    assert receipts[0].cid == first.cid
