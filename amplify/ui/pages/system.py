"""System: are the workers alive, how deep is the queue, what failed and why (with retry)."""

from __future__ import annotations

from functools import partial

import pandas as pd
import streamlit as st

from amplify import queries, queue, workflow
from amplify.permissions import Action
from amplify.ui import state, widgets


def _retry(delivery_id: int) -> None:
    with state.db() as s:
        workflow.retry_delivery(s, state.actor(s), delivery_id)


def render() -> None:
    widgets.guard(Action.VIEW_SYSTEM)
    st.title("System")
    tz = widgets.workspace_tz()
    with state.db() as s:
        workers = queries.workers(s)
        counts = queue.queue_counts(s)
        due = queue.next_due(s)
        failed = list(queries.failed_deliveries(s))
        s.expunge_all()

    st.subheader("Workers")
    alive = [w for w in workers if w.alive]
    if not workers:
        st.warning(
            "No worker has ever reported in: start one with `amplify worker`, or run the "
            "dashboard with AMPLIFY_EMBEDDED_WORKER=true."
        )
    elif not alive:
        st.error("No worker is alive: nothing will be published until one runs again.")
    else:
        st.success(f"{len(alive)} worker(s) alive.")
    if workers:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "worker": w.worker_id,
                        "host": f"{w.hostname} (pid {w.pid})",
                        "kind": "embedded" if w.embedded else "separate",
                        "alive": "yes" if w.alive else "no",
                        "last seen": widgets.fmt_time(w.last_seen_at, tz),
                        "doing": w.last_action,
                        "published": w.published_count,
                    }
                    for w in workers
                ]
            ),
            hide_index=True,
            width="stretch",
        )

    st.subheader("Queue")
    cols = st.columns(5)
    for col, key in zip(
        cols, ("pending", "claimed", "reconcile", "failed", "published"), strict=True
    ):
        col.metric(key.title(), int(counts.get(key, 0)))
    st.caption(f"Next due: {widgets.fmt_time(due, tz) if due else 'nothing waiting'}")

    st.subheader("Failed deliveries")
    if not failed:
        st.caption("None.")
    for d in failed:
        with st.container(border=True):
            c1, c2 = st.columns([5, 1])
            where = widgets.plain(widgets.account_label(d.account.platform, d.account.handle))
            c1.markdown(
                f"**Story #{d.post_id}** on {where}"
                f" · {d.kind} · {d.attempts} attempt(s) · {widgets.badge(d.error_kind or 'failed')}"
            )
            c1.caption(f"Reason: {widgets.plain(d.last_error or 'not recorded')}")
            if c2.button("Retry", key=f"retry_{d.id}") and widgets.run_action(
                partial(_retry, d.id), f"Delivery to {widgets.plain(d.account.label)} queued again."
            ):
                st.rerun()


if __name__ == "__main__":
    render()
