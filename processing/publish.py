"""What each stage fetches from an output before it runs and publishes after it.

For a local folder every call here does nothing: the folder is the output. For
a bucket (:class:`~processing.storage.s3.S3Output`) the stages run in a local
staging folder and the order of uploads is the promise readers rely on: a
clip's files go up before its record (``clips/<id>.json``, which tells every
worker the clip is done), the compilation and the review page before
``report.json``. A reader never finds a record or a report that points at a
missing object, and a run stopped half way leaves the previous report in force.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import compilation_set, freshness, state
from .assemble import select_clips
from .config import Config
from .errors import ReelError
from .freshness import Staleness
from .report import Entry
from .review import PAGE, build_review
from .storage import Output
from .timeline import Compilation

REPORT = "report.json"
DECISIONS = "decisions.json"
MANIFEST = compilation_set.MANIFEST
CARDS = "compilation/cards/"

log = logging.getLogger(__name__)


def record_of(sid: str) -> str:
    return f"clips/{sid}.json"


def clip_of(sid: str) -> str:
    return f"clips/{sid}.mp4"


def master_of(sid: str) -> str:
    return f"clips/{sid}.flac"


def log_of(sid: str) -> str:
    return f"logs/{sid}.log"


def publish_clip(dest: Output, entry: Entry, *, logs: bool = False) -> None:
    """Publish one submission's files: clip and master, then its record last.

    Args:
        dest: Where results go.
        entry: The processed submission.
        logs: Also publish its ffmpeg log (``storage.publish_logs``); a log stays
            in the worker's staging folder otherwise.
    """
    log = [log_of(entry.id)] if logs else []
    if entry.output is None:
        # A rejected submission has only its log; a stale local record must not go up.
        dest.publish(log)
        return
    dest.publish([*log, clip_of(entry.id), master_of(entry.id), record_of(entry.id)])


def stage_for_review(dest: Output, entries: Iterable[Entry | dict[str, Any]]) -> None:
    """Fetch what the review page is built from: decisions, the manifest, every rendered clip."""
    dest.fetch([DECISIONS, MANIFEST], mirror=True)
    dest.fetch(_outputs(entries))


def publish_results(dest: Output) -> None:
    """Publish the review page, then ``report.json`` last."""
    dest.publish([PAGE, REPORT])


def stage_report(dest: Output) -> None:
    """Fetch ``report.json`` and ``decisions.json`` as published (the store is the truth)."""
    dest.fetch([REPORT, DECISIONS], mirror=True)


def stage_for_compile(dest: Output, cfg: Config, order: list[str] | None) -> None:
    """Fetch what the compilation and the page rebuilt after it need.

    ``report.json`` first (see :func:`stage_report`), then every rendered clip
    (the page shows them all) and the audio masters of the clips going in.
    """
    report = load_report(dest.root)
    chosen, _ = select_clips(report, cfg, order)
    stage_for_review(dest, report.get("submissions") or [])
    dest.fetch([master_of(str(e["id"])) for e in chosen])


def review_page(dest: Output) -> Path:
    """(Re)build the review page; on a remote output its links are presigned URLs.

    A compilation that shows someone it no longer may is withdrawn first
    (:func:`withdraw_stale`), so no page is ever built on top of it.
    """
    withdraw_stale(dest)
    return build_review(dest.root, url_for=dest.url_for if dest.remote else None)


def withdraw_stale(dest: Output) -> Staleness | None:
    """Withdraw the compilation if a clip in it lost consent, turned anonymous or was rejected.

    Every run that changes the report or the decisions ends by rebuilding the
    page, hence calls this: the manifest goes first (locally and in the store),
    then the set it pointed to. ``reel compile`` builds a new one. A
    compilation that is merely outdated (decisions changed, new clips) stays;
    the page does not preview it.

    Returns:
        What was found, or None when there is no compilation or no report.
    """
    out = dest.root
    manifest = compilation_set.read_manifest(out)
    report = load_report(out)
    if manifest is None or not report:
        compilation_set.prune(out)
        return None
    stale = freshness.assess(manifest, report, out)
    if stale.harmful:
        log.warning(
            "withdrew the compilation (run `reel compile` for a new one): %s",
            "; ".join(stale.harmful),
        )
        removed = compilation_set.withdraw(out)
        if dest.remote:  # with any set a build published but never switched to
            folder = compilation_set.FOLDER + "/"
            removed += [f for f in dest.listing(folder) if f not in removed and CARDS not in f]
        dest.remove(removed)
    else:
        compilation_set.prune(out)
    return stale


def compilation_files(comp: Compilation, out: Path) -> list[str]:
    """The compilation's set as published: its files, then the manifest (the pointer) last."""
    manifest = compilation_set.read_manifest(out)
    if manifest is None or manifest.get("output") != comp.output.relative_to(out).as_posix():
        raise ReelError(f"{out / compilation_set.MANIFEST} does not point at {comp.output.name}")
    return [*compilation_set.set_files(manifest), compilation_set.MANIFEST]


def publish_compilation(dest: Output, comp: Compilation) -> None:
    """Publish the new set, its manifest, the page and ``report.json``; then drop old sets.

    Readers of the store follow the manifest, uploaded after every file it
    names: they see the previous set or this one. Older sets (and those of
    builds that died before their manifest went up) are deleted last.
    """
    files = compilation_files(comp, dest.root)
    dest.publish(files)
    publish_results(dest)
    if dest.remote:
        keep = {*files, *(f for f in dest.listing(CARDS))}
        dest.remove(f for f in dest.listing(compilation_set.FOLDER + "/") if f not in keep)


def load_report(out: Path) -> dict[str, Any]:
    """``out/report.json``, or an empty report when there is none yet (see :mod:`.state`)."""
    return state.read_report(out)


def _outputs(entries: Iterable[Entry | dict[str, Any]]) -> list[str]:
    found = []
    for e in entries:
        output = e.output if isinstance(e, Entry) else e.get("output")
        if isinstance(output, str) and output:
            found.append(output)
    return found
