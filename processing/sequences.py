"""The steps that end a command, written once for the CLI and the flows.

* :func:`finish_batch`: after the last clip of ``reel process`` (and the
  process flow): cross-clip flags, the retention sweep of old originals,
  ``report.json``, the review page.
* :func:`compile_campaign`: ``reel compile`` and the compilation flow: fetch,
  settle the order, build, rebuild the page, publish.
* :func:`review_page`: every run that changes the report or the decisions
  ends by rebuilding the page, after withdrawing a compilation it may no
  longer show (:func:`withdraw_stale`).

What is fetched and published, in which order, is :mod:`.publish`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from . import compilation_set, freshness, publish, quality, retention, state
from .assemble import compile_remembrance, select_clips
from .config import Config
from .decisions import compile_order
from .freshness import Staleness
from .report import Entry, read_report, write_report
from .review import PAGE, build_review
from .storage import LocalOutput, Output, Source
from .timeline import Compilation

log = logging.getLogger(__name__)


def finish_batch(
    out: Path,
    source_uri: str,
    cfg: Config,
    entries: list[Entry],
    *,
    dest: Output | None = None,
    source: Source | None = None,
) -> Path:
    """What follows the last clip: cross-clip flags, the retention sweep, report.json, the page.

    For a remote ``dest`` the clips the page shows are fetched first, the page
    links them with presigned URLs, and ``report.json`` is published last.
    With ``source``, originals past ``upload.keep_originals_days`` are deleted
    (:func:`retention.sweep`) and their entries say so.
    """
    # The caller's list is given the finished entries (entries themselves are frozen).
    entries[:] = quality.mark_duplicates(entries, cfg.quality)
    dest = dest or LocalOutput(out)
    publish.stage_for_review(dest, entries)
    if source is not None:
        gone = set(retention.sweep(source, dest, cfg, entries))
        entries[:] = [replace(e, original_deleted=True) if e.id in gone else e for e in entries]
    path = write_report(out, source_uri, cfg, entries)
    review_page(dest)
    publish.publish_results(dest, PAGE)
    return path


def compile_campaign(
    dest: Output,
    cfg: Config,
    *,
    order: list[str] | None = None,
    approve_all: bool = False,
    note: Callable[[str], None] = log.warning,
) -> Compilation:
    """Build the compilation from what ``dest`` holds and publish it with the page and report.

    Args:
        dest: The campaign's output (held under its lock by the caller).
        cfg: The campaign settings.
        order: Submission ids in the editors' order; None for the decisions in
            force (:func:`~processing.decisions.compile_order`).
        approve_all: With no ``order``, also take every accepted clip nobody decided on.
        note: Receives each line the operator must be told about the order.

    Raises:
        CompileError: Nothing to compile, or the result failed its checks.
    """
    publish.stage_report(dest)
    if order is None:
        order, notes = compile_order(dest.root, approve_all=approve_all)
        for line in notes:
            note(line)
    stage_for_compile(dest, cfg, order)
    comp = compile_remembrance(dest.root, cfg, order=order)
    review_page(dest)  # the page previews the new compilation
    publish.publish_compilation(dest, comp, PAGE)
    return comp


def stage_for_compile(dest: Output, cfg: Config, order: list[str] | None) -> None:
    """Fetch what the compilation and the page rebuilt after it need.

    ``report.json`` must be staged (:func:`publish.stage_report`); then every
    rendered clip (the page shows them all) and the audio masters of the clips
    going in. Without a report nothing is fetched: the build says what to run.
    """
    try:
        report = read_report(dest.root)
    except state.StateError:
        return
    chosen, _ = select_clips(report, cfg, order)
    publish.stage_for_review(dest, report.entries)
    publish.stage_masters(dest, [e.id for e in chosen])


def review_page(dest: Output) -> Path:
    """(Re)build the review page; on a remote output its links are presigned URLs.

    A compilation that shows someone it no longer may is withdrawn first
    (:func:`withdraw_stale`), so no page is ever built on top of it.
    """
    withdraw_stale(dest)
    return build_review(dest.root, url_for=dest.url_for if dest.remote else None)


def withdraw_stale(dest: Output) -> Staleness | None:
    """Withdraw the compilation if a clip in it lost consent, turned anonymous or was rejected.

    The manifest goes first (locally and in the store), then the set it pointed
    to. ``reel compile`` builds a new one. A compilation that is merely
    outdated (decisions changed, new clips) stays; the page does not preview it.

    Returns:
        What was found, or None when there is no compilation or no report.
    """
    out = dest.root
    manifest = compilation_set.read_manifest(out)
    try:
        report = read_report(out) if manifest is not None else None
    except state.StateError:
        report = None
    if manifest is None or report is None:
        compilation_set.prune(out)
        return None
    stale = freshness.assess(manifest, report, out)
    if stale.harmful:
        log.warning(
            "withdrew the compilation (run `reel compile` for a new one): %s",
            "; ".join(stale.harmful),
        )
        publish.remove_withdrawn_sets(dest, compilation_set.withdraw(out))
    else:
        compilation_set.prune(out)
    return stale
