"""Assemble the remembrance compilation by stream copy.

Title card, the accepted clips in order, the call-to-action card: every segment
was encoded with the same settings, so joining them is a copy with ffmpeg's
concat demuxer and costs seconds, not an encode of every clip. A stream-copy
concat of mismatched segments exits 0 and writes a broken file, so every
segment's stream parameters are compared first; a segment that differs is
re-normalized (conformed) once, never glued as it is.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import compilation_set, freshness, runner, state
from .cards import render_card
from .compilation_checks import check_compilation
from .compilation_files import manifest, write_sidecars
from .config import Config
from .conform import conform, recorded_signature, signature, signature_diff
from .errors import ReelError
from .fsutil import atomic_output
from .joining import concat_copy
from .loudness import is_silent
from .normalize import encoder_args
from .renditions import build_renditions
from .report import Entry, Report, read_report
from .timeline import Compilation, Segment, ffmetadata, with_starts

log = logging.getLogger(__name__)


class CompileError(ReelError):
    """The compilation could not be built or failed its checks."""


def select_clips(
    report: Report, cfg: Config, order: list[str] | None = None
) -> tuple[list[Entry], list[dict[str, str]]]:
    """The clip entries to include, in order, and the ones left out with why.

    Args:
        report: ``report.json`` as written by the pipeline.
        order: Approved submission ids in the editors' order; ``None`` for
            submission-time order of every accepted clip.
    """
    entries = report.entries
    accepted = {e.id: e for e in entries if e.status == "accepted" and e.output}
    left_out: list[dict[str, str]] = []
    for e in entries:
        if e.status == "excluded":
            left_out.append({"id": e.id, "reason": e.reason or "excluded"})
    if order is None:
        chosen = sorted(accepted.values(), key=lambda e: (e.submitted_at or "", e.id))
    else:
        chosen = []
        for sid in order:
            if sid in accepted:
                chosen.append(accepted[sid])
            else:
                left_out.append({"id": sid, "reason": "approved by the editors but not accepted"})
        approved = set(order)
        for sid in accepted:
            if sid not in approved:
                left_out.append({"id": sid, "reason": "not approved by the editors"})
    return chosen, left_out


def clip_segment(entry: Entry, out: Path, cfg: Config) -> Segment:
    text = cfg.card_text()
    anonymous = entry.anonymize
    name = None if anonymous else entry.name
    label = name or text.anonymous
    level = None if is_silent(entry.output_i) else float(entry.output_i or 0.0)
    return Segment(
        kind="clip",
        path=out / str(entry.output),
        duration=float(entry.duration or 0.0),
        label=label,
        id=entry.id,
        source=entry.source,
        name=label,
        message=None if anonymous else entry.message,
        credit=name if entry.consent is True else None,
        # Quiet is not silent: only sound under BS.1770's gate is left unmeasured.
        silent=level is None,
        anonymous=anonymous,
        level=level,
    )


def cap_length(
    clips: list[Segment], cards: float, cfg: Config
) -> tuple[list[Segment], list[dict[str, str]]]:
    """Keep clips in order while the total fits ``compilation.max_total_seconds``.

    Args:
        clips: The clip segments in order.
        cards: The title and end cards' combined length (s).
        cfg: Settings (the cap, the crossfade).
    """
    cap = cfg.compilation.max_total_seconds
    if cap <= 0:
        return clips, []
    kept: list[Segment] = []
    left: list[dict[str, str]] = []
    # Each segment after the first overlaps the one before by the crossfade.
    overlap = max(cfg.compilation.crossfade_seconds, 0.0)
    total = cards - overlap
    for seg in clips:
        if not left and total + seg.duration - overlap <= cap + 1e-6:
            kept.append(seg)
            total += seg.duration - overlap
        else:
            left.append({
                "id": seg.id or "",
                "reason": f"over the {cap:.0f} s length cap (compilation.max_total_seconds)",
            })  # fmt: skip
    return kept, left


def compile_remembrance(out: Path, cfg: Config, order: list[str] | None = None) -> Compilation:
    """Build the compilation and its sidecars as a new set, then switch to it.

    The set is written into ``out/compilation/<build-id>/``; the manifest
    (``out/compilation/manifest.json``) is replaced last and names it. Sets
    it supersedes, builds that crashed and their partial files are removed
    after the switch (:mod:`processing.compilation_set`).

    Raises:
        CompileError: Nothing to compile, or the result failed its checks.
    """
    report_path = out / "report.json"
    try:
        report = read_report(out)
    except state.StateError as exc:
        raise CompileError(
            f"no readable {report_path}: run `reel process SOURCE --out {out}` first"
        ) from exc
    chosen, left_out = select_clips(report, cfg, order)
    if not chosen:
        raise CompileError(
            'no accepted clips to compile (check report.json: clips need "consent": true '
            "in their sidecar while compilation.require_consent is on, and editors' approval "
            "when decisions were recorded)"
        )
    compilation_set.prune(out)  # what a killed build left behind
    try:
        with compilation_set.building(out) as build:
            comp = _build(out, build, cfg, chosen, left_out)
            comp.posts = write_sidecars(comp, build, cfg)
            ids = [s.id for s in comp.segments if s.kind == "clip" and s.id]
            data = manifest(comp, out, freshness.built_from(report, ids, out))
            compilation_set.switch(out, data)
    finally:
        compilation_set.prune(out)  # the superseded set, or this build's partial files
    _record_in_report(comp, out)
    return comp


def _build(
    out: Path,
    build: Path,
    cfg: Config,
    chosen: list[Entry],
    left_out: list[dict[str, str]],
) -> Compilation:
    """Cards, segments, the one assembly and its checks, into the folder ``build``."""
    folder = out / compilation_set.FOLDER
    title = render_card("title", cfg, folder / "cards")
    end = render_card("end", cfg, folder / "cards")
    clips = [clip_segment(e, out, cfg) for e in chosen]
    clips, capped = cap_length(clips, title.duration + end.duration, cfg)
    segments = [
        Segment("title", title.path, title.duration, title.chapter, silent=True),
        *clips,
        Segment("end", end.path, end.duration, end.chapter, silent=True),
    ]
    recorded = {out / str(e.output): e.streams for e in chosen}
    # Re-normalized copies show the clip's pixels: they live and die with the set.
    segments, conformed = _conform_all(segments, cfg, build / "conformed", recorded)
    year = cfg.compilation.resolved_year()
    dst = build / f"remembrance-{year}.mp4"
    crossfade = max(cfg.compilation.crossfade_seconds, 0.0)
    timed = with_starts(segments, crossfade)
    comp = Compilation(dst, year, timed, left_out + capped, conformed, crossfade=crossfade)
    with atomic_output(dst) as part:
        if crossfade > 0:
            _crossfade(comp.segments, part, cfg)
        else:
            concat_copy(comp.segments, part, cfg)
        comp.checks = check_compilation(part, comp, cfg)
    comp.renditions = build_renditions(out, build, cfg, comp)
    return comp


def _conform_all(
    segments: list[Segment],
    cfg: Config,
    folder: Path,
    recorded: dict[Path, dict[str, Any] | None],
) -> tuple[list[Segment], list[str]]:
    """Compare every segment with the title card; re-normalize those that differ.

    A clip's signature comes from its entry while the file is unchanged since
    the pipeline checked it (``recorded``); other segments are probed.
    """
    signatures = [recorded_signature(seg.path, recorded.get(seg.path)) for seg in segments]
    reference = signatures[0]
    result, conformed = [], []
    for seg, sig in zip(segments, signatures, strict=True):
        diff = signature_diff(reference, sig)
        if diff:
            log.warning("segment %s differs (%s): re-normalizing", seg.path.name, "; ".join(diff))
            path = conform(seg.path, folder, cfg, seg.duration)
            conformed.append(f"{seg.path.name}: {'; '.join(diff)}")
            diff = signature_diff(reference, signature(path))
            if diff:
                raise CompileError(f"{seg.path.name} still differs after re-normalizing: {diff}")
            seg = Segment(**{**asdict(seg), "path": path})
        result.append(seg)
    return result, conformed


def _crossfade(segments: list[Segment], dst: Path, cfg: Config) -> None:
    """Re-encode the whole sequence once with ``xfade``/``acrossfade`` between segments."""
    d = cfg.compilation.crossfade_seconds
    args: list[str] = []
    for seg in segments:
        args += ["-i", runner.input_path(seg.path)]
    graph, v, a = [], "[0:v]", "[0:a]"
    for i, seg in enumerate(segments[1:], start=1):
        offset = seg.start
        graph.append(f"{v}[{i}:v]xfade=transition=fade:duration={d}:offset={offset:.6f}[v{i}]")
        graph.append(f"{a}[{i}:a]acrossfade=d={d}[a{i}]")
        v, a = f"[v{i}]", f"[a{i}]"
    with tempfile.TemporaryDirectory(prefix="reel-xfade-") as tmp:
        chapters = Path(tmp) / "chapters.ffmeta"
        chapters.write_text(ffmetadata(segments), "utf-8")
        n = len(segments)
        args += ["-i", runner.input_path(chapters), "-filter_complex", ";".join(graph)]
        args += ["-map", v, "-map", a, *encoder_args(cfg, strip_metadata=False)]
        args += ["-map_metadata", str(n), "-map_chapters", str(n)]
        args += ["-f", "mp4", "-y", runner.input_path(dst)]
        total = sum(s.duration for s in segments)
        runner.run(args, timeout=cfg.limits.timeout_for(total))


def _record_in_report(comp: Compilation, out: Path) -> None:
    """Add the compilation's summary to report.json as it is now (not as it was read)."""
    summary = {
        "output": comp.output.relative_to(out).as_posix(),
        "manifest": compilation_set.MANIFEST,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration": round(comp.duration, 3),
        "clips": [s.id for s in comp.segments if s.kind == "clip"],
        "left_out": comp.left_out,
        "conformed": comp.conformed,
        "checks": comp.checks,
        "renditions": comp.renditions,
    }
    state.update_report(out, lambda report: report.__setitem__("compilation", summary))
