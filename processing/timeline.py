"""The compilation's timeline: segments in order, with their start times."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Segment:
    """One piece of the compilation, in order."""

    kind: str
    """``title``, ``clip`` or ``end``."""
    path: Path
    duration: float
    label: str
    id: str | None = None
    source: str | None = None
    name: str | None = None
    message: str | None = None
    credit: str | None = None
    """The name to list in the credits (named, consenting contributors only)."""
    silent: bool = False
    """No sound above BS.1770's absolute gate (cards; clips with no audible sound)."""
    anonymous: bool = False
    start: float = 0.0
    level: float | None = None
    """The clip's integrated loudness (LUFS) as the pipeline measured its output."""


@dataclass
class Compilation:
    """What was built and what was left out, as the manifest records it."""

    output: Path
    year: int
    segments: list[Segment]
    left_out: list[dict[str, str]] = field(default_factory=list)
    conformed: list[str] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)
    crossfade: float = 0.0
    """Seconds each pair of neighbouring segments overlaps (``compilation.crossfade_seconds``)."""
    posts: list[Path] = field(default_factory=list)
    """``post.txt`` per language beside the video (with YouTube's chapter list)."""
    renditions: list[dict[str, Any]] = field(default_factory=list)
    """The social renditions and parts made from it (:mod:`processing.renditions`)."""

    @property
    def duration(self) -> float:
        """Length of the joined result: each crossfade overlaps two segments."""
        return timeline_length(self.segments, self.crossfade)


def timeline_length(segments: list[Segment], overlap: float) -> float:
    """Length of ``segments`` played in order, each overlapping the next by ``overlap`` s."""
    return sum(s.duration for s in segments) - max(overlap, 0.0) * max(len(segments) - 1, 0)


def with_starts(segments: list[Segment], overlap: float) -> list[Segment]:
    """``segments`` with their start times, each overlapping the next by ``overlap`` s."""
    timed, t = [], 0.0
    for i, seg in enumerate(segments):
        timed.append(Segment(**{**asdict(seg), "start": round(t, 6)}))
        t += seg.duration - (overlap if i < len(segments) - 1 else 0.0)
    return timed


def ffmetadata(segments: list[Segment]) -> str:
    """Chapters in ffmpeg's FFMETADATA format, one per segment."""
    lines = [";FFMETADATA1"]
    for i, seg in enumerate(segments):
        end = segments[i + 1].start if i + 1 < len(segments) else seg.start + seg.duration
        lines += [
            "[CHAPTER]",
            "TIMEBASE=1/1000",
            f"START={round(seg.start * 1000)}",
            f"END={round(end * 1000)}",
            f"title={_ffmeta_escape(seg.label)}",
        ]
    return "\n".join(lines) + "\n"


def _ffmeta_escape(text: str) -> str:
    for ch in "\\=;#\n":
        text = text.replace(ch, "\\" + ch)
    return text
