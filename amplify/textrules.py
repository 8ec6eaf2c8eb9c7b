"""Per-platform length rules, thread splitting and UTM tagging. Pure: no I/O, no database.

Counting, as each platform counts:

- ``x``: twitter-text weighted length of the NFC-normalised text (URLs 23, CJK and emoji 2).
- ``bluesky``: grapheme clusters (limit 300) *and* UTF-8 bytes (at most 3,000).
- ``mastodon``: grapheme clusters after every ``http(s)://`` URL is replaced by 23
  characters and every ``@user@domain`` mention by ``@user`` (what Mastodon's
  ``StatusLengthValidator`` does); the limit is the instance's (default 500).
- ``sandbox``: plain characters (code points), limit 500.

Thread splitting (``split_thread``):

- A text that fits is returned as one part (leading/trailing whitespace stripped).
- Otherwise it is cut at sentence ends (``. ! ? …`` followed by whitespace, CJK ``。！？``,
  line breaks) first, then at whitespace between words. Each part gets a marker
  `` i/n`` at its end; the marker counts toward the limit, and when ``n`` gains a digit the
  split is recomputed with the wider marker.
- A URL, mention or hashtag is never cut: they contain no whitespace, and the last-resort
  hard split (for a single token longer than a whole part, e.g. a long run of CJK text
  without spaces) cuts only at grapheme-cluster boundaries outside them.
- The one exception: an entity that by itself is longer than a whole part (in practice a
  URL of more than ~290 characters on Bluesky or ~490 on the sandbox, where URLs count in
  full) is hard-split at grapheme boundaries, because there is nothing else that can be
  published. The link is then broken in the text; the composer preview shows it, and the
  Bluesky connector still attaches the full link as a card from ``OutgoingPost.link``.
- Whitespace: inside a part it is kept as written; the whitespace run at a cut is
  dropped. ``unsplit(parts)`` removes the markers and joins the parts with one space, so
  ``collapse_whitespace(unsplit(parts)) == collapse_whitespace(text)`` whenever every
  cut fell on whitespace; a cut without whitespace (after ``。`` or a hard split) gains
  that one space.
"""

from __future__ import annotations

import bisect
import unicodedata
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

import regex
from twitter_text import parse_tweet

PLATFORM_LIMITS: dict[str, int] = {"x": 280, "bluesky": 300, "mastodon": 500, "sandbox": 500}
# Above this many posts a thread is flagged to the author and the lead (not refused: a lead
# may cap it, see Post.thread_cap). The same ~1,500 characters everywhere — the length of a
# full story, about what readers follow through — which is 5 posts of 280/300 characters on
# X and Bluesky and 3 posts of 500 on Mastodon (and the sandbox, which counts like it).
THREAD_WARN_ABOVE: dict[str, int] = {"x": 5, "bluesky": 5, "mastodon": 3, "sandbox": 3}
BLUESKY_MAX_BYTES = 3000
MASTODON_URL_LENGTH = 23
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign")

_GRAPHEME = regex.compile(r"\X")
# Mastodon's Account::MENTION_RE: @user or @user@domain, not preceded by a word char, = or /.
_MASTODON_MENTION = regex.compile(
    r"(?<![=/\w])@(([a-z0-9_]+(?:[a-z0-9_.-]+[a-z0-9_]+)?)(?:@[\w.-]+\w+)?)",
    regex.IGNORECASE,
)
_MASTODON_URL = regex.compile(r"https?://[^\s<>\"]+", regex.IGNORECASE)
# Entities that must never be cut: URLs (with protocol or www.), mentions, hashtags.
_ENTITY = regex.compile(
    r"(?:https?://|www\.)[^\s]+|(?<![\w@])@[\w.@-]*\w|(?<![\w#&])[#＃][\w\p{M}]+",
    regex.IGNORECASE,
)
# A sentence ends at . ! ? … (plus closing quotes/brackets) before whitespace, after CJK
# sentence punctuation, or at a line break.
_SENTENCE_BREAK = regex.compile(
    r"(?<=[.!?…‽][\"'”’»)\]]*)[^\S\n]+|(?<=[。！？])[^\S\n]*(?=\S)|\s*\n\s*"
)
_WORD_BREAK = regex.compile(r"\s+")
_MARKER = regex.compile(r" ([1-9][0-9]*)/([1-9][0-9]*)\Z")


def _check_platform(platform: str) -> None:
    if platform not in PLATFORM_LIMITS:
        raise ValueError(
            f"unknown platform {platform!r}; choose one of: {', '.join(PLATFORM_LIMITS)}"
        )


