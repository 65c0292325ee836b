"""Artifacts reviewers see in the Prefect UI: progress, tables, summaries, links."""

from __future__ import annotations

from collections import Counter
from uuid import UUID

from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from processing.report import Entry
from processing.review import PAGE
from processing.storage import Output


class ProgressArtifact:
    """A progress bar in the Prefect UI that moves as clips finish."""

    def __init__(self, total: int, description: str):
        self.total = max(total, 1)
        self.done = 0
        self.id: UUID = create_progress_artifact(  # type: ignore[assignment]
            progress=0.0, key="processing-progress", description=description
        )

    def advance(self) -> None:
        self.done += 1
        update_progress_artifact(self.id, progress=100.0 * self.done / self.total)


def _fmt(value: float | None, unit: str) -> str:
    return f"{value:.1f} {unit}" if value is not None else ""


def submissions_table(entries: list[Entry]) -> None:
    rows = [
        {
            "submission": e.source,
            "id": e.id,
            "status": e.status,
            "reason": e.reason or "",
            "duration": _fmt(e.duration, "s"),
            "loudness": _fmt(e.output_i, "LUFS"),
            "true peak": _fmt(e.output_tp, "dBTP"),
            "name": e.name or "",
        }
        for e in entries
    ]
    create_table_artifact(table=rows, key="submissions", description="Every submission of this run")


def run_summary(entries: list[Entry], dest: Output, source: str) -> None:
    counts = Counter(e.status for e in entries)
    encoded = sum(1 for e in entries if e.output and not e.cached)
    lines = [
        f"# Processing run: {source}",
        "",
        f"- **{counts['accepted']}** accepted, **{counts['excluded']}** rendered but "
        f"excluded (no consent), **{counts['rejected']}** rejected",
        f"- **{encoded}** clips encoded in this run; "
        f"{sum(e.cached for e in entries)} reused from earlier runs",
        f"- Report: `{dest.location('report.json')}`",
        f"- Review page: `{dest.location(PAGE)}`",
    ]
    rejected = [e for e in entries if e.status == "rejected"]
    if rejected:
        lines += ["", "## Rejected", ""]
        lines += [f"- `{e.source}`: {e.reason}" for e in rejected]
    create_markdown_artifact(markdown="\n".join(lines), key="run-summary")


def links(dest: Output, compilation: str | None = None) -> None:
    """Links to the review page and the compilation (presigned, expiring, on S3).

    Args:
        dest: The output.
        compilation: The compilation's path relative to the output.
    """
    create_link_artifact(link=dest.url_for(PAGE), link_text="Review page", key="review-page")
    if compilation is not None:
        create_link_artifact(
            link=dest.url_for(compilation),
            link_text=compilation.rsplit("/", 1)[-1],
            key="compilation",
        )
