"""Sandbox numbers say "simulated" wherever they appear; real platforms' numbers do not."""

from amplify import simulated


def test_it_marks_a_sandbox_follower_count_simulated_and_a_real_one_not() -> None:
    assert simulated.followers(4200, "sandbox") == "4,200 followers (simulated)"
    assert simulated.followers(1, "mastodon") == "1 follower"


def test_it_says_a_count_not_yet_read_instead_of_a_number() -> None:
    assert simulated.followers(None, "sandbox") == "followers not read yet"


def test_only_the_sandbox_is_simulated() -> None:
    assert [p for p in ("sandbox", "x", "bluesky", "mastodon") if simulated.is_simulated(p)] == [
        "sandbox"
    ]
    assert simulated.mark("12,000 potential reach", "sandbox").endswith("(simulated)")