def limit_for(platform: str, instance_limit: int | None = None) -> int:
    """The most a post may hold on ``platform``; ``instance_limit`` overrides (Mastodon's
    per-instance limit, or a test's)."""
    _check_platform(platform)
    if instance_limit is not None:
        if instance_limit < 1:
            raise ValueError(f"a post limit must be positive, not {instance_limit}")
        return instance_limit
    return PLATFORM_LIMITS[platform]


def graphemes(text: str) -> int:
    """User-perceived characters (extended grapheme clusters)."""
    return len(_GRAPHEME.findall(text))


def utf8_bytes(text: str) -> int:
    return len(text.encode("utf-8", errors="surrogatepass"))


def _mastodon_countable(text: str) -> str:
    placeholder = "x" * MASTODON_URL_LENGTH
    text = _MASTODON_URL.sub(placeholder, text)
    return _MASTODON_MENTION.sub(lambda m: "@" + m.group(2), text)


def length(platform: str, text: str, *, limit: int | None = None) -> int:
    """``text``'s length as ``platform`` counts it (see the module docstring).

    ``limit`` does not change the count (no platform's counting depends on it); it is
    accepted so callers can pass the same keywords to ``length`` and ``fits``.
    """
    _check_platform(platform)
    if platform == "x":
        return int(parse_tweet(unicodedata.normalize("NFC", text)).weightedLength)
    if platform == "bluesky":
        return graphemes(text)
    if platform == "mastodon":
        return graphemes(_mastodon_countable(text))
    return len(text)


def fits(platform: str, text: str, limit: int | None = None) -> bool:
    """Whether ``text`` can be published as one post (Bluesky: graphemes and bytes)."""
    lim = limit_for(platform, limit)
    if length(platform, text) > lim:
        return False
    return not (platform == "bluesky" and utf8_bytes(text) > BLUESKY_MAX_BYTES)


# --------------------------------------------------------------------------- splitting


def collapse_whitespace(text: str) -> str:
    return " ".join(text.split())


def strip_marker(part: str) -> str:
    """A thread part without its trailing `` i/n`` marker."""
    return _MARKER.sub("", part)


def unsplit(parts: list[str]) -> str:
    """The parts of a thread joined back into one text: markers removed, one space between."""
    if len(parts) <= 1:
        return parts[0] if parts else ""
    return " ".join(strip_marker(p) for p in parts)


@dataclass
class _Packer:
    platform: str
    limit: int
    reserve: str  # widest marker the parts may carry, e.g. " 99/99"

    def __post_init__(self) -> None:
        self.parts: list[str] = []
        self.current = ""
        self.pending_sep = ""

    def ok(self, text: str) -> bool:
        return fits(self.platform, text + self.reserve, self.limit)

    def candidate(self, piece: str) -> str:
        return self.current + self.pending_sep + piece if self.current else piece

    def close(self) -> None:
        if self.current:
            self.parts.append(self.current)
        self.current = ""
        self.pending_sep = ""

    def add_sentence(self, sentence: str, sep_after: str) -> None:
        if self.ok(self.candidate(sentence)):
            self.current = self.candidate(sentence)
        elif self.ok(sentence):  # starts a part of its own rather than being cut
            self.close()
            self.current = sentence
        else:
            words = _split_keep(_WORD_BREAK, sentence)
            for word, sep in words:
                self.add_word(word, sep)
        self.pending_sep = sep_after if self.current else ""

    def add_word(self, word: str, sep_after: str) -> None:
        if self.ok(self.candidate(word)):
            self.current = self.candidate(word)
        elif self.ok(word):
            self.close()
            self.current = word
        else:
            self.hard_split(word)
        self.pending_sep = sep_after if self.current else ""

    def hard_split(self, token: str) -> None:
        """Last resort: cut a token longer than a part at grapheme boundaries, outside
        URLs, mentions and hashtags unless one of them alone is longer than a part."""
        bounds = [m.end() for m in _GRAPHEME.finditer(token)]
        protected = [(m.start(), m.end()) for m in _ENTITY.finditer(token)]
        safe = [b for b in bounds if not any(s < b < e for s, e in protected)]
        start = 0
        while start < len(token):
            # Every grapheme counts at least 1 outside entities, so no piece can hold more
            # than `limit` of them: search only that far (extended to the end of an entity
            # that straddles the edge). Keeps long CJK runs fast on X's slow counter.
            edge_index = bisect.bisect_left(bounds, start) + self.limit
            edge = bounds[min(edge_index, len(bounds) - 1)]
            edge = max([edge] + [e for s, e in protected if s < edge < e])
            rest_safe = [b for b in safe if start < b <= edge]
            cut = self._longest(token, start, rest_safe)
            if cut is None and self.current:
                self.close()  # try again in a fresh part
                continue
            if cut is None:  # an entity longer than a whole part: cut it anyway
                cut = self._longest(token, start, [b for b in bounds if start < b <= edge])
            if cut is None:
                raise ValueError(
                    f"the limit {self.limit} is too small to hold even one character "
                    "and the thread marker"
                )
            self.current = self.candidate(token[start:cut])
            self.pending_sep = ""
            start = cut
            if start < len(token):
                self.close()

    def _longest(self, token: str, start: int, cuts: list[int]) -> int | None:
        """The furthest cut in ``cuts`` whose piece still fits (binary search)."""
        lo, hi, best = 0, len(cuts) - 1, None
        while lo <= hi:
            mid = (lo + hi) // 2
            if self.ok(self.candidate(token[start : cuts[mid]])):
                best = cuts[mid]
                lo = mid + 1
            else:
                hi = mid - 1
        return best


