"""Campaigns (admin): add, edit, archive and restore the campaigns stories are filed under."""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
import streamlit as st

from amplify import campaigns
from amplify.models import Campaign
from amplify.permissions import Action
from amplify.ui import state, widgets

NEW = "keep_cp_new_"  # the add form's widget keys (forgotten once the campaign is added)


def _rows(items: list[Campaign]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "name": c.name,
                "hashtags": c.hashtags,
                "UTM campaign": c.utm_campaign if c.utm_enabled else "(links not tagged)",
                "from": f"{c.starts_on:%d %b %Y}" if c.starts_on else "",
                "to": f"{c.ends_on:%d %b %Y}" if c.ends_on else "",
                "status": "archived" if c.archived else "in use",
            }
            for c in items
        ]
    )


def _fields(prefix: str, current: Campaign | None) -> dict[str, Any]:
    """The campaign form; returns the fields for create/update."""
    name = st.text_input("Name", value=current.name if current else "", key=f"{prefix}name")
    desc = st.text_area(
        "Description", value=current.description if current else "", key=f"{prefix}desc"
    )
    tags = st.text_input(
        "Hashtags (space-separated)",
        value=current.hashtags if current else "",
        key=f"{prefix}tags",
    )
    utm = st.text_input(
        "UTM campaign (blank: made from the name)",
        value=current.utm_campaign if current else "",
        key=f"{prefix}utm",
    )
    if current is None:  # a new campaign tags links; set here, not as the widget's value,
        # since the add form's typed values are re-stored each run (keep_typed_values) and
        # Streamlit warns in the log about a widget with both
        st.session_state.setdefault(f"{prefix}utm_on", True)
    tagged = st.checkbox(
        "Tag the story's link with the UTM campaign",
        value=current.utm_enabled if current else False,
        key=f"{prefix}utm_on",
    )
    dated = st.checkbox(
        "Runs between dates",
        value=bool(current and (current.starts_on or current.ends_on)),
        key=f"{prefix}dated",
    )
    start: date | None = None
    end: date | None = None
    if dated:
        c1, c2 = st.columns(2)
        start = c1.date_input(
            "Starts", value=(current.starts_on if current else None) or "today", key=f"{prefix}s"
        )
        end = c2.date_input(
            "Ends", value=(current.ends_on if current else None) or "today", key=f"{prefix}e"
        )
    return {
        "name": name,
        "description": desc,
        "hashtags": tags,
        "utm_campaign": utm or None,
        "utm_enabled": tagged,
        "starts_on": start,
        "ends_on": end,
    }


def _create(fields: dict[str, Any]) -> None:
    with state.db() as s:
        campaigns.create_campaign(s, state.actor(s), **fields)


def _update(campaign_id: int, fields: dict[str, Any]) -> None:
    with state.db() as s:
        campaigns.update_campaign(s, state.actor(s), campaign_id, **fields)


def _archive(campaign_id: int, archived: bool) -> None:
    with state.db() as s:
        campaigns.archive_campaign(s, state.actor(s), campaign_id, archived)


def _add() -> None:
    with st.expander("Add a campaign"):
        fields = _fields(widgets.form_prefix(NEW), None)
        if st.button("Add campaign", type="primary") and widgets.run_action(
            lambda: _create(fields), f"Campaign {widgets.plain(fields['name'].strip())} added."
        ):
            widgets.new_form(NEW)  # a clean form for the next one
            st.rerun()


def _edit(items: list[Campaign]) -> None:
    st.subheader("Edit or archive")
    by_id = {c.id: c for c in items}  # in use first, then archived
    cid = st.selectbox(
        "Campaign",
        options=list(by_id),
        format_func=lambda i: by_id[i].name + (" (archived)" if by_id[i].archived else ""),
        key="cp_pick",
    )
    current = by_id[cid]
    fields = _fields(f"cp_{cid}_", current)
    c1, c2 = st.columns(2)
    if c1.button("Save changes", type="primary") and widgets.run_action(
        lambda: _update(cid, fields), f"Campaign {widgets.plain(fields['name'].strip())} saved."
    ):
        widgets.forget(f"cp_{cid}_")
        st.rerun()
    if current.archived:
        if c2.button("Restore", help="Offer it again for new stories.") and widgets.run_action(
            lambda: _archive(cid, False), f"Campaign {widgets.plain(current.name)} restored."
        ):
            st.rerun()
    elif c2.button(
        "Archive", help="Stop offering it for new stories; stories already in it keep it."
    ) and widgets.run_action(
        lambda: _archive(cid, True), f"Campaign {widgets.plain(current.name)} archived."
    ):
        st.rerun()


def render() -> None:
    widgets.guard(Action.MANAGE_CAMPAIGNS)
    st.title("Campaigns")
    st.caption(
        "Stories are filed under a campaign: its hashtags are added to each post and its UTM "
        "name tags the story's link. Archived campaigns are no longer offered for new stories."
    )
    with state.db() as s:
        items = sorted(campaigns.list_campaigns(s, include_archived=True), key=lambda c: c.archived)
        s.expunge_all()
    if items:
        st.dataframe(_rows(items), hide_index=True, width="stretch")
    else:
        st.info("No campaigns yet: add the first one below.")
    _add()
    if items:
        _edit(items)


if __name__ == "__main__":
    render()
