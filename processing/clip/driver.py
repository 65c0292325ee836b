"""The driver: a submission through the stages, the cache in front of them, and the batch.

One bad upload becomes a rejected entry with its reason; it never stops the
batch. A clip already rendered under the same render key is reused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from .. import publish, quality, runner, state
from ..config import Config
from ..consent import apply_consent, withdraw, withdrawn
from ..errors import FFmpegError, Rejection
from ..fsutil import remove_orphaned_parts
from ..report import Entry
from ..reuse import reusable_record
from ..review import clip_pictures
from ..sequences import finish_batch
from ..storage import LocalOutput, Output, Source, StorageError
from . import stages, still
from .files import CLIPS, ClipFiles
from .intake import Submission, identify, render_key
from .retired import unservable

log = logging.getLogger(__name__)


class Progress(Protocol):
    """Receives progress; the CLI draws a bar, Prefect updates an artifact."""

    def clip_started(self, key: str, index: int, total: int) -> None: ...

    def clip_progress(self, fraction: float) -> None: ...

    def clip_finished(self, entry: Entry) -> None: ...


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
    entered around the encode only (the orchestrator's encode slot): fetching,
    probing, the health and loudness pass and the face mask happen before it
    is taken and the checks and measurements after it is given back, so other
    clips do those while this one encodes; reusing a clip waits for nothing.
    """
    files = ClipFiles(out, sub.id, aspects=tuple(cfg.social.renditions))
    rkey = render_key(sub, cfg)
    dest = dest or LocalOutput(out)
    if withdrawn(sub):
        return withdraw(sub, files, dest)
    cached = _reuse(sub, files, rkey, dest, cfg)
    if cached is not None:
        return cached
    if sub.retired:  # no original left to render from
        return unservable(sub, files, dest)
    try:
        entry = _render(sub, source, files, cfg, workdir, on_progress, rkey, slot)
    except BaseException:
        files.discard()  # nothing half done stays listed by no report
        raise
    if entry.output is None:
        files.discard()  # a rejected render, and an older render's files
    else:
        _pictures(files, entry, cfg)
    return entry


def _pictures(files: ClipFiles, entry: Entry, cfg: Config) -> None:
    """The review page's poster and contact sheet of a clip just rendered, made now.

    Here they overlap other clips' encodes; the page after the batch finds them
    made (it makes any missing one itself, and says so when one cannot be made).
    """
    try:
        o = cfg.output
        clip_pictures(files.out, entry, (o.width, o.height), keyframe_seconds=o.keyframe_seconds)
    except FFmpegError as exc:
        files.log_line(f"review pictures not made now (the page tries again): {exc.args[0]}")


def encodes_nothing(sub: Submission, out: Path, cfg: Config) -> bool:
    """Whether ``sub`` will most likely not be encoded: withdrawn, retired, or already rendered.

    A guess for scheduling only, from what is in ``out`` (no fetch, no hash):
    the orchestrator starts these clips at once instead of in its window of
    clips being prepared for an encode. :func:`process_submission` still
    decides; a wrong guess costs an unwindowed clip, never a wrong entry.
    """
    if withdrawn(sub) or sub.retired:
        return True
    record = state.read_record(out, sub.id)
    return record is not None and record.get("render_key") == render_key(sub, cfg)


def _reuse(sub: Submission, files: ClipFiles, rkey: str, dest: Output, cfg: Config) -> Entry | None:
    """The entry of a clip already rendered under ``rkey``, its flags brought up to date."""
    record = reusable_record(files, rkey, dest)
    if record is None:
        return None
    entry = Entry.from_dict(record, source=sub.key, cached=True, **sub.facts())
    if not files.clip.is_file() and _must_measure(entry, cfg):
        dest.fetch([files.clip_key])
    entry, measured_again = quality.refresh(entry, files.clip, cfg, log_file=files.log)
    if measured_again:
        state.write_record(
            files.out, sub.id, {**record, "flags": entry.flags, "quality": entry.quality}
        )
    return apply_consent(entry, cfg)


