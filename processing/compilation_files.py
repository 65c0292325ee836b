"""Files that travel with the compilation: chapters, credits, subtitles, manifest."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .compilation_set import SIDECARS
from .config import Config
from .fsutil import atomic_output
from .sidecar import strip_invisible
from .social.post_text import write_post_texts
from .timeline import Compilation, Segment

#: Inserted after ``\\``, ``{`` and ``<`` in SubRip text: invisible, and it breaks
#: every markup sequence players read there (see :func:`srt_literal`).
_WORD_JOINER = "\u2060"


def youtube_chapters(segments: list[Segment]) -> str:
    """``00:00 Title card`` lines for a video description (YouTube's chapter format)."""
    long = segments and segments[-1].start >= 3600
    return "".join(
        f"{_clock(s.start, hours=bool(long))} {strip_invisible(s.label)}\n" for s in segments
    )


def credits(comp: Compilation, cfg: Config) -> str:
    """Names of contributors who consented and gave a name, in order of appearance."""
    seen: list[str] = []
    for seg in comp.segments:
        name = strip_invisible(seg.credit or "")
        if name and name not in seen:
            seen.append(name)
    text = cfg.card_text()
    head = f"{text.title}\n{cfg.campaign.hashtag}\n\n"
    return head + "".join(f"{name}\n" for name in seen)


def _caption_text(seg: Segment) -> str:
    lines = [seg.name or ""]
    if seg.message:
        lines.append(seg.message)
    return "\n".join(strip_invisible(line) for line in lines if line)


def srt_literal(text: str) -> str:
    """Escape contributor text so SubRip players show it exactly as written.

    SubRip has no escape of its own, but players read markup in it: ffmpeg's
    SubRip decoder (mpv, ffplay, burning in with ``subtitles=``) turns
    ``<i>``, ``<font color=…>`` and even ``< b >`` into ASS overrides, drops
    unknown ``<tags>`` and ``{\\…}``/``{Y:…}`` blocks, keeps ``{\\an8}``, and
    libass then hides any ``{…}`` and reads ``\\N``/``\\h`` as escapes. So a
    brace becomes libass's literal ``\\{``/``\\}``, and an invisible word joiner
    after ``\\``, ``{`` and ``<`` stops the decoder and libass from seeing a
    tag or an escape there (measured with ffmpeg 5.1 in
    ``tests/test_small_defects.py``).
    """
    text = text.replace("\\", "\\" + _WORD_JOINER)
    text = text.replace("{", "\\{" + _WORD_JOINER).replace("}", "\\}")
    return text.replace("<", "<" + _WORD_JOINER)


def srt(segments: list[Segment]) -> str:
    """SubRip captions: each clip's name and message for the clip's whole length."""
    blocks = []
    clips = [s for s in segments if s.kind == "clip"]
    for i, seg in enumerate(clips, start=1):
        start, end = _srt_time(seg.start), _srt_time(seg.start + seg.duration)
        blocks.append(f"{i}\n{start} --> {end}\n{srt_literal(_caption_text(seg))}\n")
    return "\n".join(blocks)


def webvtt(segments: list[Segment]) -> str:
    """The same captions as WebVTT (for browsers)."""
    blocks = ["WEBVTT\n"]
    for seg in (s for s in segments if s.kind == "clip"):
        start = _srt_time(seg.start).replace(",", ".")
        end = _srt_time(seg.start + seg.duration).replace(",", ".")
        text = _caption_text(seg).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        text = text.replace("-->", "--&gt;")
        # Browsers show a backslash as it is, but ffmpeg's WebVTT decoder (mpv)
        # passes "\N" and "\h" on to libass as escapes: a word joiner breaks them.
        text = text.replace("\\", "\\" + _WORD_JOINER)
        blocks.append(f"{start} --> {end}\n{text}\n")
    return "\n".join(blocks)


def sidecar_names(comp: Compilation) -> list[str]:
    """File names of the companion files, in the order they are written."""
    return [comp.output.stem + ext for ext in SIDECARS]


def write_sidecars(comp: Compilation, folder: Path, cfg: Config) -> list[Path]:
    """Write every companion file of the compilation into ``folder`` (its build's folder).

    Returns:
        The post texts written (``post.txt`` and ``post.<lang>.txt``), whose
        YouTube chapter list follows the segments (the 16:9 cut goes to YouTube).
    """
    texts = (
        youtube_chapters(comp.segments),
        credits(comp, cfg),
        srt(comp.segments),
        webvtt(comp.segments),
    )
    for name, text in zip(sidecar_names(comp), texts, strict=True):
        with atomic_output(folder / name) as part:
            part.write_text(text, "utf-8")
    chapters = [(s.start, s.label) for s in comp.segments]
    return list(write_post_texts(folder, cfg, chapters, comp.duration).values())


def manifest(comp: Compilation, out: Path, built_from: dict[str, Any]) -> dict[str, object]:
    """The manifest: the set's files, its timeline, and what it was built from.

    Written last, it is the pointer that makes the set current
    (:func:`processing.compilation_set.switch`).
    """
    build = comp.output.parent
    files = [comp.output, *(build / name for name in sidecar_names(comp)), *comp.posts]
    extra = [f for r in comp.renditions for f in r.get("files", [])]
    return {
        "version": 2,
        "build": build.name,
        "output": comp.output.relative_to(out).as_posix(),
        "files": [f.relative_to(out).as_posix() for f in files] + extra,
        "year": comp.year,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "built_from": built_from,
        "duration": round(comp.duration, 3),
        "segments": [
            {
                "kind": s.kind,
                "id": s.id,
                # An upload's file name can identify its author: not for anonymized clips.
                "source": None if s.anonymous else s.source,
                "label": s.label,
                "start": round(s.start, 3),
                "duration": round(s.duration, 3),
                "file": s.path.relative_to(out).as_posix()
                if s.path.is_relative_to(out)
                else s.path.name,
            }
            for s in comp.segments
        ],
        "left_out": comp.left_out,
        "conformed": comp.conformed,
        "checks": comp.checks,
        "renditions": comp.renditions,
    }


def _clock(seconds: float, hours: bool) -> str:
    s = int(seconds)
    return (
        f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if hours else f"{s // 60:02d}:{s % 60:02d}"
    )


def _srt_time(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"
