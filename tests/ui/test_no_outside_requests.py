"""The dashboard makes visitors' browsers fetch nothing from other sites: Streamlit turns a
``:material/…`` page icon into a favicon address on fonts.gstatic.com (Google)."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[2] / "app.py"


def _page_icons() -> list[object]:
    return [
        kw.value.value
        for node in ast.walk(ast.parse(APP.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "set_page_config"
        for kw in node.keywords
        if kw.arg == "page_icon" and isinstance(kw.value, ast.Constant)
    ]


def test_the_favicon_is_drawn_by_the_browser_not_fetched_from_google(
    app_as: Callable[..., AppTest],
) -> None:
    icons = _page_icons()
    assert icons, "app.py sets a page icon"
    assert not [i for i in icons if str(i).startswith(":material/")], icons
    assert not app_as("volunteer").exception