def _render(
    sub: Submission,
    source: Source,
    files: ClipFiles,
    cfg: Config,
    workdir: Path,
    on_progress: Callable[[float], None] | None,
    rkey: str,
    slot: Callable[[], AbstractContextManager[Any]],
) -> Entry:
    """The stages in order; a rejection or an ffmpeg failure becomes the entry's reason.

    Only the encode holds ``slot``; ``times`` records when each part began and ended.
    """
    log_file = files.fresh_log()
    started = time.monotonic()
    exif: list[tuple[str, str]] = []
    times = {"started": time.time()}
    try:
        with source.local_copy(sub.upload, workdir) as path, contextlib.ExitStack() as stack:
            if sub.photo:  # the photo becomes the clip every stage reads
                clip = still.as_clip(path, sub.sidecar, cfg, workdir, log_file)
                path, exif = stack.enter_context(clip)
            seen = stages.inspect(path, sub, cfg, log_file)
            for _ in range(2):  # again only when the encode's decode contradicts the probe
                planned = stages.plan(path, sub, seen, cfg, workdir, stack, log_file)
                with _held(slot, times):
                    rendered = stages.render(path, files, planned, seen, cfg, on_progress)
                seen = rendered.again or seen
                if rendered.again is None:
                    break
        checked = stages.verify(files, planned, seen, cfg)
        still.check_scrubbed(files.clip, checked.info, exif)
        measured = stages.measure(rendered, files, planned, cfg)
    except Rejection as rej:
        files.log_line(f"rejected: {rej.reason}")
        return sub.rejected(rej.code, rej.reason)
    except FFmpegError as exc:
        files.log_line(str(exc))
        failed = Rejection.from_ffmpeg(exc, files.log_key)
        return sub.rejected(failed.code, failed.reason)
    if sub.photo:
        sub = replace(sub, warnings=[*sub.warnings, still.NOTE])
    made = stages.entry(sub, files, rkey, (seen, planned, checked, measured), cfg, started)
    times["finished"] = time.time()
    made = dataclasses.replace(made, stage_times=times)
    state.write_record(files.out, sub.id, made.as_dict())
    return apply_consent(made, cfg)


@contextlib.contextmanager
def _held(
    slot: Callable[[], AbstractContextManager[Any]], times: dict[str, float]
) -> Iterator[None]:
    """``slot`` held around the block; when it was asked for, taken, used and given back.

    ``prepared`` is when the clip was ready to encode (asked for its slot),
    ``slot_taken``/``slot_given`` bound the time it held the slot and
    ``encoded`` is when the encode inside it ended: what the bench adds up
    into slot use, and what tests check the overlap between clips with.
    """
    times["prepared"] = time.time()
    with slot():
        times["slot_taken"] = time.time()
        try:
            yield
        finally:
            times["encoded"] = time.time()
    times["slot_given"] = time.time()


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
    for folder in (out, out / CLIPS):
        if folder.is_dir() and (orphans := remove_orphaned_parts(folder)):
            log.info("removed %d partial file(s) of an interrupted run", len(orphans))
    subs, entries = identify(source, source.list_uploads(), cfg, work)
    for i, sub in enumerate(subs):
        if progress:
            progress.clip_started(sub.key, i, len(subs))
        entry = process_safely(
            sub, source, out, cfg, work, progress.clip_progress if progress else None, dest=dest
        )
        entries.append(entry)
        if progress:
            progress.clip_finished(entry)
    finish_batch(out, source.uri, cfg, entries, dest=dest, source=source)
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
        log.exception("internal error on %s", sub.key)
        entry = sub.rejected(
            "internal_error",
            f"An internal error stopped this clip ({type(exc).__name__}: {exc}); "
            "the rest of the batch went on. Please report it.",
        )
    log.info("%s %s: %s", entry.status, entry.source, entry.reason or entry.output)
    if dest is not None:
        rendered = entry.output is not None
        publish.publish_clip(
            dest,
            ClipFiles(out, sub.id, tuple(cfg.social.renditions)),
            rendered=rendered,
            logs=cfg.storage.publish_logs,
        )
    return entry


def _must_measure(entry: Entry, cfg: Config) -> bool:
    """Whether :func:`quality.refresh` will decode the clip (its measurements are stale)."""
    q = entry.quality
    return not entry.flags or not q or q.get("key") != quality.measure_key(cfg.quality)
