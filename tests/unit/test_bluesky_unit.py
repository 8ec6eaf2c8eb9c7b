"""Bluesky connector without a network: record keys, validation, images, error mapping.

Error mapping runs the real SDK against an ``httpx.MockTransport`` answering the way a
PDS does (XRPC error bodies, ratelimit-* headers). The integration suite covers the rest
against a real PDS.
"""

from __future__ import annotations

import base64
import io
import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from connectors.base import (
    AuthError,
    ConnectorContext,
    Media,
    OutgoingPost,
    PermanentError,
    RateLimited,
    TransientError,
)
from connectors.bluesky import BlueskyConnector, prepare_image, record_key

TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
DID = "did:plc:unitteam"
HANDLE = "team.test"


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def fake_jwt(exp_in: int = 7200) -> str:
    now = int(time.time())
    payload = {"sub": DID, "scope": "com.atproto.appPass", "iat": now, "exp": now + exp_in}
    return f"{_b64({'alg': 'HS256'})}.{_b64(payload)}.c2lnbmF0dXJl"


Handler = Callable[[httpx.Request], httpx.Response]


def xrpc_error(status: int, error: str, message: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"error": error, "message": message}, headers=headers)


def pds(routes: dict[str, Handler]) -> httpx.MockTransport:
    """A stand-in PDS: createSession succeeds unless ``routes`` says otherwise."""
    calls: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        nsid = request.url.path.removeprefix("/xrpc/")
        calls.append(nsid)
        if nsid in routes:
            return routes[nsid](request)
        if nsid == "com.atproto.server.createSession":
            return httpx.Response(
                200,
                json={
                    "accessJwt": fake_jwt(),
                    "refreshJwt": fake_jwt(86400),
                    "handle": HANDLE,
                    "did": DID,
                },
            )
        return xrpc_error(501, "MethodNotImplemented", f"no route for {nsid}")

    transport = httpx.MockTransport(handle)
    transport.calls = calls  # type: ignore[attr-defined]
    return transport


def connector(
    transport: httpx.MockTransport | None = None, *, session: str | None = None, **kw: Any
) -> BlueskyConnector:
    context = ConnectorContext(
        handle=HANDLE,
        service_url="http://pds.invalid",
        credentials={"app_password": "abcd-efgh-ijkl-mnop"},
        session=session,
        **kw,
    )
    return BlueskyConnector(context, transport=transport)


def text_post(text: str = "hello") -> OutgoingPost:
    return OutgoingPost(parts=(text,), idempotency_key="key-1")


# --------------------------------------------------------------------------- record keys


def test_it_derives_the_same_valid_tid_for_the_same_delivery_part() -> None:
    first = record_key("delivery-42", 0)
    assert TID.match(first)
    assert record_key("delivery-42", 0) == first
    assert record_key("delivery-42", 1) != first
    assert record_key("delivery-43", 0) != first
    assert TID.match(record_key("delivery-42", "repost"))


def test_it_keeps_derived_tids_valid_for_many_keys() -> None:
    keys = {record_key(f"k{i}", i % 5) for i in range(2000)}
    assert len(keys) == 2000
    assert all(TID.match(k) for k in keys)


# --------------------------------------------------------------------------- validation


def test_it_counts_graphemes_not_code_points() -> None:
    family = "👨‍👩‍👧‍👦"  # one grapheme, 7 code points, 25 bytes
    assert connector().validate(text_post(family * 100)) == []
    problems = connector().validate(text_post("a" * 301))
    assert problems and "301 characters" in problems[0] and "300" in problems[0]


def test_it_flags_a_part_over_three_thousand_bytes() -> None:
    family = "👨‍👩‍👧‍👦"
    problems = connector().validate(text_post(family * 121))  # 121 graphemes, 3025 bytes
    assert problems and "3025 bytes" in problems[0]


def test_it_names_the_thread_part_that_is_too_long() -> None:
    post = OutgoingPost(parts=("fine", "b" * 400), idempotency_key="k")
    [problem] = connector().validate(post)
    assert problem.startswith("Part 2 of the thread")


