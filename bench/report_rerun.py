"""Section 4's side-by-side table: re-runs on main, before the slot change and with the fix.

The rows come from one interleaved run (``batch.rerun_ab`` in the results):
each code version re-runs its own copy of the same 50-clip output in turn,
against one Prefect server, so the versions share the machine's load.
"""

from __future__ import annotations

from typing import Any

#: Column order and headings of the versions compared.
VERSIONS = (
    ("pre", "before the slot change (9a32eb7)"),
    ("main", "after it (0d37781)"),
    ("fix", "with reused clips submitted at once"),
)


def lines(ab: dict[str, Any]) -> list[str]:
    """Markdown lines for ``ab`` (``{"note": str, "runs": [row, ...]}``), empty if absent."""
    if not ab:
        return []
    runs = ab["runs"]
    present = [(k, head) for k, head in VERSIONS if any(r["tree"] == k for r in runs)]
    labels = list(dict.fromkeys(r["label"] for r in runs))
    out = [
        "",
        ab["note"],
        "",
        "| run | " + " | ".join(head for _, head in present) + " |",
        "| --- |" + " --- |" * len(present),
    ]
    for label in labels:
        cells = []
        for k, _ in present:
            rows = [r for r in runs if r["tree"] == k and r["label"] == label]
            cells.append(
                ", ".join(
                    f"{r['flow_seconds']:.1f} s ({r['encodes']} enc., load "
                    f"{r['load_average_at_start']:.0f})"
                    for r in rows
                )
                or "—"
            )
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    return out
