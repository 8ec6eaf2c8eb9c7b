"""Amplify: approved posts to reshare from your own accounts, with one-click share links."""

from __future__ import annotations

from functools import partial

import streamlit as st

from amplify import amplification, queries
from amplify.permissions import Action
from amplify.ui import state, widgets


def _set_opt_in(account_id: int, opt_in: bool) -> None:
    from amplify import accounts

    with state.db() as s:
        accounts.set_opt_in(s, state.actor(s), account_id, opt_in)


def render() -> None:
    user = widgets.guard(Action.CONNECT_OWN_ACCOUNT)
    st.title("Amplify")
    st.caption(
        "Reshare the team's stories from your own accounts. Where the platform allows it, "
        "Amplify reposts for you from the accounts you opted in; on X, where automatic "
        "reposts are not allowed, use the one-click links below."
    )
    tz = widgets.workspace_tz()
    with state.db() as s:
        me = state.actor(s)
        links = amplification.pending_share_links(s, me)
        mine = list(queries.accounts(s))
        s.expunge_all()
    own = [a for a in mine if a.owner_id == user.id]

    st.subheader("Ready to share")
    if not links:
        st.info("Nothing waiting for you to share right now.")
    for item in links:
        with st.container(border=True):
            c1, c2 = st.columns([4, 1])
            c1.markdown(
                f"**Story #{item['post_id']}** from {widgets.plain(item['from_handle'])}: "
                f"{widgets.plain(item['excerpt'])}"
            )
            c1.caption(
                f"published {widgets.fmt_time(item.get('published_at'), tz)} · share as "
                + widgets.plain(", ".join(item.get("your_accounts") or []))
            )
            c2.link_button("Share on X", item["share_url"], type="primary")

    st.subheader("Your accounts")
    if not own:
        st.caption("You have no accounts of your own connected; ask an admin to add yours.")
    for acct in own:
        c1, c2 = st.columns([4, 1])
        c1.markdown(
            f"{widgets.plain(widgets.account_label(acct.platform, acct.handle))} "
            f"{widgets.badge(acct.status)}"
        )
        label = "Opt out" if acct.amplify_opt_in else "Opt in"
        if c2.button(label, key=f"opt_{acct.id}") and widgets.run_action(
            partial(_set_opt_in, acct.id, not acct.amplify_opt_in),
            f"{widgets.plain(acct.label)}: {'opted out' if acct.amplify_opt_in else 'opted in'}.",
        ):
            st.rerun()


if __name__ == "__main__":
    render()