def _split_keep(pattern: regex.Pattern[str], text: str) -> list[tuple[str, str]]:
    """``text`` cut at ``pattern``: (piece, separator after it) pairs, empty pieces dropped."""
    out: list[tuple[str, str]] = []
    pos = 0
    for m in pattern.finditer(text):
        if m.end() == m.start() and m.start() in (0, len(text)):
            continue
        piece = text[pos : m.start()]
        if piece:
            out.append((piece, m.group(0)))
        elif out:  # separator right after a separator: merge them
            out[-1] = (out[-1][0], out[-1][1] + m.group(0))
        pos = m.end()
    if text[pos:]:
        out.append((text[pos:], ""))
    return out


def split_thread(platform: str, text: str, limit: int | None = None) -> list[str]:
    """``text`` as one post, or as a thread of parts each ending in `` i/n`` that fit."""
    lim = limit_for(platform, limit)
    body = text.strip()
    if fits(platform, body, lim):
        return [body]
    sentences = _split_keep(_SENTENCE_BREAK, body)
    digits = 1
    while True:
        widest = "9" * digits
        packer = _Packer(platform, lim, f" {widest}/{widest}")
        if not packer.ok(""):
            raise ValueError(f"the limit {lim} is too small to hold the thread marker")
        for sentence, sep in sentences:
            packer.add_sentence(sentence, sep)
        packer.close()
        parts = [p.strip() for p in packer.parts]
        parts = [p for p in parts if p]
        if len(parts) < 10**digits:
            break
        digits += 1  # n gained a digit: every marker is wider, pack again
    n = len(parts)
    return [f"{p} {i}/{n}" for i, p in enumerate(parts, start=1)]


# --------------------------------------------------------------------------- links and tags


def add_utm(url: str, platform: str, campaign_slug: str | None) -> str:
    """``url`` tagged ``utm_source=<platform>&utm_medium=social&utm_campaign=<slug>``.

    Other query parameters are kept exactly as written (order and encoding), as is the
    fragment. Any ``utm_source``/``utm_medium``/``utm_campaign`` already present is replaced
    rather than duplicated (a link copied from a newsletter must not credit the newsletter);
    other ``utm_*`` keys (``utm_content``, ``utm_term``) are kept. Without a slug no
    ``utm_campaign`` is added. Tagging twice gives the same URL.
    """
    parts = urlsplit(url.strip())
    kept = [
        pair
        for pair in parts.query.split("&")
        if pair and unquote_plus(pair.split("=", 1)[0]).lower() not in UTM_KEYS
    ]
    ours = [f"utm_source={quote(platform, safe='')}", "utm_medium=social"]
    if campaign_slug:
        ours.append(f"utm_campaign={quote(campaign_slug, safe='')}")
    return urlunsplit(parts._replace(query="&".join(kept + ours)))


def parse_hashtags(hashtags: str) -> list[str]:
    """``"#HealthIT, nursing  #Care"`` → ``["#HealthIT", "#nursing", "#Care"]``."""
    tags = []
    for raw in regex.split(r"[\s,;]+", hashtags or ""):
        word = raw.lstrip("#＃")
        if word and f"#{word}" not in tags:
            tags.append(f"#{word}")
    return tags


def _contains_tag(text: str, tag: str) -> bool:
    pattern = r"(?<![\w#])[#＃]" + regex.escape(tag[1:]) + r"(?![\w\p{M}])"
    return regex.search(pattern, text, regex.IGNORECASE) is not None


