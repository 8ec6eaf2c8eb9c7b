"""Review: submitted stories, oldest first. Edit, choose accounts and a time, approve or reject."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import streamlit as st

from amplify import media, queries, textrules, workflow
from amplify.config import get_settings
from amplify.errors import AmplifyError, Conflict, ValidationFailed
from amplify.models import Account, Post, utcnow
from amplify.permissions import Action
from amplify.ui import state, widgets
from amplify.ui.widgets import plain

log = logging.getLogger(__name__)

SLOT, AT, NOW = "Next open posting slot", "At a time", "Publish now"
WHEN = (SLOT, AT, NOW)
NO_CAMPAIGN = 0


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


def _slot_or_none(account_ids: list[int]) -> datetime | None:
    try:
        return next_open_slot(account_ids)
    except AmplifyError:
        return None


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


@dataclass
class Card:
    """What the lead has set in one story's card (typed, not yet saved)."""

    post: Post
    body: str
    link: str
    campaign_id: int | None
    thread_cap: int | None
    account_ids: list[int]
    choice: str
    at: datetime | None
    amplify: bool
    overrides: dict[str, str] = field(default_factory=dict)

    def changes(self) -> dict[str, object]:
        """The story's fields the lead changed in the card."""
        post = self.post
        out: dict[str, object] = {}
        if self.body.strip() != post.body:
            out["body"] = self.body
        if (self.link.strip() or None) != post.link:
            out["link"] = self.link
        if self.campaign_id != post.campaign_id:
            out["campaign_id"] = self.campaign_id
        if self.thread_cap != post.thread_cap:
            out["thread_cap"] = self.thread_cap
        merged = _merged_overrides(post, self.overrides)
        if merged != dict(post.overrides or {}):
            out["overrides"] = merged
        return out

    def when(self) -> tuple[datetime, bool]:
        """(time, publish_now) for approve."""
        if self.choice == NOW:
            return utcnow(), True
        if self.choice == AT:
            if self.at is None:
                raise ValidationFailed(["Pick a day and a time to publish at."])
            return self.at, False
        return next_open_slot(self.account_ids), False

    def approve(self) -> datetime:
        """Save the card's edits and approve, in one transaction; the time it goes out."""
        when, now = self.when()
        with state.db() as s:
            actor = state.actor(s)
            version = _seen_version(self.post)
            changes = self.changes()
            if changes:
                edited = workflow.edit(s, actor, self.post.id, expected_version=version, **changes)
                version = edited.version
            workflow.approve(
                s,
                actor,
                self.post.id,
                account_ids=self.account_ids,
                scheduled_for=when,
                amplify=self.amplify,
                expected_version=version,
                publish_now=now,
            )
        return when


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
        name_key = f"{key}_ov_{platform}_v{_seen_version(post)}"
        now = st.session_state.get(name_key, saved.get(platform, ""))
        name = widgets.platform_label(platform)
        with st.expander(f"Custom text for {name}", expanded=bool(now)):
            out[platform] = st.text_area(
                f"Custom text for {name}",
                value=saved.get(platform, ""),
                key=name_key,
                height=100,
                help="Sent on this platform instead of the text above. Leave empty to use it. "
                "The link and campaign hashtags are still added.",
            )
    return out


def _what_goes_out(card: Card, campaign: Any, chosen: list[Account]) -> None:
    """Per platform of the chosen accounts: the exact parts the publisher will send."""
    if not chosen:
        st.caption("Choose at least one account to see exactly what goes out.")
        return
    # Same inputs as publisher._render (campaign UTM slug, utm_enabled, hashtags, override).
    inputs = textrules.campaign_inputs(campaign)
    by_platform: dict[str, list[Account]] = {}
    for acct in chosen:
        by_platform.setdefault(acct.platform, []).append(acct)
    st.markdown("**What goes out**")
    link = card.link.strip() or None
    for platform, accts in by_platform.items():
        custom = card.overrides.get(platform, "").strip() or None
        handles = ", ".join(a.handle for a in accts)
        name = widgets.platform_label(platform)
        with st.container(border=True):
            try:
                parts = textrules.render(platform, card.body, link=link, override=custom, **inputs)
            except ValueError as exc:
                st.warning(f"{name} ({plain(handles)}): {plain(exc)}")
                continue
            shape = f"a thread of {len(parts)} posts" if len(parts) > 1 else "one post"
            note = " · custom text" if custom else ""
            st.markdown(f"**{name}** ({plain(handles)}) — {shape}{note}")
            _thread_notice(platform, len(parts), card.thread_cap)
            limit = textrules.limit_for(platform)
            for i, part in enumerate(parts, start=1):
                count = textrules.length(platform, part)
                mark = "" if textrules.fits(platform, part) else " — too long"
                prefix = f"Part {i}: " if len(parts) > 1 else ""
                st.caption(f"{prefix}{count}/{limit}{mark}")
                st.text(part)


