"""What each stage fetches from an output before it runs and publishes after it.

For a local folder every call here does nothing: the folder is the output. For
a bucket (:class:`~processing.storage.s3output.S3Output`) the stages run in a local
staging folder and the order of uploads is the promise readers rely on: a
clip's files go up before its record (``clips/<id>.json``, which tells every
worker the clip is done), the compilation and the review page before
``report.json``. A reader never finds a record or a report that points at a
missing object, and a run stopped half way leaves the previous report in force.

Only the order of transfers is decided here; what is built in between (the
review page, the compilation) is :mod:`.sequences`'.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from . import compilation_set
from .clip.files import ClipFiles
from .errors import ReelError
from .report import Entry
from .storage import Output
from .timeline import Compilation

REPORT = "report.json"
DECISIONS = "decisions.json"
MANIFEST = compilation_set.MANIFEST
CARDS = "compilation/cards/"


def publish_clip(dest: Output, files: ClipFiles, *, rendered: bool, logs: bool = False) -> None:
    """Publish one submission's files: clip and master, then its record last.

    Args:
        dest: Where results go.
        files: The submission's files.
        rendered: Whether it was rendered (accepted or excluded); a rejected
            submission has only its log, and a stale local record must not go up.
        logs: Also publish its ffmpeg log (``storage.publish_logs``); a log stays
            in the worker's staging folder otherwise.
    """
    log = [files.log_key] if logs else []
    dest.publish([*log, *files.rendered()] if rendered else log)


def stage_for_review(dest: Output, entries: Iterable[Entry]) -> None:
    """Fetch what the review page is built from: decisions, the manifest, every rendered clip."""
    dest.fetch([DECISIONS, MANIFEST], mirror=True)
    dest.fetch(_outputs(entries))


def stage_masters(dest: Output, ids: Iterable[str]) -> None:
    """Fetch the audio masters of clips going into a compilation (it mixes from them)."""
    dest.fetch([ClipFiles(dest.root, sid).master_key for sid in ids])


def publish_results(dest: Output, page: str) -> None:
    """Publish the review ``page``, then ``report.json`` last."""
    dest.publish([page, REPORT])


def stage_report(dest: Output) -> None:
    """Fetch ``report.json`` and ``decisions.json`` as published (the store is the truth)."""
    dest.fetch([REPORT, DECISIONS], mirror=True)


def compilation_files(comp: Compilation, out: Path) -> list[str]:
    """The compilation's set as published: its files, then the manifest (the pointer) last."""
    manifest = compilation_set.read_manifest(out)
    if manifest is None or manifest.get("output") != comp.output.relative_to(out).as_posix():
        raise ReelError(f"{out / compilation_set.MANIFEST} does not point at {comp.output.name}")
    return [*compilation_set.set_files(manifest), compilation_set.MANIFEST]


def publish_compilation(dest: Output, comp: Compilation, page: str) -> None:
    """Publish the new set, its manifest, the ``page`` and ``report.json``; then drop old sets.

    Readers of the store follow the manifest, uploaded after every file it
    names: they see the previous set or this one. Older sets (and those of
    builds that died before their manifest went up) are deleted last.
    """
    files = compilation_files(comp, dest.root)
    dest.publish(files)
    publish_results(dest, page)
    if dest.remote:
        keep = {*files, *(f for f in dest.listing(CARDS))}
        dest.remove(f for f in dest.listing(compilation_set.FOLDER + "/") if f not in keep)


def remove_withdrawn_sets(dest: Output, removed: list[str]) -> None:
    """Delete a withdrawn compilation's files from the store (with sets never switched to)."""
    if dest.remote:
        folder = compilation_set.FOLDER + "/"
        removed = removed + [f for f in dest.listing(folder) if f not in removed and CARDS not in f]
    dest.remove(removed)


def _outputs(entries: Iterable[Entry]) -> list[str]:
    return [e.output for e in entries if e.output]