def test_it_requires_alt_text_and_at_most_four_images(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    Image.new("RGB", (4, 4)).save(path)
    no_alt = OutgoingPost(
        parts=("x",), idempotency_key="k", media=(Media(str(path), " ", "image/png"),)
    )
    assert any("alt text" in p for p in connector().validate(no_alt))
    five = OutgoingPost(
        parts=("x",),
        idempotency_key="k",
        media=tuple(Media(str(path), f"pic {i}", "image/png") for i in range(5)),
    )
    assert any("5 images" in p for p in connector().validate(five))
    missing = OutgoingPost(
        parts=("x",), idempotency_key="k", media=(Media(str(tmp_path / "gone.png"), "alt"),)
    )
    assert any("missing" in p for p in connector().validate(missing))


def test_it_refuses_to_publish_an_invalid_post_without_calling_the_pds() -> None:
    transport = pds({})
    with pytest.raises(PermanentError, match="300"):
        connector(transport).publish(text_post("z" * 301))
    assert transport.calls == []  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- images


def test_it_keeps_a_small_image_as_it_is() -> None:
    out = io.BytesIO()
    Image.new("RGB", (30, 20), (1, 2, 3)).save(out, format="PNG")
    data, width, height = prepare_image(out.getvalue())
    assert (data, width, height) == (out.getvalue(), 30, 20)


def test_it_shrinks_a_large_image_under_the_limit() -> None:
    import os

    image = Image.frombytes("RGB", (900, 700), os.urandom(900 * 700 * 3))
    out = io.BytesIO()
    image.save(out, format="PNG")
    assert out.tell() > 1_000_000
    data, width, height = prepare_image(out.getvalue())
    assert len(data) <= 1_000_000
    with Image.open(io.BytesIO(data)) as shrunk:
        assert shrunk.format == "JPEG" and shrunk.size == (width, height)
    assert width / height == pytest.approx(900 / 700, rel=0.01)


def test_it_refuses_bytes_that_are_not_an_image() -> None:
    with pytest.raises(PermanentError, match="cannot be read"):
        prepare_image(b"not an image at all")


# --------------------------------------------------------------------------- errors


def test_it_reports_a_rate_limit_with_the_reset_time() -> None:
    reset = int(time.time()) + 600
    transport = pds(
        {
            "com.atproto.repo.getRecord": lambda r: xrpc_error(
                429, "RateLimitExceeded", "Rate Limit Exceeded", **{"ratelimit-reset": str(reset)}
            )
        }
    )
    with pytest.raises(RateLimited) as limited:
        connector(transport).find_published(text_post())
    assert limited.value.retry_at == datetime.fromtimestamp(reset, tz=UTC)


def test_it_turns_a_refused_password_into_an_auth_error_that_says_what_to_do() -> None:
    transport = pds(
        {
            "com.atproto.server.createSession": lambda r: xrpc_error(
                401, "AuthenticationRequired", "Invalid identifier or password"
            )
        }
    )
    with pytest.raises(AuthError) as refused:
        connector(transport).whoami()
    message = str(refused.value)
    assert "@team.test" in message and "App passwords" in message
    assert "abcd-efgh-ijkl-mnop" not in message


def test_it_passes_the_servers_reason_for_a_refused_record() -> None:
    transport = pds(
        {
            "com.atproto.repo.getRecord": lambda r: xrpc_error(
                400, "RecordNotFound", "Could not locate record"
            ),
            "com.atproto.repo.createRecord": lambda r: xrpc_error(
                400, "InvalidRequest", "Record/text must not be longer than 3000 graphemes"
            ),
            "com.atproto.identity.resolveHandle": lambda r: xrpc_error(400, "x", "y"),
        }
    )
    with pytest.raises(PermanentError, match="must not be longer"):
        connector(transport).publish(text_post())


@pytest.mark.parametrize("status", [500, 502, 503])
def test_it_treats_server_errors_as_passing(status: int) -> None:
    transport = pds(
        {"com.atproto.repo.getRecord": lambda r: xrpc_error(status, "InternalServerError", "oops")}
    )
    with pytest.raises(TransientError):
        connector(transport).find_published(text_post())


def test_it_treats_a_timeout_as_passing() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(TransientError, match="in time"):
        connector(pds({"com.atproto.repo.getRecord": timeout})).find_published(text_post())


def test_it_returns_the_existing_record_when_create_says_it_exists() -> None:
    """A retry names the same record key; the PDS refuses (500) and the record is read back."""
    created: list[dict[str, Any]] = []
    stored: dict[str, Any] = {}

    def get_record(request: httpx.Request) -> httpx.Response:
        if not created:
            return xrpc_error(400, "RecordNotFound", "Could not locate record")
        return httpx.Response(200, json=stored)

    def create_record(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        created.append(body)
        stored.update(
            uri=f"at://{DID}/app.bsky.feed.post/{body['rkey']}",
            cid="bafyexisting",
            value=body["record"],
        )
        return xrpc_error(500, "InternalServerError", "Internal Server Error")

    transport = pds(
        {
            "com.atproto.repo.getRecord": get_record,
            "com.atproto.repo.createRecord": create_record,
        }
    )
    [receipt] = connector(transport).publish(text_post("no facets here"))
    assert created[0]["rkey"] == record_key("key-1", 0)
    assert receipt.uri == f"at://{DID}/app.bsky.feed.post/{record_key('key-1', 0)}"
    assert receipt.cid == "bafyexisting"


def test_it_stores_a_new_session_and_never_logs_it() -> None:
    stored: list[str] = []
    transport = pds(
        {
            "app.bsky.actor.getProfile": lambda r: httpx.Response(
                200, json={"did": DID, "handle": HANDLE, "followersCount": 7}
            )
        }
    )
    bsky = connector(transport, on_session_change=stored.append)
    identity = bsky.whoami()
    assert identity.followers_count == 7 and identity.remote_user_id == DID
    assert len(stored) == 1 and stored[0].startswith(f"{HANDLE}:::{DID}:::")
    assert "abcd" not in repr(bsky)


def test_it_imports_a_stored_session_without_creating_one() -> None:
    session = ":::".join([HANDLE, DID, fake_jwt(), fake_jwt(86400), "http://pds.invalid"])
    transport = pds(
        {
            "app.bsky.actor.getProfile": lambda r: httpx.Response(
                200, json={"did": DID, "handle": HANDLE}
            )
        }
    )
    connector(transport, session=session).whoami()
    assert "com.atproto.server.createSession" not in transport.calls  # type: ignore[attr-defined]


def test_it_logs_in_when_the_stored_session_has_expired() -> None:
    expired = ":::".join([HANDLE, DID, fake_jwt(-10), fake_jwt(-5), "http://pds.invalid"])
    transport = pds(
        {
            "app.bsky.actor.getProfile": lambda r: httpx.Response(
                200, json={"did": DID, "handle": HANDLE}
            )
        }
    )
    connector(transport, session=expired).whoami()
    assert transport.calls[0] == "com.atproto.server.createSession"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "session",
    [
        "not a session string",
        ":::".join([HANDLE, DID, "garbage", "garbage", "http://pds.invalid"]),
        ":::".join(["someone-else.test", DID, fake_jwt(), fake_jwt(86400), "http://pds.invalid"]),
    ],
)
def test_it_ignores_a_stored_session_it_cannot_use(session: str) -> None:
    transport = pds(
        {
            "app.bsky.actor.getProfile": lambda r: httpx.Response(
                200, json={"did": DID, "handle": HANDLE}
            )
        }
    )
    assert connector(transport, session=session).whoami().handle == HANDLE
    assert transport.calls[0] == "com.atproto.server.createSession"  # type: ignore[attr-defined]
