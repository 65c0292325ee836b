"""Artifacts staff see in the Prefect UI: progress, tables, summaries, links.

Every artifact is attached to the flow run that makes it and to every run above
it: staff open the run they launched (``remembrance-campaign``), not its
subflows, and find the progress, the submissions and the links there.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any
from urllib.parse import quote
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import ArtifactCreate, ArtifactUpdate
from prefect.context import FlowRunContext

from processing.approval import ANONYMOUS
from processing.config import Config
from processing.report import Entry
from processing.storage import Output
from processing.upload import store as upload_store

#: Ancestors followed at most (a campaign run is two deep; this only stops a loop).
_MAX_DEPTH = 8


def run_ids() -> list[UUID]:
    """The current flow run, then the run above it, up to the one staff launched."""
    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None:
        return []
    ids = [ctx.flow_run.id]
    parent = ctx.flow_run.parent_task_run_id
    with get_client(sync_client=True) as client:
        while parent is not None and len(ids) < _MAX_DEPTH:
            run_id = client.read_task_run(parent).flow_run_id
            if run_id is None or run_id in ids:
                break
            ids.append(run_id)
            parent = client.read_flow_run(run_id).parent_task_run_id
    return ids


def _publish(key: str, kind: str, data: Any, description: str | None = None) -> list[UUID]:
    """Create the artifact on this run and each run above it; return their ids."""
    made = []
    with get_client(sync_client=True) as client:
        for run_id in run_ids():
            artifact = ArtifactCreate(
                key=key, type=kind, data=data, description=description, flow_run_id=run_id
            )
            made.append(client.create_artifact(artifact).id)
    return made


def create_markdown_artifact(markdown: str, key: str, description: str | None = None) -> None:
    """A markdown artifact on this run and the runs above it (Prefect's, mirrored)."""
    _publish(key, "markdown", markdown, description)


class ProgressArtifact:
    """A progress bar in the Prefect UI that moves as clips finish (on every run above too)."""

    def __init__(self, total: int, description: str):
        self.total = max(total, 1)
        self.done = 0
        self.ids = _publish("processing-progress", "progress", 0.0, description)

    def advance(self) -> None:
        self.done += 1
        update = ArtifactUpdate(data=100.0 * self.done / self.total)
        with get_client(sync_client=True) as client:
            for artifact_id in self.ids:
                client.update_artifact(artifact_id, update)


def _fmt(value: float | None, unit: str) -> str:
    return f"{value:.1f} {unit}" if value is not None else ""


def _flags(e: Entry) -> str:
    return ", ".join(sorted(e.flags or {}))


def submissions_table(entries: list[Entry]) -> None:
    """Every submission with its status, full reason and quality flags.

    An anonymous contributor's name and upload name (which may name them) are
    not shown: the Prefect UI is seen by everyone with access to the server.
    """
    rows = [
        {
            "submission": "(anonymous upload)" if e.anonymize else e.source,
            "id": e.id,
            "status": e.status,
            "reason": e.reason or "",
            "flags": _flags(e),
            "duration": _fmt(e.duration, "s"),
            "loudness": _fmt(e.output_i, "LUFS"),
            "true peak": _fmt(e.output_tp, "dBTP"),
            "name": ANONYMOUS if e.anonymize else (e.name or ""),
            "rendered": "reused" if e.cached else _fmt(e.seconds, "s"),
        }
        for e in entries
    ]
    _publish("submissions", "table", json.dumps(rows), "Every submission of this run")


def web_link(dest: Output, rel: str, base_url: str) -> str | None:
    """An http(s) link to ``rel`` a browser opens from the Prefect UI, or None.

    A bucket's presigned URL is one already; a folder's ``file://`` URL is not
    (browsers refuse it from an http page), so a folder needs ``base_url``, the
    address where ``OUT`` is served.
    """
    url = dest.url_for(rel)
    if url.startswith(("https://", "http://")):
        return url
    if base_url:
        return f"{base_url.rstrip('/')}/{quote(rel)}"
    return None


def review_app_line(cfg: Config) -> str:
    """Markdown saying where editors review: the review app's address, or how to set it."""
    url = cfg.links.review_app_url
    if url:
        return f"[Open the review app]({url})"
    return (
        "No review app address is configured: set `[links] review_app_url` to where "
        "`reel review serve` is reachable (see README)."
    )


def run_summary(entries: list[Entry], dest: Output, source: str, cfg: Config) -> None:
    counts = Counter(e.status for e in entries)
    encoded = sum(1 for e in entries if e.output and not e.cached)
    flagged = [e for e in entries if e.flags]
    lines = [
        f"# Processing run: {source}",
        "",
        f"- **{counts['accepted']}** accepted, **{counts['excluded']}** rendered but "
        f"excluded (no consent), **{counts['rejected']}** rejected",
        f"- **{encoded}** clips encoded in this run; "
        f"{sum(e.cached for e in entries)} reused from earlier runs",
        f"- **{len(flagged)}** flagged for editors to check",
        f"- Report: `{dest.location('report.json')}`",
        f"- Review: {review_app_line(cfg)}",
    ]
    arrivals = upload_store.arrivals(source, cfg)
    if arrivals:
        lines.append(f"- Upload page: {arrivals}")
    rejected = [e for e in entries if e.status == "rejected"]
    if rejected:
        lines += ["", "## Rejected", ""]
        lines += [
            f"- `{'(anonymous upload)' if e.anonymize else e.source}` ({e.id}): {e.reason}"
            for e in rejected
        ]
    _publish("run-summary", "markdown", "\n".join(lines))


def links(dest: Output, compilation: str | None = None, cfg: Config | None = None) -> None:
    """Links to the review app and the compilation, http(s) only (presigned on S3).

    Where no address is configured the artifact says so rather than giving a
    ``file://`` link a browser refuses.

    Args:
        dest: The output.
        compilation: The compilation's path relative to the output.
        cfg: The settings (``[links]``); None links only what is http already.
    """
    review = cfg.links.review_app_url if cfg else ""
    if review:
        _publish("review-app", "markdown", f"[Review app]({review})")
    else:
        note = review_app_line(cfg) if cfg else "No review app address is configured."
        _publish("review-app", "markdown", note)
    if compilation is None:
        return
    name = compilation.rsplit("/", 1)[-1]
    url = web_link(dest, compilation, cfg.links.files_url if cfg else "")
    text = (
        f"[{name}]({url})"
        if url
        else f"`{dest.location(compilation)}` (set `[links] files_url` to link it over http)"
    )
    _publish("compilation", "markdown", text)
