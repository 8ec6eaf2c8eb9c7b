"""Connector environments for the contract suite (tests/contract/test_contract.py).

The suite imports this module as ``envs`` (pytest puts tests/contract on sys.path; the
folder has no ``__init__.py`` on purpose).

Every connector must pass the same tests. Each platform contributes one *env factory*:
a generator function taking the pytest ``request`` and yielding ``(connector, helpers)``,
then cleaning up after the ``yield``. The factory may ask for any fixture with
``request.getfixturevalue("sqlite_url")`` (or ``tmp_path``, or a fixture of its own that
starts a fake server on 127.0.0.1).

To add your connector, write a factory in this file (or import it from your own test
module) and append it to ``ENVS`` with a short id::

    def x_env(request: pytest.FixtureRequest) -> Iterator[tuple[Connector, ContractHelpers]]:
        server = request.getfixturevalue("fake_x_server")   # your own fixture
        connector = XConnector(ConnectorContext(handle="team", ...))
        yield connector, ContractHelpers(handle="team", count_posts=server.count_posts)

    ENVS.append(("x", x_env))

``ContractHelpers.count_posts`` reads back how many posts (not reposts) the server holds
for the account; ``reply_parent`` (optional) tells which remote id a post replies to, so
the thread test can check the chain.

Garbage answers: a connector that talks HTTP also appends a factory to ``GARBAGE_ENVS``
yielding ``(connector, spoil)``, where ``spoil(kind, action)`` makes the server answer the
next request of ``action`` (``publish``, ``find_published``, ``whoami``) with a body the
platform never sends (``GARBAGE_KINDS``). The sandbox and memory connectors talk to no
server, so the case does not apply to them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from amplify.db import session_scope
from amplify.models import SandboxRecord
from connectors.base import Connector, ConnectorContext, Receipt


@dataclass
class ContractHelpers:
    handle: str  # what whoami() must report
    count_posts: Callable[[], int]
    reply_parent: Callable[[Receipt], str | None] | None = None


EnvFactory = Callable[[pytest.FixtureRequest], Iterator[tuple[Connector, ContractHelpers]]]
Spoil = Callable[[str, str], None]
GarbageFactory = Callable[[pytest.FixtureRequest], Iterator[tuple[Connector, Spoil]]]
GARBAGE_KINDS = ("empty", "html", "truncated", "missing_ids", "wrong_types")
GARBAGE_ENVS: list[tuple[str, GarbageFactory]] = []


# --------------------------------------------------------------------------- sandbox


def sandbox_env(request: pytest.FixtureRequest) -> Iterator[tuple[Connector, ContractHelpers]]:
    from connectors.sandbox import SandboxConnector

    url: str = request.getfixturevalue("sqlite_url")
    handle = "contract.sandbox"
    connector = SandboxConnector(
        ConnectorContext(handle=handle, service_url="", credentials={}), database_url=url
    )

    def count_posts() -> int:
        with session_scope(url) as s:
            query = select(func.count()).where(
                SandboxRecord.handle == handle, SandboxRecord.kind == "post"
            )
            return int(s.scalar(query) or 0)

    def reply_parent(receipt: Receipt) -> str | None:
        with session_scope(url) as s:
            record = s.get(SandboxRecord, int(receipt.remote_id))
            assert record is not None
            return None if record.reply_to is None else str(record.reply_to)

    yield connector, ContractHelpers(handle, count_posts, reply_parent)


# --------------------------------------------------------------------------- memory


def memory_env(request: pytest.FixtureRequest) -> Iterator[tuple[Connector, ContractHelpers]]:
    from tests.memory_connector import MemoryConnector, MemoryNetwork

    network = MemoryNetwork()  # private to this test: nothing shared with other tests
    handle = "contract"
    connector = MemoryConnector(
        ConnectorContext(handle=handle, service_url="", credentials={}), network=network
    )

    def reply_parent(receipt: Receipt) -> str | None:
        record = network._get(receipt.remote_id)
        assert record is not None
        return None if record.reply_to is None else str(record.reply_to)

    yield (
        connector,
        ContractHelpers(handle, lambda: len(network.published(handle, kind="post")), reply_parent),
    )


ENVS: list[tuple[str, EnvFactory]] = [("sandbox", sandbox_env), ("memory", memory_env)]


# --------------------------------------------------------------------------- x


def x_env(request: pytest.FixtureRequest) -> Iterator[tuple[Connector, ContractHelpers]]:
    """The real X connector (tweepy) against the local X API stand-in on 127.0.0.1."""
    from connectors.x import XConnector
    from tests.fakes.x_server import XFakeServer

    handle = "contract_x"
    creds = {
        "api_key": "contract-consumer-key",
        "api_secret": "contract-consumer-secret",
        "access_token": "contract-access-token",
        "access_token_secret": "contract-access-secret",
    }
    with XFakeServer() as server:
        server.add_user(
            handle,
            token=creds["access_token"],
            token_secret=creds["access_token_secret"],
            consumer_secret=creds["api_secret"],
        )
        connector = XConnector(
            ConnectorContext(handle=handle, service_url=server.url, credentials=creds)
        )

        def reply_parent(receipt: Receipt) -> str | None:
            post = next(p for p in server.posts if p["id"] == receipt.remote_id)
            parent: str | None = post["in_reply_to"]
            return parent

        yield connector, ContractHelpers(handle, lambda: server.count_posts(handle), reply_parent)


ENVS.append(("x", x_env))

_X_ENDPOINTS = {
    "publish": "POST /2/tweets",
    "find_published": "GET /2/users/:id/tweets",
    "whoami": "GET /2/users/me",
}


def x_garbage_env(request: pytest.FixtureRequest) -> Iterator[tuple[Connector, Spoil]]:
    from connectors.x import XConnector
    from tests.fakes.x_server import XFakeServer

    with XFakeServer() as server:
        connector = XConnector(
            ConnectorContext(
                handle="garbage_x", service_url=server.url, credentials={"bearer": "t"}
            ),
            timeout=5,
        )

        def spoil(kind: str, action: str) -> None:
            server.inject("garbage", endpoint=_X_ENDPOINTS[action], body=kind)

        yield connector, spoil


GARBAGE_ENVS.append(("x", x_garbage_env))


# --------------------------------------------------------------------------- mastodon


def mastodon_env(request: pytest.FixtureRequest) -> Iterator[tuple[Connector, ContractHelpers]]:
    """The real Mastodon connector (mastodon-py) against the local Mastodon-compatible server."""
    from connectors.mastodon import MastodonConnector, clear_instance_cache
    from tests.fakes.mastodon_server import FakeMastodonServer

    handle = "contract_mastodon"
    clear_instance_cache()
    with FakeMastodonServer() as server:
        server.add_account(handle, "contract-mastodon-token", followers=42)
        connector = MastodonConnector(
            ConnectorContext(
                handle=handle,
                service_url=server.url,
                credentials={"access_token": "contract-mastodon-token"},
            ),
            timeout=5,
        )

        def reply_parent(receipt: Receipt) -> str | None:
            return server.statuses[receipt.remote_id].in_reply_to_id

        yield connector, ContractHelpers(handle, lambda: len(server.posts_of(handle)), reply_parent)
    clear_instance_cache()


ENVS.append(("mastodon", mastodon_env))

_MASTODON_PATHS = {
    "publish": ("POST", "/api/v1/statuses"),
    "find_published": ("GET", "/api/v1/accounts/"),
    "whoami": ("GET", "/api/v1/accounts/verify_credentials"),
}


def mastodon_garbage_env(request: pytest.FixtureRequest) -> Iterator[tuple[Connector, Spoil]]:
    from connectors.mastodon import MastodonConnector, clear_instance_cache
    from tests.fakes.mastodon_server import FakeMastodonServer

    clear_instance_cache()
    with FakeMastodonServer() as server:
        connector = MastodonConnector(
            ConnectorContext(
                handle="amplify", service_url=server.url, credentials={"access_token": "test-token"}
            ),
            timeout=5,
        )

        def spoil(kind: str, action: str) -> None:
            method, path = _MASTODON_PATHS[action]
            server.inject(method=method, path=path, garbage=kind, times=3)

        yield connector, spoil
    clear_instance_cache()


GARBAGE_ENVS.append(("mastodon", mastodon_garbage_env))


# --------------------------------------------------------------------------- bluesky


def bluesky_env(request: pytest.FixtureRequest) -> Iterator[tuple[Connector, ContractHelpers]]:
    """The real Bluesky connector (atproto SDK) against the local atproto network
    (PLC + PDS + AppView from @atproto/dev-env; `make atproto-net` installs it)."""
    from collections.abc import Sequence

    from atproto_net.network import AtprotoNetwork

    from connectors.base import Identity, Metrics
    from connectors.bluesky import POST, BlueskyConnector

    network: AtprotoNetwork = request.getfixturevalue("atproto_network")
    account = network.create_account("contract")

    class IndexedBluesky(BlueskyConnector):
        """Lets the AppView catch up before each read (on bsky.social it lags by seconds)."""

        def fetch_metrics(self, targets: Sequence[Receipt]) -> list[Metrics]:
            network.process_all()
            return super().fetch_metrics(targets)

        def whoami(self) -> Identity:
            network.process_all()
            return super().whoami()

    connector = IndexedBluesky(
        ConnectorContext(
            handle=account.handle,
            service_url=network.pds_url,
            credentials={"app_password": account.app_password},
        )
    )

    def reply_parent(receipt: Receipt) -> str | None:
        did, collection, _rkey = (receipt.uri or "")[len("at://") :].split("/")
        record = next(r for r in network.list_records(did, collection) if r.uri == receipt.uri)
        reply = getattr(record.value, "reply", None)
        return None if reply is None else str(reply.parent.uri)

    yield (
        connector,
        ContractHelpers(
            account.handle, lambda: len(network.list_records(account.did, POST)), reply_parent
        ),
    )


ENVS.append(("bluesky", bluesky_env))


def bluesky_garbage_env(request: pytest.FixtureRequest) -> Iterator[tuple[Connector, Spoil]]:
    """The real atproto SDK against a PDS that logs in fine and then answers garbage to
    every call (tests/fakes/garbage_pds.py): the local atproto network cannot be made to."""
    from connectors.bluesky import BlueskyConnector
    from tests.fakes.garbage_pds import GarbagePDS

    with GarbagePDS() as pds:
        connector = BlueskyConnector(
            ConnectorContext(
                handle=pds.handle, service_url=pds.url, credentials={"app_password": "app-pw"}
            ),
            timeout=5,
        )

        def spoil(kind: str, action: str) -> None:
            pds.garbage = kind  # every call but logging in

        yield connector, spoil


GARBAGE_ENVS.append(("bluesky", bluesky_garbage_env))
