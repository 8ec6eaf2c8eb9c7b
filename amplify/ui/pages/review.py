"""Review: submitted stories, oldest first. Edit, choose accounts and a time, approve or reject."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import streamlit as st

from amplify import queries, textrules, workflow
from amplify.config import get_settings
from amplify.errors import AmplifyError, Conflict, ValidationFailed
from amplify.models import Account, Post, utcnow
from amplify.permissions import Action
from amplify.ui import state, widgets
from amplify.ui.widgets import plain

WHEN = ("Now", "At a time", "Next open posting slot")


def next_open_slot(account_ids: list[int]) -> datetime:
    """The earliest open posting slot across the chosen accounts (slots service)."""
    from amplify import slots

    if not account_ids:
        raise ValidationFailed(["Choose at least one account to find its next open slot."])
    with state.db() as s:
        found = slots.next_open_slot(s, account_ids)
    if found is None:
        raise ValidationFailed(
            [
                "These accounts have no posting slots set; an admin adds them under "
                "Team & settings, or pick a time instead."
            ]
        )
    return found


def _when(key: str, choice: str, account_ids: list[int], tz: ZoneInfo) -> datetime:
    if choice == "At a time":
        return st.session_state[f"{key}_at"]
    if choice == "Next open posting slot":
        return next_open_slot(account_ids)
    return utcnow()


def _seen_version(post: Post) -> int:
    """The version the lead was shown: acting on it after someone else changed it is a Conflict."""
    return int(st.session_state.setdefault(f"rv_{post.id}_ver", post.version))


def _merged_overrides(post: Post, typed: dict[str, str]) -> dict[str, str]:
    """The story's saved custom texts with the ones shown in the card replaced by what is typed
    (empty: none); custom texts for platforms not shown stay as they were."""
    merged = dict(post.overrides or {})
    for platform, text in typed.items():
        if text.strip():
            merged[platform] = text.strip()
        else:
            merged.pop(platform, None)
    return merged


def _approve(
    post: Post,
    body: str,
    account_ids: list[int],
    when: datetime,
    amplify: bool,
    overrides: dict[str, str] | None = None,
) -> None:
    with state.db() as s:
        actor = state.actor(s)
        version = _seen_version(post)
        changes: dict[str, object] = {}
        if body.strip() != post.body:
            changes["body"] = body
        if overrides is not None:
            merged = _merged_overrides(post, overrides)
            if merged != dict(post.overrides or {}):
                changes["overrides"] = merged
        if changes:
            edited = workflow.edit(s, actor, post.id, expected_version=version, **changes)
            version = edited.version
        workflow.approve(
            s,
            actor,
            post.id,
            account_ids=account_ids,
            scheduled_for=when,
            amplify=amplify,
            expected_version=version,
        )


def _reload(post_id: int) -> None:
    """Forget what this lead was shown of a story, so the next run shows the current one."""
    st.session_state.pop(f"rv_{post_id}_ver", None)


def _reject(post: Post, note: str) -> None:
    with state.db() as s:
        workflow.reject(s, state.actor(s), post.id, note, expected_version=_seen_version(post))


def _accounts_for(post: Post, accounts: list[Account]) -> list[int]:
    targets = set(post.target_platforms or [])
    return [a.id for a in accounts if a.platform in targets and a.status == "ok"]


def _override_fields(key: str, post: Post, platforms: list[str]) -> dict[str, str]:
    """An optional, collapsed "Custom text for <platform>" per platform the story goes to,
    seeded from the story's saved custom text."""
    saved = post.overrides or {}
    out: dict[str, str] = {}
    for platform in platforms:
        field = f"{key}_ov_{platform}_v{_seen_version(post)}"
        st.session_state.setdefault(field, saved.get(platform, ""))
        name = widgets.platform_label(platform)
        with st.expander(f"Custom text for {name}", expanded=bool(st.session_state[field])):
            out[platform] = st.text_area(
                f"Custom text for {name}",
                key=field,
                height=100,
                help="Sent on this platform instead of the text above. Leave empty to use it. "
                "The link and campaign hashtags are still added.",
            )
    return out


