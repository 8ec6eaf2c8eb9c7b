"""Share a story: write it, see how it lands on each platform, save it or send it for review.

What is typed is kept as an autosaved draft on every change, so a reload or a lost
connection loses nothing; after a save or a submit the form starts empty.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import streamlit as st

from amplify import media, queries, textrules, workflow
from amplify.errors import AmplifyError, ValidationFailed
from amplify.models import Post, utcnow
from amplify.permissions import Action
from amplify.ui import state, widgets
from connectors import registry
from connectors.registry import PLATFORMS

log = logging.getLogger(__name__)

P = "keep_share_"  # widget keys: kept across reruns, page switches and errors
GEN = "share_form_gen"  # the form's generation: a new one draws new, empty widgets
TARGET = "share_target"  # the draft the form writes into: {"post_id", "version", "kind", ...}
LOAD = "share_load"  # a draft to open in the form (set by My stories)
RESET = "share_reset"  # start a new, empty form on the next run
AUTOSAVED = "share_autosaved"  # what was last autosaved (reruns with no change skip it)
RESTORE_CHECKED = "share_restore_checked"  # offered the newest autosaved draft this session
ANOTHER = "share_another"  # a story was just saved: say "Write another story"
NO_CAMPAIGN = 0
MAX_IMAGES = 4
IMAGE_TYPES = ["png", "jpg", "jpeg", "gif", "webp"]


def k(name: str) -> str:
    """The widget key of a form field in the current generation.

    Clearing a widget's key is not enough to empty it: the browser keeps the value it holds
    for that widget and sends it back with the next click (issue 8: a new story went out with
    the previous one's link). New keys make new widgets, which the browser starts empty.
    The first form of a session keeps the plain keys.
    """
    gen = int(st.session_state.get(GEN, 0))
    return f"{P}{name}" if gen == 0 else f"{P}{gen}_{name}"


def _campaigns(keep: int | None = None) -> list[Any]:
    """Active campaigns, plus ``keep`` (a draft's own campaign) even if it was archived."""
    from amplify import campaigns

    with state.db() as s:
        rows = list(campaigns.list_campaigns(s))
        if keep and all(c.id != keep for c in rows):
            every = campaigns.list_campaigns(s, include_archived=True)
            rows.extend(c for c in every if c.id == keep)
        for row in rows:
            s.expunge(row)
    return rows


def checked_upload(f: Any) -> media.Checked | str:
    """The upload checked and normalised once per file (amplify.media), or what to fix.
    Nothing is written to disk until the story is saved."""
    key = f"{P}img_{f.file_id}"
    if key not in st.session_state:
        try:
            st.session_state[key] = media.check(f.getvalue(), f.name)
        except media.ImageRefused as exc:
            st.session_state[key] = str(exc)
    found: media.Checked | str = st.session_state[key]
    return found


@st.cache_data(ttl=3600, max_entries=200, show_spinner="Reading the link's preview…")
def _fetch_card(link: str) -> tuple[str, str] | None:
    """(title, description) of a page, or None; cached so typing does not refetch."""
    from connectors import linkcard

    if not linkcard.is_web_url(link):
        return None
    try:
        card = linkcard.fetch_card(link)
    except Exception:  # a card is a nicety: the post goes out with the plain link
        return None
    return (card.title, card.description) if card is not None else None


def _link_card(link: str) -> None:
    card = _fetch_card(link)
    if card is None:
        st.caption(f":material/link: {widgets.plain(link)}")
        return
    title, description = card
    with st.container(border=True):
        st.markdown(f"**{widgets.plain(title or link)}**")
        if description:
            st.caption(widgets.plain(description))
        st.caption(f":material/link: {widgets.plain(link)}")


def short_name(platform: str) -> str:
    """A platform's name inside a sentence (the sandbox's full label is too long there)."""
    return widgets.platform_in_sentence(platform)


def _long_thread_warning(platform: str, parts: int) -> None:
    if not textrules.long_thread(platform, parts):
        return
    name = short_name(platform)
    st.warning(
        f"On {name} this becomes a thread of {parts} posts; past "
        f"{textrules.thread_warn_above(platform)} most readers stop. Shorten the story, or "
        f"write a shorter custom text for {name}.",
        icon=":material/format_list_numbered:",
    )


def _previews(
    body: str, link: str, platforms: list[str], campaign: Any, overrides: dict[str, str]
) -> None:
    st.subheader("How it will look")
    if not body.strip() and not any(overrides.get(p, "").strip() for p in platforms):
        st.caption("Start writing to see a preview for each platform.")
        return
    if not platforms:
        st.caption("Choose at least one platform to see its preview.")
        return
    inputs = textrules.campaign_inputs(campaign)  # as the publisher renders it
    for platform in platforms:
        custom = overrides.get(platform, "").strip() or None
        try:
            pv = textrules.preview(platform, body, link=link or None, override=custom, **inputs)
        except ValueError as exc:
            st.warning(widgets.plain(exc))
            continue
        with st.container(border=True):
            title = widgets.platform_label(platform)
            if custom:
                title += " (custom text)"
            if pv.is_thread:
                st.markdown(f"**{title}** — a thread of {len(pv.parts)} posts")
                _long_thread_warning(platform, len(pv.parts))
            else:
                left = pv.remaining
                st.markdown(f"**{title}** — {pv.full_count}/{pv.limit} ({left} left)")
            for i, part in enumerate(pv.parts, start=1):
                mark = ":material/check:" if part.fits else ":material/close: too long"
                extra = f", {part.bytes} bytes" if part.bytes is not None else ""
                if pv.is_thread:
                    st.caption(f"Part {i}: {part.count}/{part.limit}{extra} {mark}")
                st.text(part.text)
    if link:
        _link_card(link)


def _override_fields(platforms: list[str]) -> dict[str, str]:
    """An optional, collapsed "Custom text for <platform>" per chosen platform."""
    out: dict[str, str] = {}
    for platform in platforms:
        key = k(f"ov_{platform}")
        st.session_state.setdefault(key, "")
        name = widgets.platform_label(platform)
        with st.expander(f"Custom text for {name}", expanded=bool(st.session_state[key])):
            out[platform] = st.text_area(
                f"Custom text for {name}",
                key=key,
                height=120,
                help="Sent on this platform instead of the story above. Leave empty to use "
                "the story. The link and campaign hashtags are still added.",
            )
    return out


# --------------------------------------------------------------------------- form state


def _new_generation() -> None:
    """Forget every field and draw new widgets (see ``k``)."""
    widgets.forget(P)
    st.session_state[GEN] = int(st.session_state.get(GEN, 0)) + 1
    st.session_state.pop(AUTOSAVED, None)


def _start_new() -> None:
    _new_generation()
    st.session_state.pop(TARGET, None)


def _default_platforms() -> list[str]:
    with state.db() as s:
        connected = queries.connected_platforms(s)
    # Default: where the team can publish now; with nothing connected, the real networks.
    return connected or [p for p in PLATFORMS if not registry.info(p).practice]


def _fill(post: Post, tz: ZoneInfo) -> None:
    """Put a saved story into fresh fields."""
    _new_generation()
    st.session_state[k("body")] = post.body
    st.session_state[k("link")] = post.link or ""
    st.session_state[k("platforms")] = [p for p in post.target_platforms or [] if p in PLATFORMS]
    st.session_state[k("campaign")] = post.campaign_id or NO_CAMPAIGN
    for platform, text in (post.overrides or {}).items():
        st.session_state[k(f"ov_{platform}")] = text
    if post.preferred_time is not None:
        local = post.preferred_time.astimezone(tz)
        st.session_state[k("want_time")] = True
        st.session_state[k("pref_day")] = local.date()
        st.session_state[k("pref_time")] = local.time().replace(second=0, microsecond=0)


def _target_of(post: Post, kind: str) -> dict[str, Any]:
    return {
        "post_id": post.id,
        "version": post.version,
        "kind": kind,  # "edit": opened from My stories; "auto": kept while typing
        "note": post.review_note,
        "media": len(post.media),
        "at": post.updated_at,
    }


def _open(post_id: int, tz: ZoneInfo) -> None:
    """Open one of my drafts in the form (My stories' Edit)."""
    with state.db() as s:
        post = s.get(Post, post_id)
        actor = state.actor(s)
        if post is None or post.author_id != actor.id or post.state != "draft":
            st.warning("That draft can no longer be edited here; it may have been sent.")
            return
        _fill(post, tz)
        st.session_state[TARGET] = _target_of(post, "edit")


def _restore(tz: ZoneInfo) -> None:
    """After a reload (a new session): bring back what this person was typing."""
    st.session_state[RESTORE_CHECKED] = True
    if TARGET in st.session_state or st.session_state.get(k("body")):
        return
    with state.db() as s:
        post = workflow.latest_autosave(s, state.actor(s))
        if post is None:
            return
        _fill(post, tz)
        target = _target_of(post, "auto")
        target["restored"] = True
        st.session_state[TARGET] = target


def _banner(target: dict[str, Any] | None, tz: ZoneInfo) -> None:
    # A copy kept while typing in this session needs no banner; a restored one does.
    quiet = not target or (target["kind"] == "auto" and not target.get("restored"))
    if st.session_state.get(ANOTHER):
        st.subheader("Write another story")
        st.caption("The form is empty again. Your last story is under My stories.")
    elif quiet:
        st.caption("Tell the team about a win. A lead reviews it before anything is posted.")
    if quiet or target is None:
        return
    c1, c2 = st.columns([3, 1])
    if target["kind"] == "edit":
        c1.info(
            f"Editing your draft #{target['post_id']}. Its images stay unless you upload "
            "new ones, which replace them."
        )
    else:
        at = target["at"].astimezone(tz).strftime("%H:%M") if target.get("at") else "earlier"
        images = (
            "Its saved images stay unless you upload new ones."
            if target.get("media")
            else "Images are not kept while typing: attach them again."
        )
        c1.info(f"We kept what you were writing at {at} (draft #{target['post_id']}). {images}")
    if c2.button("Start a new story instead", help="The draft stays under My stories."):
        _start_new()
        st.rerun()
    if target.get("note"):
        st.warning(
            f"Note from the lead: {widgets.plain(target['note'])}", icon=":material/rate_review:"
        )


# --------------------------------------------------------------------------- the form


@dataclass
class Form:
    body: str
    link: str
    platforms: list[str]
    campaign: Any
    preferred: datetime | None
    images: list[Any]
    overrides: dict[str, str]

    def fields(self) -> dict[str, Any]:
        return {
            "body": self.body,
            "campaign_id": self.campaign.id if self.campaign is not None else None,
            "link": self.link or None,
            "target_platforms": self.platforms,
            "preferred_time": self.preferred,
            "overrides": {p: t for p, t in self.overrides.items() if t.strip()},
        }

    def typed(self) -> bool:
        return bool(self.body.strip() or self.link.strip()) or any(
            t.strip() for t in self.overrides.values()
        )


def _default_preferred(platforms: list[str], tz: ZoneInfo) -> tuple[datetime, bool]:
    """The next open posting slot of the team's accounts on these platforms (True), else
    the next whole hour after the next one (False)."""
    from amplify import slots

    try:
        with state.db() as s:
            ids = [a.id for a in queries.publishing_accounts(s) if a.platform in platforms]
            found = slots.next_open_slot(s, ids) if ids else None
    except AmplifyError:  # every slot taken: fall back to an hour
        found = None
    if found is not None:
        return found, True
    hour = datetime.now(tz).replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)
    return hour, False


def _preferred_time(platforms: list[str], tz: ZoneInfo) -> datetime | None:
    if not st.checkbox("I have a preferred time", key=k("want_time")):
        return None
    default, from_slot = None, False
    if k("pref_day") not in st.session_state:
        default, from_slot = _default_preferred(platforms, tz)
        st.session_state[k("pref_slot")] = from_slot
    if st.session_state.get(k("pref_slot")):
        st.caption("Filled in with the next open posting slot; change it if you like.")
    return widgets.datetime_input("Preferred time", key=k("pref"), default=default, tz=tz)


def _campaign_box(camps: list[Any]) -> Any:
    by_id = {c.id: c for c in camps}
    if st.session_state.get(k("campaign")) not in (NO_CAMPAIGN, *by_id):
        st.session_state[k("campaign")] = NO_CAMPAIGN  # None would show "Choose an option"
    if not camps:
        return None
    chosen = st.selectbox(
        "Campaign",
        options=[NO_CAMPAIGN, *by_id],
        format_func=lambda cid: "No campaign" if cid == NO_CAMPAIGN else by_id[cid].name,
        key=k("campaign"),
    )
    return by_id.get(chosen)


def render() -> None:
    user = widgets.guard(Action.CREATE_DRAFT)
    tz = widgets.workspace_tz()
    if st.session_state.pop(RESET, False):
        _start_new()
    if LOAD in st.session_state:
        _open(int(st.session_state.pop(LOAD)), tz)
        st.session_state[RESTORE_CHECKED] = True
    elif RESTORE_CHECKED not in st.session_state:
        _restore(tz)
    target: dict[str, Any] | None = st.session_state.get(TARGET)
    st.title("Share a story")
    _banner(target, tz)

    camps = _campaigns(st.session_state.get(k("campaign")) or None)
    if k("platforms") not in st.session_state:
        st.session_state[k("platforms")] = _default_platforms()

    form, preview_col = st.columns([3, 2], gap="large")
    with form:
        body = st.text_area(
            "Your story", key=k("body"), height=200, placeholder="What happened? Who did it help?"
        )
        campaign = _campaign_box(camps)
        link = st.text_input("Link (optional)", key=k("link"), placeholder="https://…")
        platforms = st.multiselect(
            "Where should it go?",
            options=list(PLATFORMS),
            format_func=widgets.platform_label,
            key=k("platforms"),
        )
        if any(registry.info(p).practice for p in platforms):
            st.caption(
                ":material/science: Sandbox is a practice network: nothing posted there "
                "leaves this machine."
            )
        overrides = _override_fields(platforms)
        preferred = _preferred_time(platforms, tz)
        files = (
            st.file_uploader(
                f"Images (up to {MAX_IMAGES}; each needs alt text)",
                type=IMAGE_TYPES,
                accept_multiple_files=True,
                key=f"share_files_{st.session_state.get(GEN, 0)}",
                max_upload_size=media.MAX_INPUT_BYTES // (1024 * 1024),  # MB; checked again
            )
            or []
        )
        if len(files) > MAX_IMAGES:
            st.warning(f"Only the first {MAX_IMAGES} images are attached; remove the others.")
        images = files[:MAX_IMAGES]
        for n, f in enumerate(images, start=1):
            c1, c2 = st.columns([1, 3])
            checked = checked_upload(f)
            if isinstance(checked, str):  # never shown: only the checked copy is
                c2.error(widgets.plain(checked), icon=":material/broken_image:")
                continue
            c1.image(media.preview(checked), width=120)
            c2.text_input(
                f"Alt text for image {n} ({widgets.plain(f.name)})",
                key=k(f"alt_{f.name}"),
                help="Describe the image for people who use screen readers.",
            )
        with st.container(horizontal=True):
            save = st.button("Save draft")
            send = st.button("Submit for review", type="primary")

    typed = Form(body, link, platforms, campaign, preferred, images, overrides)
    if typed.typed():
        st.session_state.pop(ANOTHER, None)
    with preview_col:
        _previews(body, link, platforms, campaign, overrides)

    if save or send:
        _save(user.id, target, typed, submit=send)
    else:
        _autosave(target, typed)


# --------------------------------------------------------------------------- saving


def _keep(target: dict[str, Any] | None, fields: dict[str, Any]) -> dict[str, Any]:
    """Write what is typed into the target draft (or a new one); the target to remember."""
    with state.db() as s:
        actor = state.actor(s)
        if target is None:
            return _target_of(workflow.autosave(s, actor, **fields), "auto")
        post = workflow.autosave(
            s, actor, target["post_id"], expected_version=target["version"], **fields
        )
        return {**target, "version": post.version}


def _autosave(target: dict[str, Any] | None, typed: Form) -> None:
    """Keep what is typed as a draft whenever it changed since the last run.

    Streamlit sends a field when it loses focus (or on Ctrl+Enter), so this runs once per
    change, not per keystroke. It never stops the page: what is typed stays in the form.
    When the draft cannot take it (sent or changed elsewhere, deleted), the words go into a
    new draft instead, so a reload still finds them.
    """
    if not typed.typed():
        return
    fields = typed.fields()
    signature = repr(sorted(fields.items()))
    if st.session_state.get(AUTOSAVED) == signature:
        return
    try:
        try:
            kept = _keep(target, fields)
        except AmplifyError as exc:
            if target is None:
                raise
            kept = _keep(None, fields)
            st.caption(
                f":material/call_split: Draft #{target['post_id']} could not take your changes "
                f"({widgets.plain(exc)}); they are kept as a new draft #{kept['post_id']}."
            )
    except AmplifyError as exc:
        st.caption(f":material/cloud_off: Not kept automatically: {widgets.plain(exc)}")
        return
    except Exception:  # a keep-while-typing copy must never break the page
        log.exception("autosave failed; what was typed stays in the form")
        st.caption(":material/cloud_off: Could not keep a copy just now; save the draft.")
        return
    st.session_state[TARGET] = kept
    st.session_state[AUTOSAVED] = signature
    st.caption(f":material/cloud_done: Kept as draft #{kept['post_id']} while you write.")


def _past_preferred(preferred: datetime | None) -> bool:
    if preferred is None or preferred >= utcnow():
        return False
    st.error(
        "The preferred time has already passed: pick a later one, or untick "
        "“I have a preferred time” and a lead picks the time."
    )
    return True


def _save(user_id: int, target: dict[str, Any] | None, typed: Form, *, submit: bool) -> None:
    if _past_preferred(typed.preferred):
        return
    checks = [(f, checked_upload(f)) for f in typed.images]
    refused = [c for _, c in checks if isinstance(c, str)]
    if refused:  # say what to fix; nothing is saved with a picture left out
        widgets.show_error(ValidationFailed(refused))
        return
    ready = [(f, c) for f, c in checks if not isinstance(c, str)]
    saved: list[str] = []
    replaced: list[str] = []
    try:
        attached = []
        for f, checked in ready:
            stored = media.store(checked)
            saved.append(stored.path)
            alt = st.session_state.get(k(f"alt_{f.name}"), "")
            attached.append(workflow.MediaInput(stored.path, alt, stored.mime_type))
        fields = typed.fields()
        with state.db() as s:
            actor = state.actor(s)
            if target is not None:
                # A draft keeps its images unless new ones are uploaded (a copy restored
                # after a reload may be a saved draft with images, typed on since).
                if typed.images:
                    fields["media"] = attached
                    old = s.get(Post, target["post_id"])
                    replaced = [m.path for m in old.media] if old is not None else []
                post = workflow.edit(
                    s, actor, target["post_id"], expected_version=target["version"], **fields
                )
            else:
                post = workflow.create_draft(s, actor, media=attached, **fields)
            media.describe(s, post.media)  # width, height, size and hash of each copy
            if submit:
                workflow.submit(s, actor, post.id)
            post_id = post.id
    except AmplifyError as exc:
        _tidy(saved)
        widgets.show_error(exc)  # nothing typed is lost: the fields keep their values
        return
    _tidy([p for p in replaced if p not in saved])
    if submit:
        widgets.flash(f"Story #{post_id} is with the leads for review. Thank you!")
    else:
        widgets.flash(f"Draft #{post_id} saved. Find it under My stories.")
    st.session_state[RESET] = True
    st.session_state[ANOTHER] = True
    st.rerun()


def _tidy(paths: list[str]) -> None:
    """Delete image files no story uses any more (replaced, or from a save that failed),
    and older leftovers; a clean-up never stops the page."""
    if not paths:
        return
    try:
        with state.db() as s:
            media.discard(s, paths)
            media.remove_orphans(s)
    except Exception:
        log.exception("could not tidy unused images; the worker's sweep will")


if __name__ == "__main__":
    render()
