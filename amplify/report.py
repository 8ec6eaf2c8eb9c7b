"""Delivery report: one row per delivery with stable columns, as JSON or CSV text."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from amplify import csvsafe
from amplify.models import Delivery

#: Column order of the CSV (and key order of each JSON object). Append, never reorder.
DELIVERY_COLUMNS: tuple[str, ...] = (
    "delivery_id",
    "post_id",
    "account",
    "platform",
    "handle",
    "kind",
    "status",
    "attempts",
    "next_attempt_at",
    "published_at",
    "remote_id",
    "remote_uri",
    "remote_url",
    "error_kind",
    "last_error",
    "idempotency_key",
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def delivery_rows(s: Session) -> list[dict[str, Any]]:
    """Every delivery, oldest first, as plain dicts keyed by ``DELIVERY_COLUMNS``."""
    deliveries = s.scalars(
        select(Delivery).options(joinedload(Delivery.account)).order_by(Delivery.id)
    ).all()
    return [
        {
            "delivery_id": d.id,
            "post_id": d.post_id,
            "account": d.account.label,
            "platform": d.account.platform,
            "handle": d.account.handle,
            "kind": d.kind,
            "status": d.status,
            "attempts": d.attempts,
            "next_attempt_at": _iso(d.next_attempt_at),
            "published_at": _iso(d.published_at),
            "remote_id": d.remote_id,
            "remote_uri": d.remote_uri,
            "remote_url": d.remote_url,
            "error_kind": d.error_kind,
            "last_error": d.last_error,
            "idempotency_key": d.idempotency_key,
        }
        for d in deliveries
    ]


def to_json(rows: Sequence[dict[str, Any]]) -> str:
    return json.dumps(list(rows), indent=2, default=csvsafe.json_default)


def to_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """CSV text with a header row; ``columns`` default to the keys of the first row.

    Nested lists and mappings become JSON text; see ``amplify.csvsafe`` for formulas.
    """
    if columns is None:
        columns = list(rows[0]) if rows else []
    # One writer for every export: cells a spreadsheet would run as formulas are neutralised.
    return csvsafe.rows_to_csv(rows, columns)


def render(rows: Sequence[dict[str, Any]], fmt: str, columns: Sequence[str] | None = None) -> str:
    if fmt == "json":
        return to_json(rows)
    if fmt == "csv":
        return to_csv(rows, columns)
    raise ValueError(f"unknown format {fmt!r}; use json or csv")