def _what_goes_out(post: Post, body: str, overrides: dict[str, str], chosen: list[Account]) -> None:
    """Per platform of the chosen accounts: the exact parts the publisher will send."""
    if not chosen:
        st.caption("Choose at least one account to see exactly what goes out.")
        return
    # Same inputs as publisher._render (campaign UTM slug, utm_enabled, hashtags, override).
    inputs = textrules.campaign_inputs(post.campaign)
    by_platform: dict[str, list[Account]] = {}
    for acct in chosen:
        by_platform.setdefault(acct.platform, []).append(acct)
    st.markdown("**What goes out**")
    for platform, accts in by_platform.items():
        custom = overrides.get(platform, "").strip() or None
        handles = ", ".join(a.handle for a in accts)
        with st.container(border=True):
            try:
                parts = textrules.render(platform, body, link=post.link, override=custom, **inputs)
            except ValueError as exc:
                st.warning(f"{widgets.platform_label(platform)} ({plain(handles)}): {plain(exc)}")
                continue
            shape = f"a thread of {len(parts)} posts" if len(parts) > 1 else "one post"
            note = " · custom text" if custom else ""
            title = widgets.platform_label(platform)
            st.markdown(f"**{title}** ({plain(handles)}) — {shape}{note}")
            limit = textrules.limit_for(platform)
            for i, part in enumerate(parts, start=1):
                count = textrules.length(platform, part)
                mark = "" if textrules.fits(platform, part) else " — too long"
                prefix = f"Part {i}: " if len(parts) > 1 else ""
                st.caption(f"{prefix}{count}/{limit}{mark}")
                st.text(part)


def _story(post: Post, accounts: list[Account], tz: ZoneInfo, can_amplify: bool) -> None:
    key = f"rv_{post.id}"
    seen = _seen_version(post)
    labels = {a.id: widgets.account_label(a.platform, a.handle) for a in accounts}
    with st.container(border=True):
        top = st.columns([0.5, 4, 1.5])
        top[0].checkbox("Select", key=f"{key}_sel", label_visibility="collapsed")
        top[1].markdown(f"**#{post.id}** by {plain(post.author.name)}")
        top[2].caption(f"submitted {widgets.fmt_time(post.submitted_at or post.created_at, tz)}")
        meta = []
        if post.campaign is not None:
            meta.append(f"campaign: {plain(post.campaign.name)}")
        if post.target_platforms:
            meta.append(
                "wants " + ", ".join(widgets.platform_label(p) for p in post.target_platforms)
            )
        if post.preferred_time:
            meta.append(f"preferred time {widgets.fmt_time(post.preferred_time, tz)}")
        if post.link:
            meta.append(f"link {plain(post.link)}")
        if meta:
            st.caption(" · ".join(meta))
        if post.media:
            cols = st.columns(4)
            for col, m in zip(cols, post.media, strict=False):
                path = get_settings().data_dir / m.path
                if path.is_file():
                    col.image(str(path), caption=f"Alt text: {plain(m.alt_text)}", width=160)
                else:
                    col.warning(
                        f"Image missing on disk ({plain(m.path)}); alt text: {plain(m.alt_text)}"
                    )
        body = st.text_area("Text", value=post.body, key=f"{key}_body_v{seen}", height=120)
        st.session_state.setdefault(f"{key}_acc", _accounts_for(post, accounts))
        chosen = st.multiselect(
            "Publish from", options=list(labels), format_func=lambda i: labels[i], key=f"{key}_acc"
        )
        chosen_accts = [a for a in accounts if a.id in chosen]
        platforms = list(
            dict.fromkeys([*(post.target_platforms or []), *(a.platform for a in chosen_accts)])
        )
        overrides = _override_fields(key, post, platforms)
        _what_goes_out(post, body, overrides, chosen_accts)
        c = st.columns([2, 3])
        choice = c[0].radio("When", WHEN, key=f"{key}_when", horizontal=False)
        with c[1]:
            if choice == "At a time":
                st.session_state[f"{key}_at"] = widgets.datetime_input(
                    "Publish at", key=f"{key}_dt", default=post.preferred_time, tz=tz
                )
            amplify = (
                st.checkbox("Ask advocates to amplify it", key=f"{key}_amp")
                if can_amplify
                else False
            )
        a, r = st.columns(2)
        if a.button("Approve", key=f"{key}_approve", type="primary"):
            try:
                when = _when(key, choice, chosen, tz)
                _approve(post, body, chosen, when, amplify, overrides)
            except AmplifyError as exc:
                if isinstance(exc, Conflict):
                    _reload(post.id)
                widgets.show_error(exc)
            else:
                widgets.flash(f"Story #{post.id} approved for {widgets.fmt_time(when, tz)}.")
                st.rerun()
        with r:
            note = st.text_input("Note for the author (needed to send it back)", key=f"{key}_note")
            if st.button("Send back", key=f"{key}_reject") and widgets.run_action(
                lambda: _reject(post, note), f"Story #{post.id} sent back to its author."
            ):
                st.rerun()


