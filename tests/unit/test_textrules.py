"""Per-platform counting, thread splitting, UTM tagging and rendering (amplify.textrules)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amplify import textrules as tr

PLATFORMS = ("x", "bluesky", "mastodon", "sandbox")
URL = "https://example.org/stories/nurses-cut-wait-times?ref=home"

# --------------------------------------------------------------------------- counting


def test_it_counts_an_x_url_as_23_and_cjk_and_emoji_as_2() -> None:
    assert tr.length("x", "a " + URL) == 2 + 23
    assert tr.length("x", "中文") == 4
    assert tr.length("x", "👍") == 2
    assert tr.length("x", "👨‍👩‍👧‍👦") == 2  # a ZWJ family is one emoji


def test_it_normalises_to_nfc_before_counting_on_x() -> None:
    decomposed = "e\u0301" * 10  # é as e + combining acute
    assert tr.length("x", decomposed) == 10


def test_it_counts_bluesky_in_graphemes_and_also_checks_bytes() -> None:
    assert tr.length("bluesky", "👨‍👩‍👧‍👦e\u0301") == 2
    assert tr.fits("bluesky", "a" * 300)
    assert not tr.fits("bluesky", "a" * 301)
    # 250 family emoji are 250 graphemes but 6,250 bytes: over the 3,000-byte cap
    assert not tr.fits("bluesky", "👨‍👩‍👧‍👦" * 250)


def test_it_counts_mastodon_urls_as_23_and_mentions_by_username_only() -> None:
    assert tr.length("mastodon", URL) == 23
    assert tr.length("mastodon", "@alice@very-long-instance-name.example.social hi") == len(
        "@alice hi"
    )
    assert tr.length("mastodon", "mail me at bob@example.org") == len("mail me at bob@example.org")
    assert tr.length("mastodon", "👨‍👩‍👧‍👦") == 1


def test_it_uses_the_instance_limit_for_mastodon_and_the_defaults_elsewhere() -> None:
    assert tr.limit_for("mastodon") == 500
    assert tr.limit_for("mastodon", 11000) == 11000
    assert tr.limit_for("x") == 280
    assert tr.limit_for("bluesky") == 300
    assert tr.limit_for("sandbox") == 500
    assert tr.fits("mastodon", "a" * 600, limit=1000)
    assert not tr.fits("mastodon", "a" * 600)


def test_it_counts_sandbox_in_plain_characters() -> None:
    assert tr.length("sandbox", URL) == len(URL)


def test_it_refuses_an_unknown_platform_by_naming_the_choices() -> None:
    with pytest.raises(ValueError, match="x, bluesky, mastodon, sandbox"):
        tr.length("myspace", "hi")


# --------------------------------------------------------------------------- splitting


STORY = (
    "Our night-shift nurses cut emergency wait times by 40% this winter. "
    "They did it with a shared triage board built by two volunteers. "
    "Patients noticed: complaints fell by half! "
    "The board is open source and any clinic can use it. "
    "Thanks to @alice@health.example and @bob for the data. "
    f"Read the whole story at {URL} #HealthIT #Nursing "
) * 3


def test_it_keeps_a_text_that_fits_as_one_part_without_a_marker() -> None:
    assert tr.split_thread("x", "  Short story.  ") == ["Short story."]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_it_splits_a_long_story_into_numbered_parts_that_each_fit(platform: str) -> None:
    parts = tr.split_thread(platform, STORY)
    assert len(parts) > 1
    n = len(parts)
    for i, part in enumerate(parts, start=1):
        assert part.endswith(f" {i}/{n}")
        assert tr.fits(platform, part)
    assert tr.collapse_whitespace(tr.unsplit(parts)) == tr.collapse_whitespace(STORY)


def test_it_cuts_at_sentence_ends_before_word_boundaries() -> None:
    parts = tr.split_thread("x", STORY)
    for part in parts[:-1]:
        body = tr.strip_marker(part)
        assert body.endswith((".", "!", "#Nursing", "#HealthIT")), body


def test_it_never_cuts_inside_a_url_mention_or_hashtag() -> None:
    entities = [URL, "@alice@health.example", "@bob", "#HealthIT", "#Nursing"]
    for platform in PLATFORMS:
        for limit in (70, 90, 140):  # the URL (59) fits a part at each
            parts = tr.split_thread(platform, STORY, limit)
            bodies = [tr.strip_marker(p) for p in parts]
            for entity in entities:
                expected = STORY.count(entity)
                assert sum(b.count(entity) for b in bodies) == expected, (platform, limit, entity)


def test_it_widens_the_marker_when_the_part_count_gains_a_digit() -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(60))
    parts = tr.split_thread("sandbox", text, limit=40)
    assert len(parts) >= 10
    assert parts[0].endswith(f" 1/{len(parts)}")
    assert all(len(p) <= 40 for p in parts)
    assert tr.collapse_whitespace(tr.unsplit(parts)) == tr.collapse_whitespace(text)


def test_it_hard_splits_a_long_cjk_run_at_grapheme_boundaries_only() -> None:
    text = "看護師の皆さん、ありがとう👨‍👩‍👧‍👦" * 30
    parts = tr.split_thread("x", text)
    assert len(parts) > 1
    assert all(tr.fits("x", p) for p in parts)
    families = sum(tr.strip_marker(p).count("👨‍👩‍👧‍👦") for p in parts)
    assert families == 30
    assert "".join(tr.strip_marker(p) for p in parts) == text


def test_it_cuts_after_cjk_sentence_punctuation_before_cutting_mid_sentence() -> None:
    sentence = "看護師が待ち時間を短縮しました。"
    parts = tr.split_thread("x", sentence * 20)
    for part in parts[:-1]:
        assert tr.strip_marker(part).endswith("。")


def test_it_splits_a_url_longer_than_a_bluesky_post_as_the_one_exception() -> None:
    long_url = "https://example.org/" + "a" * 400
    parts = tr.split_thread("bluesky", f"see {long_url} ok")
    assert all(tr.fits("bluesky", p) for p in parts)
    assert "".join(tr.strip_marker(p) for p in parts[1:-1]) in long_url
    assert tr.collapse_whitespace(tr.unsplit(parts)).replace(" ", "") == (
        f"see {long_url} ok".replace(" ", "")
    )


def test_it_never_splits_a_long_url_on_x_or_mastodon_where_urls_count_23() -> None:
    long_url = "https://example.org/" + "a" * 400
    for platform in ("x", "mastodon"):
        text = ("word " * 60) + long_url + (" word" * 60)
        parts = tr.split_thread(platform, text)
        assert sum(tr.strip_marker(p).count(long_url) for p in parts) == 1


def test_it_refuses_a_limit_too_small_for_the_marker() -> None:
    with pytest.raises(ValueError, match="too small"):
        tr.split_thread("sandbox", "a b c d e f", limit=3)


# --------------------------------------------------------------------------- UTM


def test_it_tags_a_link_with_platform_medium_and_campaign() -> None:
    assert tr.add_utm("https://example.org/p", "bluesky", "flu-2026") == (
        "https://example.org/p?utm_source=bluesky&utm_medium=social&utm_campaign=flu-2026"
    )


def test_it_keeps_existing_query_and_fragment_and_replaces_stale_utm_tags() -> None:
    url = "https://example.org/p?id=7&q=a%20b&utm_source=newsletter&utm_content=top#section-2"
    tagged = tr.add_utm(url, "x", "flu")
    assert tagged == (
        "https://example.org/p?id=7&q=a%20b&utm_content=top"
        "&utm_source=x&utm_medium=social&utm_campaign=flu#section-2"
    )
    assert tr.add_utm(tagged, "x", "flu") == tagged


def test_it_leaves_out_utm_campaign_without_a_slug() -> None:
    assert tr.add_utm("https://e.org/", "mastodon", None) == (
        "https://e.org/?utm_source=mastodon&utm_medium=social"
    )


# --------------------------------------------------------------------------- render


def test_it_renders_body_link_and_missing_hashtags() -> None:
    parts = tr.render(
        "mastodon",
        "Nurses cut wait times. #HealthIT",
        link="https://example.org/story",
        campaign_slug="winter",
        hashtags="#HealthIT, Nursing",
    )
    assert parts == [
        "Nurses cut wait times. #HealthIT\n\n"
        "https://example.org/story?utm_source=mastodon&utm_medium=social&utm_campaign=winter"
        "\n\n#Nursing"
    ]


def test_it_uses_the_platform_override_instead_of_the_body() -> None:
    parts = tr.render("x", "The long body", override="Short for X", utm=False)
    assert parts == ["Short for X"]


def test_it_does_not_append_a_link_already_in_the_text_but_tags_it_in_place() -> None:
    body = "Story at https://example.org/story. Thanks!"
    parts = tr.render("bluesky", body, link="https://example.org/story", campaign_slug="c")
    assert parts == [
        "Story at https://example.org/story?utm_source=bluesky&utm_medium=social"
        "&utm_campaign=c. Thanks!"
    ]
    untagged = tr.render("bluesky", body, link="https://example.org/story", utm=False)
    assert untagged == [body]


def test_it_matches_campaign_hashtags_case_insensitively() -> None:
    assert tr.render("x", "We love #healthit", hashtags="#HealthIT") == ["We love #healthit"]


def test_it_renders_a_long_story_as_a_thread_that_fits() -> None:
    parts = tr.render("x", STORY, link="https://example.org/s", campaign_slug="c")
    assert len(parts) > 1
    assert all(tr.fits("x", p) for p in parts)
    assert "utm_source=x" in parts[-1]


def test_it_previews_each_part_with_its_count_and_limit() -> None:
    pv = tr.preview("bluesky", STORY)
    assert pv.is_thread
    assert pv.limit == 300
    assert pv.remaining < 0
    for part in pv.parts:
        assert part.count == tr.length("bluesky", part.text) <= 300
        assert part.fits
        assert part.bytes == len(part.text.encode())
    single = tr.preview("mastodon", "Hi", limit=1000)
    assert single.remaining == 998
    assert not single.is_thread


# --------------------------------------------------------------------------- properties

TRICKY = st.sampled_from(
    [
        "👨‍👩‍👧‍👦",
        "🏳️‍🌈",
        "e\u0301",
        "ก\u0e34\u0e4d",
        "مرحبا",
        "שלום",
        "\u202e",
        "中文",
        "한국어",
        "🇫🇷",
        "\u200d",
        "\ufe0f",
        URL,
        "@alice@example.social",
        "#HealthIT",
        ". ",
        "。",
        "\n\n",
        " ",
    ]
)
ANY_TEXT = st.lists(st.one_of(st.text(max_size=40), TRICKY), max_size=40).map("".join)
WORD = st.text(
    alphabet=st.characters(categories=["L", "N"], max_codepoint=0x2FFF), min_size=1, max_size=12
)
WORDY_TEXT = st.lists(
    st.one_of(WORD, TRICKY.filter(lambda s: not s.isspace() and s not in ("\u200d", "\ufe0f"))),
    min_size=1,
    max_size=150,
).map(" ".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=ANY_TEXT, platform=st.sampled_from(PLATFORMS))
def test_it_never_crashes_counting_random_unicode(text: str, platform: str) -> None:
    n = tr.length(platform, text)
    assert n >= 0
    assert isinstance(tr.fits(platform, text), bool)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=ANY_TEXT,
    platform=st.sampled_from(PLATFORMS),
    limit=st.integers(min_value=30, max_value=320),
)
def test_it_fits_every_part_of_a_split_of_random_unicode(
    text: str, platform: str, limit: int
) -> None:
    parts = tr.split_thread(platform, text, limit)
    assert all(tr.fits(platform, p, limit) for p in parts)
    # cuts without whitespace (CJK, hard splits) gain one space: compare without any
    assert "".join(tr.unsplit(parts).split()) == "".join(text.split())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=WORDY_TEXT,
    platform=st.sampled_from(PLATFORMS),
    # at least room for the 59-character URL plus a marker: a URL longer than a part is
    # the one documented case that is cut (tested above)
    limit=st.integers(min_value=70, max_value=300),
)
def test_it_gives_back_the_text_when_the_parts_of_spaced_text_are_joined(
    text: str, platform: str, limit: int
) -> None:
    parts = tr.split_thread(platform, text, limit)
    assert all(tr.fits(platform, p, limit) for p in parts)
    assert tr.collapse_whitespace(tr.unsplit(parts)) == tr.collapse_whitespace(text)


@settings(max_examples=100, deadline=None)
@given(
    path=st.text(alphabet="abcxyz/-_", max_size=20),
    query=st.lists(
        st.tuples(
            st.sampled_from(["a", "id", "utm_source", "utm_term", "utm_campaign"]),
            st.text(alphabet="abc%20", max_size=5),
        ),
        max_size=4,
    ),
    fragment=st.text(alphabet="abc-", max_size=6),
    platform=st.sampled_from(PLATFORMS),
)
def test_it_tags_any_url_once_keeping_its_other_parameters_and_fragment(
    path: str, query: list[tuple[str, str]], fragment: str, platform: str
) -> None:
    q = "&".join(f"{k}={v}" for k, v in query)
    url = f"https://example.org/{path}" + (f"?{q}" if q else "")
    url += f"#{fragment}" if fragment else ""
    tagged = tr.add_utm(url, platform, "camp")
    assert tr.add_utm(tagged, platform, "camp") == tagged
    assert tagged.count("utm_source=") == 1
    assert tagged.count("utm_campaign=") == 1
    assert f"utm_source={platform}&utm_medium=social&utm_campaign=camp" in tagged
    for k, v in query:
        if k not in tr.UTM_KEYS:
            assert f"{k}={v}" in tagged
    if fragment:
        assert tagged.endswith(f"#{fragment}")
