"""Kept fields (``keep_`` keys, re-stored on every run so leaving a page loses nothing) must
not also get a ``value=``: Streamlit then logs a warning with a whole stack trace to the
server log (seen on Campaigns' "Tag the story's link" box)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest
from streamlit.elements.lib import policies
from streamlit.testing.v1 import AppTest


@pytest.fixture
def widget_warnings(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Streamlit's "created with a default value but also had its value set" warnings."""
    from streamlit import config

    monkeypatch.setattr(policies, "_shown_default_value_warning", False)
    # Judge the pages themselves, not the config that silences the warning.
    monkeypatch.setattr(
        config,
        "get_option",
        lambda name, _real=config.get_option: (
            False if name == "global.disableWidgetStateDuplicationWarning" else _real(name)
        ),
    )
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    handler = Keep(logging.WARNING)
    logger = logging.getLogger(policies.__name__)
    logger.addHandler(handler)
    try:
        yield seen
    finally:
        logger.removeHandler(handler)


@pytest.mark.parametrize("page", ["campaigns.py", "share.py", "team.py"])
def test_pages_with_kept_fields_log_no_widget_default_warning_on_later_runs(
    page: str, app_as: Callable[..., AppTest], widget_warnings: list[str]
) -> None:
    at = app_as("admin", page)
    at.run()
    at.run()
    assert not at.exception
    assert not [w for w in widget_warnings if "default value" in w], widget_warnings


def test_the_dashboard_config_silences_the_warning_for_kept_range_pickers() -> None:
    # Reach's period picker must pass value= (that is what makes it a range) and is kept.
    import tomllib
    from pathlib import Path

    config = Path(__file__).resolve().parents[2] / ".streamlit" / "config.toml"
    settings = tomllib.loads(config.read_text())
    assert settings["global"]["disableWidgetStateDuplicationWarning"] is True