def _bulk(posts: list[Post], accounts: list[Account], tz: ZoneInfo) -> None:
    selected = [p for p in posts if st.session_state.get(f"rv_{p.id}_sel")]
    with st.expander(f"Bulk actions ({len(selected)} selected)", expanded=bool(selected)):
        st.caption(
            "Approve: each selected story goes out now on the accounts chosen in its card. "
            "Send back: each selected story returns to its author with this note."
        )
        note = st.text_input("Note for the authors", key="rv_bulk_note")
        c1, c2 = st.columns(2)
        results: list[tuple[int, Exception | None]] = []
        if c1.button("Approve selected", disabled=not selected):
            for post in selected:
                try:
                    ids = st.session_state.get(f"rv_{post.id}_acc") or _accounts_for(post, accounts)
                    _approve(post, post.body, list(ids), utcnow(), False)
                    results.append((post.id, None))
                except AmplifyError as exc:
                    results.append((post.id, exc))
        if c2.button("Send back selected", disabled=not selected):
            for post in selected:
                try:
                    _reject(post, note)
                    results.append((post.id, None))
                except AmplifyError as exc:
                    results.append((post.id, exc))
        if results:
            done = [pid for pid, err in results if err is None]
            for pid, err in results:
                if err is not None:
                    st.error(f"Story #{pid}: {plain(err)}")
            if done:
                message = f"Done for {len(done)} stor{'y' if len(done) == 1 else 'ies'}: " + (
                    ", ".join(f"#{p}" for p in done)
                )
                if len(done) == len(results):
                    widgets.flash(message)
                    st.rerun()
                st.success(message)


def render() -> None:
    user = widgets.guard(Action.APPROVE)
    st.title("Review")
    tz = widgets.workspace_tz()
    with state.db() as s:
        posts = list(queries.review_queue(s))
        accounts = list(queries.publishing_accounts(s))
        s.expunge_all()
    if not accounts:
        st.warning("No accounts are connected yet: an admin adds them on the Accounts page.")
    if not posts:
        st.success("Nothing waiting for review.", icon=":material/task_alt:")
        return
    st.caption(f"{len(posts)} stor{'y' if len(posts) == 1 else 'ies'} waiting, oldest first.")
    _bulk(posts, accounts, tz)
    from amplify import permissions

    can_amplify = permissions.can(user, Action.AMPLIFY)
    for post in posts:
        _story(post, accounts, tz, can_amplify)


if __name__ == "__main__":
    render()
