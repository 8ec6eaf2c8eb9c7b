"""A message shown after an action must not move the page under it: Streamlit knows an open
expander or a chosen tab by its place, so a page that shifts down resets them (after adding
one person, "Add a person" folded shut as the admin typed the next one's name)."""

from __future__ import annotations

from collections.abc import Callable

from streamlit.testing.v1 import AppTest


def _place_of_title(at: AppTest, title: str) -> tuple[int, ...]:
    for el in at.title:
        if el.value == title:
            return _path(at, el)
    raise AssertionError(f"no title {title!r} on the page")


def _path(at: AppTest, target: object) -> tuple[int, ...]:
    def walk(node: object, path: tuple[int, ...]) -> tuple[int, ...] | None:
        if node is target:
            return path
        for index, child in getattr(node, "children", {}).items():
            found = walk(child, (*path, index))
            if found is not None:
                return found
        return None

    found = walk(at.main, ())
    assert found is not None
    return found


def test_a_message_after_an_action_leaves_the_page_below_it_in_place(
    app_as: Callable[..., AppTest],
) -> None:
    at = app_as("admin", "team.py")
    quiet = _place_of_title(at, "Team & settings")
    at.session_state["_flash"] = [("success", "Added Pat Person as volunteer.")]
    at.run()
    assert any("Added Pat Person" in str(el.value) for el in at.success)
    assert _place_of_title(at, "Team & settings") == quiet
