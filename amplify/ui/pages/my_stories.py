"""My stories: drafts and submissions, their status, the lead's notes, the live links."""

from __future__ import annotations

import streamlit as st

from amplify import queries, workflow
from amplify.models import Post, PostState
from amplify.permissions import Action
from amplify.ui import state, widgets

SHARE_PAGE = "amplify/ui/pages/share.py"


SHARE_LOAD = "share_load"  # the Share page opens this draft in fresh fields
SHARE_TARGET = "share_target"  # the draft the Share form is writing into
SHARE_RESET = "share_reset"  # the Share page starts an empty form


def _open_in_editor(post: Post) -> None:
    """Open a draft in the Share page (which loads it from the database) and go there."""
    st.session_state[SHARE_LOAD] = post.id
    st.switch_page(SHARE_PAGE)


def _delete(post: Post) -> None:
    with state.db() as s:
        workflow.delete_draft(s, state.actor(s), post.id)
    target = st.session_state.get(SHARE_TARGET) or {}
    if target.get("post_id") == post.id:
        st.session_state[SHARE_RESET] = True  # the Share form was writing into it: empty it


def _withdraw(post_id: int) -> None:
    with state.db() as s:
        workflow.withdraw(s, state.actor(s), post_id)


def _submit(post_id: int) -> None:
    with state.db() as s:
        workflow.submit(s, state.actor(s), post_id)


def _story(post: Post, tz: object) -> None:
    with st.container(border=True):
        head, status = st.columns([4, 1])
        excerpt = post.body if len(post.body) <= 140 else post.body[:140] + "…"
        head.markdown(f"**#{post.id}** {widgets.plain(excerpt) or '*(no text yet)*'}")
        if post.autosaved:
            status.markdown(
                f"{widgets.badge(post.state)} :gray-badge[autosaved]",
                help="Kept while you were typing, not saved on purpose yet. Open it to go on, "
                "or delete it.",
            )
        else:
            status.markdown(widgets.badge(post.state))
        meta = [f"updated {widgets.fmt_time(post.updated_at, tz)}"]  # type: ignore[arg-type]
        if post.campaign is not None:
            meta.append(f"campaign: {widgets.plain(post.campaign.name)}")
        if post.target_platforms:
            meta.append("to " + ", ".join(widgets.platform_label(p) for p in post.target_platforms))
        if post.scheduled_for and post.state == PostState.APPROVED:
            meta.append(f"goes out {widgets.fmt_time(post.scheduled_for, tz)}")  # type: ignore[arg-type]
        if post.media:
            meta.append(f"{len(post.media)} image(s)")
        st.caption(" · ".join(meta))
        if post.review_note:
            st.info(f"Note from the lead: {widgets.plain(post.review_note)}")
        links = [
            (d.account.platform, d.account.handle, d.remote_url or d.remote_uri)
            for d in post.deliveries
            if d.kind == "post" and d.status == "published"
        ]
        for platform, handle, url in links:
            label = widgets.plain(widgets.account_label(platform, handle))
            if url and url.startswith("http"):
                st.markdown(f":material/check_circle: Published on {label}: [{url}]({url})")
            else:
                st.markdown(
                    f":material/check_circle: Published on {label}: `{url or 'no link given'}`"
                )
        failed = [d for d in post.deliveries if d.status == "failed"]
        for d in failed:
            reason = widgets.plain(d.last_error or "unknown reason")
            st.warning(f"Not published on {widgets.plain(d.account.label)}: {reason}")
        # Held back by a platform's limit (e.g. X's posts a day on the chapter's plan).
        waiting = [
            d
            for d in post.deliveries
            if d.status == "pending" and d.error_kind == "rate_limited" and d.last_error
        ]
        for d in waiting:
            reason = widgets.plain(d.last_error or "")
            st.info(f"Waiting on {widgets.plain(d.account.label)}: {reason}")
        b = st.columns(4)
        if post.state == PostState.DRAFT:
            if b[0].button("Edit", key=f"edit_{post.id}"):
                _open_in_editor(post)
            if b[1].button("Submit for review", key=f"submit_{post.id}") and widgets.run_action(
                lambda: _submit(post.id), f"Story #{post.id} submitted for review."
            ):
                st.rerun()
            with b[2].popover("Delete", icon=":material/delete:"):
                st.caption("Delete this draft for good? This cannot be undone.")
                if st.button(
                    f"Delete draft #{post.id}", key=f"delete_{post.id}", type="primary"
                ) and widgets.run_action(lambda: _delete(post), f"Draft #{post.id} deleted."):
                    st.rerun()
        elif (
            post.state == PostState.SUBMITTED
            and b[0].button("Withdraw", key=f"withdraw_{post.id}", help="Take it back to edit it.")
            and widgets.run_action(
                lambda: _withdraw(post.id), f"Story #{post.id} is back in your drafts."
            )
        ):
            st.rerun()


def render() -> None:
    user = widgets.guard(Action.CREATE_DRAFT)
    st.title("My stories")
    tz = widgets.workspace_tz()
    with state.db() as s:
        posts = list(queries.posts_by_author(s, user.id))
        s.expunge_all()
    if not posts:
        st.info("You have not written a story yet.")
        st.page_link(SHARE_PAGE, label="Share a story", icon=":material/edit_note:")
        return
    groups = {
        "Drafts": [p for p in posts if p.state == PostState.DRAFT],
        "Waiting for review": [p for p in posts if p.state == PostState.SUBMITTED],
        "Scheduled": [p for p in posts if p.state == PostState.APPROVED],
        "Published": [p for p in posts if p.state == PostState.PUBLISHED],
        "Cancelled": [p for p in posts if p.state == PostState.CANCELLED],
    }
    for title, items in groups.items():
        if not items:
            continue
        st.subheader(f"{title} ({len(items)})")
        for post in items:
            _story(post, tz)


if __name__ == "__main__":
    render()