def _thread_notice(platform: str, parts: int, cap: int | None) -> None:
    name = widgets.platform_in_sentence(platform)
    if cap is not None and parts > cap:
        st.error(
            f"{parts} posts on {name}, but the thread is capped at {cap}: approving is refused "
            f"until the text is shorter (or {name} gets a shorter custom text) or the cap is "
            "raised.",
            icon=":material/block:",
        )
    elif textrules.long_thread(platform, parts):
        st.warning(
            f"A thread of {parts} posts on {name}; past {textrules.thread_warn_above(platform)} "
            "most readers stop. Shorten it, give it a custom text, or cap the thread.",
            icon=":material/format_list_numbered:",
        )


def _campaign_box(key: str, post: Post, camps: list[Any]) -> tuple[int | None, Any]:
    by_id = {c.id: c for c in camps}
    if post.campaign is not None and post.campaign_id not in by_id:
        by_id[post.campaign.id] = post.campaign  # archived since: still shown as it is
    if not by_id:
        return None, None
    options = [NO_CAMPAIGN, *by_id]
    chosen = st.selectbox(
        "Campaign",
        options=options,
        index=options.index(post.campaign_id or NO_CAMPAIGN),
        format_func=lambda cid: "No campaign" if cid == NO_CAMPAIGN else by_id[cid].name,
        key=f"{key}_camp_v{_seen_version(post)}",
    )
    return (chosen or None), by_id.get(chosen)


def _round_up(value: datetime, minutes: int = 15) -> datetime:
    """To the next quarter hour: a time a person would pick (17:18 becomes 17:30)."""
    spare = timedelta(
        minutes=value.minute % minutes, seconds=value.second, microseconds=value.microsecond
    )
    return value - spare + (timedelta(minutes=minutes) if spare else timedelta(0))


def _when(
    key: str, post: Post, chosen: list[int], first: list[int], tz: ZoneInfo
) -> tuple[str, datetime | None]:
    """The "When" choice; by default the next open posting slot of the accounts first
    proposed (or a time, when they have no slots)."""
    slot = _slot_or_none(chosen)
    initial = SLOT if _slot_or_none(first) is not None else AT
    choice = st.radio(
        "When",
        WHEN,
        index=WHEN.index(initial),
        key=f"{key}_when",
        horizontal=False,
        help="A time already past is refused: choose “Publish now” to send it at once.",
    )
    at = None
    if choice == SLOT:
        if slot is not None:
            st.caption(f"Goes out {widgets.fmt_time(slot, tz)}.")
        else:
            st.caption("These accounts have no open posting slot; pick a time instead.")
    elif choice == AT:
        wished = (
            post.preferred_time if post.preferred_time and post.preferred_time > utcnow() else None
        )
        default = wished or slot or _round_up(utcnow() + timedelta(hours=1))
        at = widgets.datetime_input("Publish at", key=f"{key}_dt", default=default, tz=tz)
    return choice, at


