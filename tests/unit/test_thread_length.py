"""Thread length: when a story makes a thread too long to follow, per platform."""

from __future__ import annotations

import pytest

from amplify import textrules

STORY = " ".join(["Volunteers staffed the screening tent all weekend long."] * 40)


@pytest.mark.parametrize(("platform", "above"), [("x", 5), ("bluesky", 5), ("mastodon", 3)])
def test_it_flags_a_thread_only_above_the_platforms_sensible_length(
    platform: str, above: int
) -> None:
    assert textrules.thread_warn_above(platform) == above
    assert not textrules.long_thread(platform, above)
    assert textrules.long_thread(platform, above + 1)


def test_it_flags_about_the_same_amount_of_text_on_every_platform() -> None:
    sizes = {
        p: textrules.limit_for(p) * n
        for p, n in textrules.THREAD_WARN_ABOVE.items()
        if p != "sandbox"
    }
    assert max(sizes.values()) - min(sizes.values()) <= 100, sizes


def test_it_flags_a_long_story_and_not_a_short_one() -> None:
    parts = textrules.render("x", STORY)
    assert len(parts) > 5 and textrules.long_thread("x", len(parts))
    assert not textrules.long_thread("x", len(textrules.render("x", "A short win.")))


def test_it_knows_no_threshold_for_a_platform_it_does_not_know() -> None:
    assert textrules.thread_warn_above("memory") is None
    assert not textrules.long_thread("memory", 100)