def _link_pattern(link: str) -> regex.Pattern[str]:
    return regex.compile(regex.escape(link) + r"(?=$|[\s)\]}>,.!?;:'\"])")


def compose_text(
    platform: str,
    body: str,
    *,
    link: str | None = None,
    campaign_slug: str | None = None,
    utm: bool = True,
    hashtags: str = "",
    override: str | None = None,
) -> str:
    """The full text for ``platform`` before splitting: the platform's override (if it has
    text) replaces the body; the link (UTM-tagged unless ``utm`` is False) goes on its own
    line unless the text already has it — an untagged copy in the text is tagged in
    place; campaign hashtags not already in the text go last."""
    _check_platform(platform)
    text = (override if override and override.strip() else body).strip()
    if link and link.strip():
        raw = link.strip()
        tagged = add_utm(raw, platform, campaign_slug) if utm else raw
        if _link_pattern(tagged).search(text):
            pass
        elif _link_pattern(raw).search(text):
            text = _link_pattern(raw).sub(lambda _m: tagged, text, count=1)
        else:
            text = f"{text}\n\n{tagged}" if text else tagged
    missing = [t for t in parse_hashtags(hashtags) if not _contains_tag(text, t)]
    if missing:
        tags = " ".join(missing)
        text = f"{text}\n\n{tags}" if text else tags
    return text


class CampaignLike(Protocol):
    utm_campaign: str
    utm_enabled: bool
    hashtags: str


def campaign_inputs(campaign: CampaignLike | None) -> dict[str, Any]:
    """A campaign's part of ``render``/``preview`` arguments: the one reading of it that the
    publisher and the dashboard's previews share, so a preview shows what is sent."""
    if campaign is None:
        return {"campaign_slug": None, "utm": False, "hashtags": ""}
    return {
        "campaign_slug": campaign.utm_campaign or None,
        "utm": bool(campaign.utm_enabled),
        "hashtags": campaign.hashtags or "",
    }


def render(
    platform: str,
    body: str,
    *,
    link: str | None = None,
    campaign_slug: str | None = None,
    utm: bool = True,
    hashtags: str = "",
    override: str | None = None,
    limit: int | None = None,
) -> list[str]:
    """The parts to publish on ``platform``: ``compose_text`` then ``split_thread``."""
    text = compose_text(
        platform,
        body,
        link=link,
        campaign_slug=campaign_slug,
        utm=utm,
        hashtags=hashtags,
        override=override,
    )
    return split_thread(platform, text, limit)


# --------------------------------------------------------------------------- preview


@dataclass(frozen=True)
class PreviewPart:
    text: str
    count: int  # as the platform counts it
    limit: int
    fits: bool
    bytes: int | None = None  # Bluesky only: UTF-8 bytes (at most 3,000)


@dataclass(frozen=True)
class Preview:
    platform: str
    limit: int
    full_count: int  # the whole text before splitting
    parts: tuple[PreviewPart, ...]

    @property
    def is_thread(self) -> bool:
        return len(self.parts) > 1

    @property
    def remaining(self) -> int:
        """What is left in the single post (negative: over, it will be a thread)."""
        return self.limit - self.full_count


def preview(
    platform: str,
    body: str,
    *,
    link: str | None = None,
    campaign_slug: str | None = None,
    utm: bool = True,
    hashtags: str = "",
    override: str | None = None,
    limit: int | None = None,
) -> Preview:
    """What ``render`` would publish, with each part's count for the composer's counters."""
    lim = limit_for(platform, limit)
    text = compose_text(
        platform,
        body,
        link=link,
        campaign_slug=campaign_slug,
        utm=utm,
        hashtags=hashtags,
        override=override,
    )
    parts = split_thread(platform, text, lim)
    return Preview(
        platform=platform,
        limit=lim,
        full_count=length(platform, text),
        parts=tuple(
            PreviewPart(
                text=p,
                count=length(platform, p),
                limit=lim,
                fits=fits(platform, p, lim),
                bytes=utf8_bytes(p) if platform == "bluesky" else None,
            )
            for p in parts
        ),
    )


def thread_warn_above(platform: str) -> int | None:
    """How many posts a thread on ``platform`` may have before it is flagged (None: unknown)."""
    return THREAD_WARN_ABOVE.get(platform)


def long_thread(platform: str, parts: int) -> bool:
    """True when a thread of ``parts`` posts is longer than is sensible on ``platform``."""
    above = thread_warn_above(platform)
    return above is not None and parts > above
