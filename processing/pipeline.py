"""The per-submission pipeline: identify → health-check → plan → encode → verify.

Each stage takes the previous stage's immutable value. One bad upload becomes
a rejected entry with its reason; it never stops the batch.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Protocol

from . import publish, quality, runner, state
from .anonymize import face_mask
from .captions import CaptionSpec, shorten
from .config import Config
from .consent import apply_consent, withdraw, withdrawn
from .errors import FFmpegError, FFmpegTimeout, Rejection
from .faces.check import check_hidden
from .fsutil import remove_orphaned_parts, sha256_file
from .health import audio_prefilters, check
from .loudness import SimulateFn, plan_gain
from .normalize import encode, master_path, plan_render
from .probe import probe
from .report import Entry, write_report
from .reuse import reusable_record
from .storage import LocalOutput, Output, Source, StorageError, display_key
from .submissions import Copy, Submission, identify, merge, submission_id
from .verify import conformance_problems, scrub_check

log = logging.getLogger(__name__)

ANONYMOUS = "Anonymous"

__all__ = [
    "ANONYMOUS", "Copy", "Progress", "Submission", "caption_spec", "finish_batch", "identify",
    "merge", "process_batch", "process_safely", "process_submission", "published_key",
    "render_key", "submission_id",
]  # fmt: skip


class Progress(Protocol):
    """Receives progress; the CLI draws a bar, Prefect updates an artifact."""

    def clip_started(self, key: str, index: int, total: int) -> None: ...

    def clip_progress(self, fraction: float) -> None: ...

    def clip_finished(self, entry: Entry) -> None: ...


def render_key(sub: Submission, cfg: Config) -> str:
    """What the rendered clip depends on: content, caption inputs and settings."""
    parts = {
        "id": sub.id,
        "settings": cfg.render_fingerprint(),
        "name": sub.sidecar.name,
        "anonymize": sub.sidecar.anonymize,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def caption_spec(sub: Submission, cfg: Config) -> CaptionSpec:
    c = cfg.captions
    name = sub.sidecar.name
    if sub.sidecar.anonymize:
        name = ANONYMOUS
    return CaptionSpec(
        hashtag=cfg.campaign.hashtag if c.show_hashtag else None,
        name=shorten(name, c.max_name_chars) if (name and c.show_name) else None,
        font=c.font,
    )


def process_submission(
    sub: Submission,
    source: Source,
    out: Path,
    cfg: Config,
    workdir: Path,
    on_progress: Callable[[float], None] | None = None,
    *,
    dest: Output | None = None,
    slot: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext,
) -> Entry:
    """Render one submission into ``out/clips/<id>.mp4``, or reject it with a reason.

    A clip already rendered under the same :func:`render_key` is reused, here
    or, for a remote ``dest``, wherever it was published from (its record is
    fetched; the clip itself only if it must be measured again). ``slot`` is
    entered around the render only (the orchestrator's encode slot): reusing
    a clip waits for nothing.
    """
    key = display_key(sub.upload.key)
    clip = out / "clips" / f"{sub.id}.mp4"
    rkey = render_key(sub, cfg)
    dest = dest or LocalOutput(out)
    if withdrawn(sub):
        return withdraw(sub, out, dest, key)
    cached = reusable_record(out, clip, rkey, dest, sub.id)
    if cached is not None:
        entry = Entry.from_record(cached, sub, key)
        entry.cached = True
        if not clip.is_file() and _must_measure(entry, cfg):
            dest.fetch([publish.clip_of(sub.id)])
        if quality.refresh(entry, clip, cfg, log_file=out / "logs" / f"{sub.id}.log"):
            state.write_record(
                out, sub.id, {**cached, "flags": entry.flags, "quality": entry.quality}
            )
        return apply_consent(entry, cfg)
    with slot():
        try:
            entry = _render(sub, source, out, cfg, workdir, on_progress, rkey)
        except BaseException:
            _discard(clip)
            raise
    if entry.output is None:
        _discard(clip)
    return entry


def _discard(clip: Path) -> None:
    """Remove what a failed or interrupted render leaves (and an older render's files).

    The report calls the submission rejected (or the run stops): a clip, master
    or record left in ``clips/`` would be an orphan that nothing lists.
    """
    for path in (clip, master_path(clip), clip.with_suffix(".json")):
        path.unlink(missing_ok=True)


def published_key(sub: Submission, cfg: Config) -> str:
    """What a submission's entry depends on beyond its pixels: every copy's request and the rules.

    The sidecar in force and each copy's (consent, anonymity, name, message,
    language), ``require_consent`` and every other setting: a cached result
    keyed on it is never reused after any of them changes.
    """
    parts = {
        "render": render_key(sub, cfg),
        "sidecar": sub.sidecar.as_dict(),
        "copies": [c.as_dict() for c in sub.copies],
        "warnings": sub.warnings,
        "config": asdict(cfg) | {"source_file": None},
    }
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _render(
    sub: Submission,
    source: Source,
    out: Path,
    cfg: Config,
    workdir: Path,
    on_progress: Callable[[float], None] | None,
    rkey: str,
) -> Entry:
    """The health check, the one encode, the output checks and the quality flags."""
    key = display_key(sub.upload.key)
    clip = out / "clips" / f"{sub.id}.mp4"
    log_file = out / "logs" / f"{sub.id}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.write_text("", "utf-8")
    started = time.monotonic()
    try:
        anon = sub.sidecar.anonymize
        voice = cfg.anonymize.voice_pitch if anon and cfg.anonymize.voice else None
        faces = None
        with source.local_copy(sub.upload, workdir) as path, contextlib.ExitStack() as stack:
            health = check(path, cfg, log_file, voice_pitch=voice)
            gain = None
            if health.loudness is not None:
                simulate = SimulateFn(
                    path,
                    audio_prefilters(cfg.output.sample_rate, voice),
                    cfg.output.sample_rate,
                    health.use_duration,
                    cfg.limits.timeout_for(health.use_duration),
                    log_file,
                )
                gain = plan_gain(health.loudness, cfg.loudness, simulate)
            plan = plan_render(health, gain, caption_spec(sub, cfg), cfg)
            if anon:
                video = health.info.video
                assert video is not None  # health.check refuses a clip without video
                faces = stack.enter_context(
                    face_mask(path, video, plan.frames, cfg, workdir, log_file=log_file)
                )
                plan = replace(plan, face_mask=faces.path, voice_pitch=voice)
            encode(
                path,
                clip,
                plan,
                health,
                cfg,
                progress=_scaled(on_progress, plan.duration),
                log_file=log_file,
            )
        result = probe(clip, log_file=log_file)
        problems = conformance_problems(result, cfg, plan.duration)
        problems += scrub_check(clip, result, health.info.tags)
        if problems:
            clip.unlink(missing_ok=True)
            master_path(clip).unlink(missing_ok=True)
            raise Rejection(
                "output_check_failed", "The rendered clip failed its checks: " + "; ".join(problems)
            )
        # A second detector, not the mask's, looks at the published picture (issue 13).
        hidden = None
        if anon:
            out_size = (cfg.output.width, cfg.output.height)
            hidden = check_hidden(
                clip, out_size, timeout=cfg.limits.timeout_for(plan.duration), log_file=log_file
            )
        if hidden and not hidden.passed:
            clip.unlink(missing_ok=True)
            master_path(clip).unlink(missing_ok=True)
            raise Rejection("face_visible", hidden.reason())
        clip_stat = clip.stat()
        # Quality flags and the output's loudness: one decode of the finished clip.
        content = plan.fg_size if plan.background else None
        measuring = time.monotonic()
        measured = quality.measure_clip(
            clip, cfg, content=content, duration=plan.duration, log_file=log_file
        )
        measure_seconds = time.monotonic() - measuring
        loud = measured.loudness
        if loud is None:  # pragma: no cover - ebur128 always prints its summary
            raise RuntimeError(f"ebur128 printed no summary for {clip.name}")
    except Rejection as rej:
        _log_line(log_file, f"rejected: {rej.reason}")
        return Entry.rejected(sub.id, key, rej.code, rej.reason, sub.upload, sub=sub)
    except FFmpegTimeout as exc:
        _log_line(log_file, str(exc))
        return Entry.rejected(
            sub.id,
            key,
            "timeout",
            f"Processing took too long and was stopped: {exc.args[0]}.",
            sub.upload,
            sub=sub,
        )
    except FFmpegError as exc:
        _log_line(log_file, str(exc))
        last = exc.stderr_tail.strip().splitlines()[-1:] or ["no output"]
        return Entry.rejected(
            sub.id,
            key,
            "encode_failed",
            f"ffmpeg could not process this file ({last[0][:200]}); full log: logs/{sub.id}.log",
            sub.upload,
            sub=sub,
        )

    warnings = list(sub.warnings)
    if health.trimmed:
        warnings.append(
            f"trimmed from {health.info.duration:.1f} s to "
            f"{health.use_duration:.1f} s (limits.max_duration)"
        )
    if gain is not None and gain.note:
        warnings.append(gain.note)
    if health.info.audio is None:
        warnings.append("no audio track: silence added")
    if faces is not None and faces.whole_frame:
        warnings.append("anonymized: no face was found, so the whole picture is blurred")
    if faces is not None and faces.doubt_note():
        warnings.append(faces.doubt_note())
    checked = hidden.summary() if hidden else {}
    entry = Entry(
        id=sub.id,
        source=key,
        status="accepted",
        output=str(clip.relative_to(out)),
        duration=round(plan.duration, 3),
        input=health.info.summary(),
        input_i=health.loudness.integrated if health.loudness else None,
        input_tp=health.loudness.true_peak if health.loudness else None,
        gain_db=gain.gain_db if gain else None,
        limited=bool(gain and gain.limit),
        output_i=loud.integrated,
        output_tp=loud.true_peak,
        scrub_check="passed",
        anonymization=(
            {**faces.summary(), **checked, "voice_disguised": voice is not None} if faces else None
        ),
        render_key=rkey,
        streams={
            "signature": result.signature,
            "file": [clip_stat.st_size, clip_stat.st_mtime_ns],
            "sha256": sha256_file(clip),
        },
        seconds=round(time.monotonic() - started, 2),
        rendered_by=f"{socket.gethostname()}:{os.getpid()}",
    )
    entry.attach(sub)
    entry.warnings = warnings
    quality.record(entry, measured, cfg, content=content, seconds=measure_seconds)
    state.write_record(out, sub.id, entry.as_dict())
    return apply_consent(entry, cfg)


def process_batch(
    source: Source,
    out: Path | Output,
    cfg: Config,
    *,
    workdir: Path | None = None,
    progress: Progress | None = None,
) -> list[Entry]:
    """Process every upload in ``source`` into ``out`` and write ``out/report.json``.

    ``out`` is a folder, or an :class:`Output` (a bucket is staged in its local
    ``root`` and every finished clip is published as it is done).
    """
    runner.require_tools()
    dest = out if isinstance(out, Output) else LocalOutput(out)
    with state.campaign_lock(dest, "reel process", cfg):
        return _process_locked(source, dest, cfg, workdir, progress)


def _process_locked(
    source: Source, dest: Output, cfg: Config, workdir: Path | None, progress: Progress | None
) -> list[Entry]:
    out = dest.root
    out.mkdir(parents=True, exist_ok=True)
    work = workdir or out / ".work"
    work.mkdir(parents=True, exist_ok=True)
    for folder in (out, out / "clips"):
        if folder.is_dir() and (orphans := remove_orphaned_parts(folder)):
            log.info("removed %d partial file(s) of an interrupted run", len(orphans))
    subs, entries = identify(source, source.list_uploads(), cfg, work)
    for i, sub in enumerate(subs):
        if progress:
            progress.clip_started(display_key(sub.upload.key), i, len(subs))
        entry = process_safely(
            sub, source, out, cfg, work, progress.clip_progress if progress else None, dest=dest
        )
        entries.append(entry)
        if progress:
            progress.clip_finished(entry)
    finish_batch(out, source.uri, cfg, entries, dest=dest)
    return entries


def process_safely(
    sub: Submission,
    source: Source,
    out: Path,
    cfg: Config,
    workdir: Path,
    on_progress: Callable[[float], None] | None = None,
    *,
    dest: Output | None = None,
    slot: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext,
) -> Entry:
    """:func:`process_submission`, turning an unexpected bug into a rejection, then publishing.

    Storage errors (``OSError``, :class:`StorageError`) still propagate: the
    transient ones are retried by the orchestrator, the others stop the run
    with a message saying what to fix. The clip is published to ``dest`` (a
    no-op for a folder) before the entry is returned.
    """
    try:
        entry = process_submission(
            sub, source, out, cfg, workdir, on_progress, dest=dest, slot=slot
        )
    except (OSError, StorageError):
        raise
    except Exception as exc:  # a bug met on one upload must not cost the others
        log.exception("internal error on %s", display_key(sub.upload.key))
        entry = Entry.rejected(
            sub.id,
            display_key(sub.upload.key),
            "internal_error",
            f"An internal error stopped this clip ({type(exc).__name__}: {exc}); "
            "the rest of the batch went on. Please report it.",
            sub.upload,
            sub=sub,
        )
    log.info("%s %s: %s", entry.status, entry.source, entry.reason or entry.output)
    if dest is not None:
        publish.publish_clip(dest, entry, logs=cfg.storage.publish_logs)
    return entry


def finish_batch(
    out: Path, source_uri: str, cfg: Config, entries: list[Entry], *, dest: Output | None = None
) -> Path:
    """What follows the last clip: cross-clip flags, report.json, the review page.

    For a remote ``dest`` the clips the page shows are fetched first, the page
    links them with presigned URLs, and ``report.json`` is published last.
    """
    quality.mark_duplicates(entries, cfg.quality)
    dest = dest or LocalOutput(out)
    publish.stage_for_review(dest, entries)
    path = write_report(out, source_uri, cfg, entries)
    publish.review_page(dest)
    publish.publish_results(dest)
    return path


def _must_measure(entry: Entry, cfg: Config) -> bool:
    """Whether :func:`quality.refresh` will decode the clip (its measurements are stale)."""
    q = entry.quality
    return not entry.flags or not q or q.get("key") != quality.measure_key(cfg.quality)


def _scaled(cb: Callable[[float], None] | None, total: float) -> Callable[[float], None] | None:
    if cb is None:
        return None
    return lambda seconds: cb(min(1.0, seconds / total) if total > 0 else 1.0)


def _log_line(log_file: Path, text: str) -> None:
    with log_file.open("a", encoding="utf-8", errors="backslashreplace") as fh:
        fh.write(text + "\n")
