"""``post.txt``: the text staff paste under a rendition when they post it.

One per language of ``[cards.<lang>]``: the remembrance line, the petition's
call and aim with its link, the donation call with the Network's link, the
hashtag line, and, for the 16:9 cut that goes to YouTube, the chapter list in
YouTube's description format. The links ship as placeholders that staff must
replace before March 29; :func:`placeholder_warnings` names any left.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

from ..config import CardText, Config
from ..fsutil import atomic_output
from ..sidecar import strip_invisible

#: Written into the shipped links; a link still holding it has not been set.
PLACEHOLDER = "SET-BEFORE-MARCH-29"
#: Hosts reserved for examples (RFC 2606): never a real campaign link.
_EXAMPLE_HOSTS = ("example.org", "example.com", "example.net")
#: YouTube makes chapters of a description's timestamps only if the first is 0:00,
#: there are at least three, and each chapter is at least ten seconds long
#: (YouTube Help, "Video chapters"); otherwise it shows none at all.
MIN_CHAPTERS = 3
MIN_CHAPTER_SECONDS = 10.0

Chapter = tuple[float, str]
"""``(start in seconds, title)``."""


def youtube_chapter_lines(chapters: Sequence[Chapter], duration: float | None = None) -> list[str]:
    """``0:00 Title`` lines YouTube reads as chapters, or none if it would not.

    A chapter shorter than :data:`MIN_CHAPTER_SECONDS` (YouTube would drop every
    chapter for it) is joined to the next one, under the next one's title: the
    6 s title card becomes part of the first contributor's chapter, so each
    voice keeps a chapter where it can. A short last chapter (the end card,
    when ``duration`` is known) is joined to the one before.
    """
    items = sorted(chapters)
    last = duration if duration is not None else math.inf
    ends = [start for start, _ in items[1:]] + ([last] if items else [])
    kept: list[Chapter] = []
    pending: float | None = None
    for (start, title), end in zip(items, ends, strict=True):
        begin = start if pending is None else pending
        if end - begin < MIN_CHAPTER_SECONDS:
            pending = begin
            continue
        kept.append((begin, title))
        pending = None
    if pending is not None and not kept and items:
        kept.append((pending, items[-1][1]))
    if len(kept) < MIN_CHAPTERS:
        return []
    kept[0] = (0.0, kept[0][1])
    hours = kept[-1][0] >= 3600
    return [f"{_clock(start, hours)} {strip_invisible(title)}" for start, title in kept]


def _clock(seconds: float, hours: bool) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if hours else f"{s // 60}:{s % 60:02d}"


def post_text(
    text: CardText, hashtag: str, chapters: Sequence[Chapter] = (), duration: float | None = None
) -> str:
    """The post's text in ``text``'s language; chapters only where given (YouTube).

    Args:
        text: ``[cards.<lang>]``.
        hashtag: ``campaign.hashtag``, added when the hashtag line lacks it.
        chapters: ``(start, title)`` of the compilation's segments; empty for
            renditions whose platform has no chapters.
        duration: The video's length, so a too-short last chapter is folded.
    """
    tag = text.hashtag_line if hashtag in text.hashtag_line else f"{text.hashtag_line} {hashtag}"
    blocks = [
        text.remembrance_line,
        f"{text.petition_call}\n{text.petition_link}",
        f"{text.donate_line}\n{text.donate_link}",
        tag,
    ]
    lines = youtube_chapter_lines(chapters, duration)
    if lines:
        blocks.append("\n".join(lines))
    return "\n\n".join(b.strip() for b in blocks if b.strip()) + "\n"


def write_post_texts(
    folder: Path, cfg: Config, chapters: Sequence[Chapter] = (), duration: float | None = None
) -> dict[str, Path]:
    """Write ``post.txt`` (``compilation.language``) and ``post.<lang>.txt`` for every language.

    Each file is written to a temporary name in ``folder`` and moved into place.

    Returns:
        The path written per language (the compilation's language: ``post.txt``).
    """
    written = {}
    for lang, text in sorted(cfg.cards.items()):
        name = "post.txt" if lang == cfg.compilation.language else f"post.{lang}.txt"
        dst = folder / name
        with atomic_output(dst) as part:
            part.write_text(post_text(text, cfg.campaign.hashtag, chapters, duration), "utf-8")
        written[lang] = dst
    return written


def placeholder_warnings(cfg: Config) -> list[str]:
    """One line per card text that still holds a shipped placeholder link."""
    found = []
    for lang, text in sorted(cfg.cards.items()):
        for f in fields(CardText):
            value = getattr(text, f.name)
            if not isinstance(value, str):
                continue
            if PLACEHOLDER in value or any(host in value for host in _EXAMPLE_HOSTS):
                found.append(
                    f"warning: cards.{lang}.{f.name} is still a placeholder ({value}); "
                    "set the campaign's real link before March 29"
                )
    return found
