"""Social renditions of the compilation: 9:16 and 1:1 cuts, in parts, each with its post text.

For each aspect of ``social.renditions`` the clips' own renditions
(:meth:`ClipFiles.rendition`, encoded with the clip's 16:9 picture in one pass)
are joined by stream copy with that frame's cards, as the 16:9 cut is
(:func:`processing.joining.concat_copy`): no clip is decoded again. The
soundtrack is rebuilt from the clips' FLAC masters and raised to the social
loudness target (:meth:`Social.target_for`). A rendition longer than
``social.max_part_seconds`` is split (:func:`processing.social.parts.plan_parts`):
each part opens with a short "Part 2/5" card and closes with the call to action.
The whole compilation fits one part: then it has no title card at all (the
apps show the first seconds in the feed: they are a contributor's voice).

Each rendition or part is a folder of the build, ``<stem>-9x16[-part2of5]/``,
holding the video and ``post.txt`` (one per language, without chapters: Reels,
TikTok, Shorts, VK Clips and Telegram show none). A rendition that cannot be
made (a clip without its rendition, or encoded with other settings) is left
out with the reason; the 16:9 cut is built regardless.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import compilation_set
from .cards import render_card
from .clip.files import ClipFiles, aspect_slug
from .compilation_checks import CheckFailed, check_compilation
from .config import Config
from .conform import signature, signature_diff
from .fsutil import atomic_output
from .joining import concat_copy
from .social.layout import layout_for
from .social.parts import Part, plan_parts
from .social.post_text import write_post_texts
from .timeline import Compilation, Segment, with_starts

log = logging.getLogger(__name__)

#: How much longer than ``social.max_part_seconds`` a part may measure (frame rounding).
PART_TOLERANCE = 0.05


def build_renditions(
    out: Path, build: Path, cfg: Config, comp: Compilation
) -> list[dict[str, Any]]:
    """Every rendition of ``comp`` in ``social.renditions``, into ``build``; their summaries.

    Returns:
        One summary per part made (aspect, part, output, files, duration,
        clips, checks), or per rendition left out (aspect, skipped: why).

    Raises:
        CheckFailed: A part was made but failed its checks.
    """
    clips = [s for s in comp.segments if s.kind == "clip" and s.id]
    summaries: list[dict[str, Any]] = []
    for aspect in cfg.social.renditions if clips else ():
        files = [ClipFiles(out, str(s.id)).rendition(aspect) for s in clips]
        missing = sorted({str(s.id) for s, f in zip(clips, files, strict=True) if not f.is_file()})
        if missing:
            why = (
                f"no {aspect} rendition of {', '.join(missing)}: "
                "run `reel process` again with this aspect in social.renditions"
            )
            log.warning("the %s rendition was not made: %s", aspect, why)
            summaries.append({"aspect": aspect, "skipped": why})
            continue
        own = [replace(s, path=f) for s, f in zip(clips, files, strict=True)]
        summaries += _build_aspect(out, build, cfg, comp, aspect, own)
    return summaries


def _build_aspect(
    out: Path, build: Path, cfg: Config, comp: Compilation, aspect: str, clips: list[Segment]
) -> list[dict[str, Any]]:
    """The parts of one aspect: cards, stream-copy joins, checks, post texts."""
    so, fps = cfg.social, cfg.output.fps
    cards = out / compilation_set.FOLDER / "cards"
    end = render_card("end", cfg, cards, aspect)
    title_seconds = max(1, round(so.part_title_seconds * fps)) / fps if so.part_title_seconds else 0
    parts = plan_parts(
        [s.duration for s in clips], so.max_part_seconds, title_seconds, end.duration
    )
    reference = signature(end.path)
    for seg in clips:
        diff = signature_diff(reference, signature(seg.path))
        if diff:
            why = f"{seg.path.name} differs from the {aspect} cards ({'; '.join(diff)})"
            log.warning("the %s rendition was not made: %s", aspect, why)
            return [{"aspect": aspect, "skipped": why}]
    made = []
    for part in parts:
        segments = [clips[i] for i in part.clips]
        if part.count > 1 and title_seconds:
            label = part.label(cfg.card_text())
            card = render_card("part", cfg, cards, aspect, label)
            segments.insert(0, Segment("title", card.path, card.duration, label, silent=True))
        segments.append(Segment("end", end.path, end.duration, end.chapter, silent=True))
        made.append(_join_part(out, build, cfg, comp.year, aspect, part, segments))
    return made


def _join_part(
    out: Path,
    build: Path,
    cfg: Config,
    year: int,
    aspect: str,
    part: Part,
    segments: list[Segment],
) -> dict[str, Any]:
    """Join one part into its folder of ``build``, check it, write its post texts."""
    stem = f"remembrance-{year}-{aspect_slug(aspect)}"
    if part.count > 1:
        stem += f"-part{part.n}of{part.count}"
    folder = build / stem
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / f"{stem}.mp4"
    timed = with_starts(segments, 0.0)
    rendition = Compilation(dst, year, timed)
    target = cfg.social.target_for(aspect)
    # The clip's master is shared by all aspects; a conformed clip has none in reach.
    masters = [
        ClipFiles(out, str(s.id)).master if s.kind == "clip" and s.id else None for s in timed
    ]
    with atomic_output(dst) as tmp:
        concat_copy(timed, tmp, cfg, masters=masters, gain_db=target - cfg.loudness.target_i)
        checks = check_compilation(
            tmp, rendition, cfg, target_i=target, frame=layout_for(aspect).safe.frame
        )
        limit = cfg.social.max_part_seconds
        if limit and not part.over and checks["duration"] > limit + PART_TOLERANCE:
            raise CheckFailed(
                f"{stem} is {checks['duration']:.2f} s, over social.max_part_seconds ({limit:.0f})"
            )
    posts = write_post_texts(folder, cfg)
    files = [dst, *posts.values()]
    return {
        "aspect": aspect,
        "part": part.n,
        "parts": part.count,
        "output": dst.relative_to(out).as_posix(),
        "post": posts[cfg.compilation.language].relative_to(out).as_posix(),
        "files": [f.relative_to(out).as_posix() for f in files],
        "duration": round(rendition.duration, 3),
        "over_limit": part.over,
        "clips": [s.id for s in timed if s.kind == "clip"],
        "target_i": target,
        "checks": checks,
    }
