"""Splitting a social rendition of the compilation into parts the apps accept.

Reels, Shorts and VK Clips cap a video's length, and a long vertical video loses
its viewers, so a compilation longer than ``social.max_part_seconds`` becomes
parts: each opens with a short "Part 2/5" title, holds whole clips in their
order, and closes with the call to action (the end card). Clips are never cut
in the middle: a voice is heard whole or not in that part.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..config import CardText


@dataclass(frozen=True)
class Part:
    """One part: which clips (indices into the compilation's clips), and how long it is."""

    n: int
    """1-based."""
    count: int
    clips: tuple[int, ...]
    seconds: float
    """Title, clips and end card together."""
    over: bool = False
    """A single clip too long for the limit: the part is longer than it (staff decide)."""

    def label(self, text: CardText) -> str:
        """The part's title in ``text``'s language, e.g. ``Part 2/5``."""
        return text.part_label.replace("{n}", str(self.n)).replace("{count}", str(self.count))


def plan_parts(
    clip_seconds: Sequence[float],
    max_seconds: float,
    title_seconds: float,
    end_seconds: float,
) -> list[Part]:
    """The fewest parts, in order, each no longer than ``max_seconds``.

    Args:
        clip_seconds: Length of each clip of the compilation, in order.
        max_seconds: The limit per part, cards included; 0 = one part.
        title_seconds: The part's title card.
        end_seconds: The call to action closing each part.

    Taking clips greedily until the next would not fit gives the fewest parts
    for an order that must be kept (any part boundary moved earlier only adds
    parts). A clip that alone exceeds the room is a part of its own, marked ``over``.
    A compilation that fits whole is one part with no part title (``count == 1``).
    """
    if not max_seconds or sum(clip_seconds) + end_seconds <= max_seconds + 1e-6:
        whole = round(sum(clip_seconds) + end_seconds, 6)
        return [Part(1, 1, tuple(range(len(clip_seconds))), whole)] if clip_seconds else []
    cards = title_seconds + end_seconds
    groups: list[list[int]] = []
    room = max_seconds - cards
    used = room + 1.0
    for i, seconds in enumerate(clip_seconds):
        if not groups or used + seconds > room + 1e-6:
            groups.append([])
            used = 0.0
        groups[-1].append(i)
        used += seconds
    count = len(groups)
    if count == 1:  # one clip too long for a part: no "Part 1/1" title
        cards = end_seconds
    parts = []
    for n, group in enumerate(groups):
        seconds = round(cards + sum(clip_seconds[i] for i in group), 6)
        parts.append(Part(n + 1, count, tuple(group), seconds, seconds > max_seconds + 1e-6))
    return parts
