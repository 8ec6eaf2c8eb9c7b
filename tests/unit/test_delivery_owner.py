"""The delivery lifecycle has one owner: only ``amplify.queue`` writes a delivery's status,
lease and attempts (checked on the source, like the layering test).

Everything else asks the queue: ``new_delivery`` / ``new_delivery_row`` to enqueue,
``cancel``, ``rearm`` (approve again, retry now), ``defer_claimed`` (over budget), and the
worker-side ``claim_*`` / ``complete`` / ``fail`` / ``requeue`` / ``release``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OWNER = ROOT / "amplify" / "queue.py"
#: the demo builds a made-up past (sends already published or failed) straight into the
#: practice database; it is not part of any live lifecycle.
ALLOWED = {ROOT / "amplify" / "demo.py"}
#: columns only a Delivery has: any write is a lifecycle write
LEASE = {"lease_owner", "lease_expires_at"}
DELIVERY_ONLY = {"attempts", *LEASE}


def _mentions_delivery_status(node: ast.AST | None) -> bool:
    return node is not None and any(
        isinstance(n, ast.Name) and n.id == "DeliveryStatus" for n in ast.walk(node)
    )


def _is_delivery_status_write(field: str, value: ast.AST | None, about_delivery: bool) -> bool:
    if field in DELIVERY_ONLY:
        return True
    return field == "status" and (about_delivery or _mentions_delivery_status(value))


def _call_name(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")


def lifecycle_writes(source: str) -> list[tuple[int, str]]:
    """(line, what) for every write of a delivery's status, lease or attempts in ``source``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute):
                    owner = ast.unparse(target.value).lower()
                    if _is_delivery_status_write(target.attr, node.value, "deliver" in owner):
                        found.append((node.lineno, f"{ast.unparse(target)} = ..."))
        elif isinstance(node, ast.Call):
            name = _call_name(node)
            if name == "setattr" and len(node.args) == 3:
                field = node.args[1]
                if isinstance(field, ast.Constant) and isinstance(field.value, str):
                    owner = ast.unparse(node.args[0]).lower()
                    if _is_delivery_status_write(field.value, node.args[2], "deliver" in owner):
                        found.append((node.lineno, f"setattr(..., {field.value!r}, ...)"))
            # A Delivery(...) row, or an UPDATE's .values(...)
            if name in ("Delivery", "values"):
                for kw in node.keywords:
                    if kw.arg and _is_delivery_status_write(kw.arg, kw.value, name == "Delivery"):
                        found.append((node.lineno, f"{name}({kw.arg}=...)"))
        elif isinstance(node, ast.Dict):
            # A row for a bulk insert: it sets a Delivery's status, or its lease.
            keys = {
                k.value: v
                for k, v in zip(node.keys, node.values, strict=True)
                if isinstance(k, ast.Constant) and isinstance(k.value, str)
            }
            if _mentions_delivery_status(keys.get("status")) or LEASE & set(keys):
                found.append((node.lineno, "a row dict with a delivery status or lease"))
    return found


def test_only_the_queue_writes_a_deliverys_status_lease_and_attempts() -> None:
    offenders = []
    for package in ("amplify", "connectors"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == OWNER or path in ALLOWED:
                continue
            for line, what in lifecycle_writes(path.read_text(encoding="utf-8")):
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {what}")
    assert not offenders, "call a function of amplify.queue instead:\n" + "\n".join(offenders)


def test_the_queue_itself_is_seen_writing_them() -> None:
    # The scan must recognise the owner's own writes, or the check above proves nothing.
    whats = {what for _, what in lifecycle_writes(OWNER.read_text(encoding="utf-8"))}
    assert "delivery.status = ..." in whats
    assert "values(lease_owner=...)" in whats
    assert "values(attempts=...)" in whats


@pytest.mark.parametrize(
    "planted",
    [
        "delivery.status = DeliveryStatus.CANCELLED",
        "d.status = DeliveryStatus.FAILED",
        "delivery.status = new_status",
        "delivery.attempts += 1",
        "item.lease_owner = None",
        "setattr(delivery, 'status', 'pending')",
        "Delivery(post_id=1, status=status)",
        "update(Delivery).values(status=DeliveryStatus.PENDING)",
        "update(Delivery).values(lease_expires_at=None)",
        "rows = [{'post_id': 1, 'status': str(DeliveryStatus.PENDING)}]",
    ],
)
def test_it_catches_a_planted_lifecycle_write(planted: str) -> None:
    assert lifecycle_writes(planted), planted


@pytest.mark.parametrize(
    "harmless",
    [
        "account.status = AccountStatus.OK",
        "update(Account).values(status=AccountStatus.DISABLED)",
        "audit(s, actor, 'delivery.retried', attempts=delivery.attempts)",
        "row = {'attempts': d.attempts, 'status': d.status}",
        "if delivery.status == DeliveryStatus.FAILED: pass",
    ],
)
def test_it_leaves_reads_and_other_models_alone(harmless: str) -> None:
    assert not lifecycle_writes(harmless), harmless
