"""Share a story: write it, see how it lands on each platform, save it or send it for review."""

from __future__ import annotations

import mimetypes
import uuid
from pathlib import Path
from typing import Any

import streamlit as st

from amplify import queries, textrules, workflow
from amplify.config import get_settings
from amplify.errors import AmplifyError
from amplify.permissions import Action
from amplify.ui import state, widgets
from connectors.registry import PLATFORMS

P = "keep_share_"  # widget keys: kept across reruns, page switches and errors
MAX_IMAGES = 4
IMAGE_TYPES = ["png", "jpg", "jpeg", "gif", "webp"]


def _campaigns() -> list[Any]:
    from amplify import campaigns

    with state.db() as s:
        rows = list(campaigns.list_campaigns(s))
        for row in rows:
            s.expunge(row)
    return rows


def save_upload(data: bytes, filename: str) -> tuple[str, str]:
    """Store an upload under data/media with a random name; (path relative to data, mime)."""
    ext = Path(filename).suffix.lower() or ".bin"
    mime = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    media_dir = get_settings().data_dir / "media"
    media_dir.mkdir(parents=True, exist_ok=True)
    name = f"{uuid.uuid4().hex}{ext}"
    (media_dir / name).write_bytes(data)
    return f"media/{name}", mime


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


def _override_key(platform: str) -> str:
    return f"{P}ov_{platform}"


def _seed_overrides(editing: dict[str, int] | None) -> None:
    """When editing a draft, fill the custom-text fields from it once (My stories does not)."""
    if not editing or st.session_state.get(f"{P}ov_loaded") == editing["post_id"]:
        return
    from amplify.models import Post

    with state.db() as s:
        post = s.get(Post, editing["post_id"])
        saved = dict(post.overrides or {}) if post is not None else {}
    for platform, text in saved.items():
        st.session_state.setdefault(_override_key(platform), text)
    st.session_state[f"{P}ov_loaded"] = editing["post_id"]


def _override_fields(platforms: list[str]) -> dict[str, str]:
    """An optional, collapsed "Custom text for <platform>" per chosen platform."""
    out: dict[str, str] = {}
    for platform in platforms:
        key = _override_key(platform)
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


def _start_new() -> None:
    widgets.forget(P)
    st.session_state.pop("share_editing", None)
    st.session_state["share_uploader_n"] = st.session_state.get("share_uploader_n", 0) + 1


def render() -> None:
    user = widgets.guard(Action.CREATE_DRAFT)
    if st.session_state.pop("share_reset", False):
        _start_new()
    editing: dict[str, int] | None = st.session_state.get("share_editing")
    st.title("Share a story")
    if editing:
        c1, c2 = st.columns([3, 1])
        c1.info(
            f"Editing your draft #{editing['post_id']}. Its images stay unless you upload "
            "new ones, which replace them."
        )
        if c2.button("Start a new story instead"):
            _start_new()
            st.rerun()
    else:
        st.caption("Tell the team about a win. A lead reviews it before anything is posted.")

    camps = _campaigns()
    by_id = {c.id: c for c in camps}
    tz = widgets.workspace_tz()
    if f"{P}platforms" not in st.session_state:
        with state.db() as s:
            connected = queries.connected_platforms(s)
        # Default: where the team can publish now; with nothing connected, the real networks.
        st.session_state[f"{P}platforms"] = connected or [p for p in PLATFORMS if p != "sandbox"]
    st.session_state.setdefault(f"{P}campaign", None)
    _seed_overrides(editing)

    form, preview_col = st.columns([3, 2], gap="large")
    with form:
        body = st.text_area(
            "Your story", key=f"{P}body", height=200, placeholder="What happened? Who did it help?"
        )
        if camps:
            st.selectbox(
                "Campaign",
                options=[None, *by_id],
                format_func=lambda cid: "No campaign" if cid is None else by_id[cid].name,
                key=f"{P}campaign",
            )
        link = st.text_input("Link (optional)", key=f"{P}link", placeholder="https://…")
        platforms = st.multiselect(
            "Where should it go?",
            options=list(PLATFORMS),
            format_func=widgets.platform_label,
            key=f"{P}platforms",
        )
        if "sandbox" in platforms:
            st.caption(
                ":material/science: Sandbox is a practice network: nothing posted there "
                "leaves this machine."
            )
        overrides = _override_fields(platforms)
        preferred = None
        if st.checkbox("I have a preferred time", key=f"{P}want_time"):
            preferred = widgets.datetime_input("Preferred time", key=f"{P}pref", tz=tz)
        files = (
            st.file_uploader(
                f"Images (up to {MAX_IMAGES}; each needs alt text)",
                type=IMAGE_TYPES,
                accept_multiple_files=True,
                key=f"share_files_{st.session_state.get('share_uploader_n', 0)}",
            )
            or []
        )
        if len(files) > MAX_IMAGES:
            st.warning(f"Only the first {MAX_IMAGES} images are attached; remove the others.")
        images = files[:MAX_IMAGES]
        for n, f in enumerate(images, start=1):
            c1, c2 = st.columns([1, 3])
            c1.image(f, width=120)
            c2.text_input(
                f"Alt text for image {n} ({widgets.plain(f.name)})",
                key=f"{P}alt_{f.name}",
                help="Describe the image for people who use screen readers.",
            )
        with st.container(horizontal=True):
            save = st.button("Save draft")
            send = st.button("Submit for review", type="primary")

    campaign = by_id.get(st.session_state.get(f"{P}campaign"))
    with preview_col:
        _previews(body, link, platforms, campaign, overrides)

    if save or send:
        _save(
            user.id,
            editing,
            body,
            link,
            platforms,
            campaign,
            preferred,
            images,
            overrides,
            submit=send,
        )


def _save(
    user_id: int,
    editing: dict[str, int] | None,
    body: str,
    link: str,
    platforms: list[str],
    campaign: Any,
    preferred: Any,
    images: list[Any],
    overrides: dict[str, str],
    *,
    submit: bool,
) -> None:
    saved: list[str] = []
    try:
        media = []
        for f in images:
            rel, mime = save_upload(f.getvalue(), f.name)
            saved.append(rel)
            alt = st.session_state.get(f"{P}alt_{f.name}", "")
            media.append(workflow.MediaInput(path=rel, alt_text=alt, mime_type=mime))
        fields: dict[str, Any] = {
            "body": body,
            "campaign_id": campaign.id if campaign is not None else None,
            "link": link or None,
            "target_platforms": platforms,
            "preferred_time": preferred,
            "overrides": {p: t for p, t in overrides.items() if t.strip()},
        }
        with state.db() as s:
            actor = state.actor(s)
            if editing:
                if images:
                    fields["media"] = media
                post = workflow.edit(
                    s, actor, editing["post_id"], expected_version=editing["version"], **fields
                )
            else:
                post = workflow.create_draft(s, actor, media=media, **fields)
            if submit:
                workflow.submit(s, actor, post.id)
            post_id = post.id
    except AmplifyError as exc:
        for rel in saved:
            (get_settings().data_dir / rel).unlink(missing_ok=True)
        widgets.show_error(exc)
        return
    if submit:
        widgets.flash(f"Story #{post_id} is with the leads for review. Thank you!")
    else:
        widgets.flash(f"Draft #{post_id} saved. Find it under My stories.")
    st.session_state["share_reset"] = True
    st.rerun()


if __name__ == "__main__":
    render()