def _story(
    post: Post, accounts: list[Account], camps: list[Any], tz: ZoneInfo, can_amplify: bool
) -> Card:
    key = f"rv_{post.id}"
    seen = _seen_version(post)
    labels = {a.id: widgets.account_label(a.platform, a.handle) for a in accounts}
    with st.container(border=True):
        top = st.columns([0.5, 4, 1.5])
        top[0].checkbox("Select", key=f"{key}_sel", label_visibility="collapsed")
        top[1].markdown(f"**#{post.id}** by {plain(post.author.name)}")
        top[2].caption(f"submitted {widgets.fmt_time(post.submitted_at or post.created_at, tz)}")
        meta = []
        if post.target_platforms:
            meta.append(
                "wants " + ", ".join(widgets.platform_label(p) for p in post.target_platforms)
            )
        if post.preferred_time:
            passed = " (passed)" if post.preferred_time < utcnow() else ""
            meta.append(f"preferred time {widgets.fmt_time(post.preferred_time, tz)}{passed}")
        if meta:
            st.caption(" · ".join(meta))
        if post.media:
            cols = st.columns(4)
            for col, m in zip(cols, post.media, strict=False):
                path = get_settings().data_dir / m.path
                thumb = media.thumbnail(path)  # a checked preview; never the original
                if thumb is not None:
                    col.image(thumb, caption=f"Alt text: {plain(m.alt_text)}", width=160)
                else:
                    reason = media.problem(path) or "It cannot be shown."
                    col.warning(
                        f"{plain(reason)} Ask the author to attach it again. "
                        f"Alt text: {plain(m.alt_text)}"
                    )
        body = st.text_area("Text", value=post.body, key=f"{key}_body_v{seen}", height=120)
        c = st.columns([3, 2])
        link = c[0].text_input(
            "Link",
            value=post.link or "",
            key=f"{key}_link_v{seen}",
            placeholder="https://…",
            help="Fix or remove the story's link; it is checked when you approve.",
        )
        with c[1]:
            campaign_id, campaign = _campaign_box(key, post, camps)
        # Defaults are given as widget values, not seeded into session state: a run cut short
        # (a click while the page loads) would leave the browser showing none of them.
        first = _accounts_for(post, accounts)
        chosen = st.multiselect(
            "Publish from",
            options=list(labels),
            default=first,
            format_func=lambda i: labels[i],
            key=f"{key}_acc",
        )
        chosen_accts = [a for a in accounts if a.id in chosen]
        platforms = list(
            dict.fromkeys([*(post.target_platforms or []), *(a.platform for a in chosen_accts)])
        )
        overrides = _override_fields(key, post, platforms)
        cap = st.columns([1, 2])[0].number_input(
            "Longest thread allowed (posts)",
            min_value=1,
            max_value=workflow.MAX_THREAD_CAP,
            value=post.thread_cap,
            step=1,
            key=f"{key}_cap_v{seen}",
            placeholder="no cap",
            help="Leave empty for no cap. A story that needs more posts is refused at approval.",
        )
        card = Card(
            post=post,
            body=body,
            link=link,
            campaign_id=campaign_id,
            thread_cap=int(cap) if cap is not None else None,
            account_ids=list(chosen),
            choice=SLOT,
            at=None,
            amplify=False,
            overrides=overrides,
        )
        _what_goes_out(card, campaign, chosen_accts)
        c = st.columns([2, 3])
        with c[0]:
            card.choice, card.at = _when(key, post, list(chosen), first, tz)
        with c[1]:
            card.amplify = (
                st.checkbox("Ask advocates to amplify it", key=f"{key}_amp")
                if can_amplify
                else False
            )
        a, r = st.columns(2)
        if a.button("Approve", key=f"{key}_approve", type="primary"):
            try:
                when = card.approve()
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
    return card


def _run_all(
    selected: list[Card], act: Callable[[Card], object]
) -> list[tuple[int, Exception | None]]:
    results: list[tuple[int, Exception | None]] = []
    for card in selected:
        try:
            act(card)
            results.append((card.post.id, None))
        except AmplifyError as exc:
            if isinstance(exc, Conflict):
                _reload(card.post.id)
            results.append((card.post.id, exc))
    return results


def _bulk(cards: list[Card]) -> None:
    selected = [c for c in cards if st.session_state.get(f"rv_{c.post.id}_sel")]
    with st.expander(f"Bulk actions ({len(selected)} selected)", expanded=bool(selected)):
        st.caption(
            "Approve: each selected story is approved as its card is set — its text, link, "
            "accounts and time, edits included. Send back: each selected story returns to its "
            "author with this note."
        )
        note = st.text_input("Note for the authors", key="rv_bulk_note")
        c1, c2 = st.columns(2)
        results: list[tuple[int, Exception | None]] = []
        if c1.button("Approve selected", disabled=not selected):
            results = _run_all(selected, Card.approve)
        if c2.button("Send back selected", disabled=not selected):
            results = _run_all(selected, lambda card: _reject(card.post, note))
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


def _campaigns() -> list[Any]:
    from amplify import campaigns

    with state.db() as s:
        rows = list(campaigns.list_campaigns(s))
        s.expunge_all()
    return rows


def _safe_story(
    post: Post, accounts: list[Account], camps: list[Any], tz: ZoneInfo, can_amplify: bool
) -> Card | None:
    """One story's card; a story that cannot be shown never hides the others."""
    try:
        return _story(post, accounts, camps, tz, can_amplify)
    except Exception:
        log.exception("review: story #%s could not be shown", post.id)
        st.error(
            f"Story #{post.id} cannot be shown right now; the others are below. "
            "An admin can find the details in the server log."
        )
        return None


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
    bulk = st.container()  # filled after the cards, so it acts on what is typed in them
    from amplify import permissions

    can_amplify = permissions.can(user, Action.AMPLIFY)
    camps = _campaigns()
    shown = [_safe_story(post, accounts, camps, tz, can_amplify) for post in posts]
    cards = [card for card in shown if card is not None]
    with bulk:
        _bulk(cards)


if __name__ == "__main__":
    render()
