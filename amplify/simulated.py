"""Numbers from the sandbox (the practice network) are simulated, and say so from the start.

Pure helpers shared by every page that shows a follower count or a reach figure, so a
sandbox number is never shown bare, even before its first metrics snapshot.
"""

from __future__ import annotations

SANDBOX = "sandbox"
SUFFIX = " (simulated)"


def is_simulated(platform: str) -> bool:
    """Whether numbers read from accounts on this platform are modelled, not real."""
    return platform == SANDBOX


def mark(text: str, platform: str) -> str:
    """``text`` with "(simulated)" appended for a sandbox account."""
    return text + SUFFIX if is_simulated(platform) else text


def followers(count: int | None, platform: str) -> str:
    """A follower count as people read it, e.g. "4,200 followers (simulated)"."""
    if count is None:
        return "followers not read yet"
    return mark(f"{count:,} follower{'' if count == 1 else 's'}", platform)
