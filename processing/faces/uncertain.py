"""Fail safe: where the detector is unsure, hide more, down to the whole frame for a span.

Three kinds of doubt, each found from the looks alone:

* a face that vanishes and comes back: a box at one look with no box near it at
  the next look, but one again within :data:`REAPPEAR_SECONDS`. The detector
  lost it (a turn, a hand, motion blur) and it may have moved anywhere: the
  whole frame is hidden from the last look that saw it to the look that finds it
  again;
* a scene cut: the boxes before it say nothing about the picture after it, so
  the frames around it are hidden whole (and the scan looks again at the cut);
* a weak detection (score under :data:`SURE_SCORE`): its box gets twice the margin.

Whole-clip blur stays the last resort (no face anywhere); these spans only
cover the seconds in doubt, and the report lists them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from ..anonymize import Look

#: A face missed and found again within this long counts as one that vanished.
REAPPEAR_SECONDS = 2.0
#: Detections below this score get a doubled margin.
SURE_SCORE = 0.6
#: Frames hidden whole either side of a scene cut.
CUT_FRAMES = 2
#: Mean absolute difference (0-255) of two consecutive small grey frames that is a cut.
CUT_DIFFERENCE = 40.0


@dataclass(frozen=True)
class Span:
    """Frames ``first..last`` (inclusive) hidden whole, and why."""

    first: int
    last: int
    why: str


def is_cut(before: np.ndarray, after: np.ndarray) -> bool:
    """Whether two consecutive frames (any size, uint8) are either side of a scene cut."""
    a = before[::8, ::8].astype(np.int16)
    b = after[::8, ::8].astype(np.int16)
    return float(np.abs(a - b).mean()) > CUT_DIFFERENCE


def _near(box: tuple[int, int, int, int], others: tuple[tuple[int, int, int, int], ...]) -> bool:
    """Whether any of ``others`` has its centre within ``box`` grown by its own size."""
    x, y, w, h = box
    return any(
        x - w <= ox + ow / 2 <= x + 2 * w and y - h <= oy + oh / 2 <= y + 2 * h
        for ox, oy, ow, oh in others
    )


def vanished(looks: tuple[Look, ...], fps: int) -> list[Span]:
    """Spans from a look that saw a face to the look that sees it again after missing it."""
    reach = round(REAPPEAR_SECONDS * fps)
    spans = []
    for j in range(len(looks) - 1):
        for box in looks[j].boxes:
            if _near(box, looks[j + 1].boxes):
                continue
            for later in looks[j + 2 :]:
                if later.frame - looks[j].frame > reach:
                    break
                if _near(box, later.boxes):
                    spans.append(
                        Span(looks[j].frame, later.frame, "a face was lost and found again")
                    )
                    break
    return spans


def around_cuts(cuts: tuple[int, ...], frames: int) -> list[Span]:
    return [
        Span(max(0, c - CUT_FRAMES), min(frames - 1, c + CUT_FRAMES), "scene cut") for c in cuts
    ]


def whole_frame_spans(
    looks: tuple[Look, ...], cuts: tuple[int, ...], frames: int, fps: int
) -> list[Span]:
    """Every span to hide whole, sorted."""
    return sorted(vanished(looks, fps) + around_cuts(cuts, frames), key=lambda s: s.first)


def margin_for(score: float | None, margin: float) -> float:
    """Twice the margin for a weak detection."""
    return margin * 2 if score is not None and score < SURE_SCORE else margin
