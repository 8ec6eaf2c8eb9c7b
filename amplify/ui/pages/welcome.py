"""Get started (admin): the first-hour checklist, ticking itself off from the data."""

from __future__ import annotations

import streamlit as st

from amplify import checklist
from amplify.permissions import Action
from amplify.ui import nav, state, widgets

DONE = ":green[:material/check_circle:]"
TODO = ":material/radio_button_unchecked:"


def _dismiss() -> None:
    with state.db() as s:
        checklist.dismiss(s, state.actor(s))


def render() -> None:
    widgets.guard(Action.MANAGE_SETTINGS)
    st.title("Get started")
    with state.db() as s:
        steps = checklist.steps(s)
    done = sum(step.done for step in steps)
    st.write(
        "Four steps get the team going. Each one ticks itself off as soon as it is done, "
        "whoever does it."
    )
    st.progress(done / len(steps), text=f"{done} of {len(steps)} done")
    for number, step in enumerate(steps, start=1):
        with st.container(border=True):
            c1, c2 = st.columns([4, 1], vertical_alignment="center")
            mark = (
                ":green[:material/check_circle:]"
                if step.done
                else ":material/radio_button_unchecked:"
            )
            c1.markdown(f"{mark} **{number}. {step.title}**")
            c1.caption(step.hint)
            c2.page_link(
                nav.page_file(step.page),
                label="Open" if not step.done else "Look again",
                icon=":material/arrow_forward:",
            )
    if done == len(steps):
        st.success("All set: the team is ready to share stories.")
        label = "Done — hide this checklist"
    else:
        st.caption("You can hide this list at any time; the steps stay where they are.")
        label = "Hide this checklist"
    if st.button(label, type="primary" if done == len(steps) else "secondary") and (
        widgets.run_action(_dismiss, "Checklist hidden. You can find every step in the menu.")
    ):
        st.switch_page(nav.page_file(nav.LANDING_LEAD))


if __name__ == "__main__":
    render()
