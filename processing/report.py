"""``report.json``: one entry per submission, written atomically."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import state
from .config import Config

REPORT_VERSION = 1


@dataclass
class Entry:
    """What happened to one submission."""

    id: str
    source: str
    status: str
    """``accepted``, ``rejected`` or ``excluded``."""
    reason: str | None = None
    code: str | None = None
    """Stable identifier of the reason (``empty``, ``corrupt``, ``too_short`` …)."""
    output: str | None = None
    """Clip path relative to the output folder (accepted only)."""
    duration: float | None = None
    input: dict[str, Any] | None = None
    input_i: float | None = None
    input_tp: float | None = None
    gain_db: float | None = None
    limited: bool = False
    output_i: float | None = None
    output_tp: float | None = None
    scrub_check: str | None = None
    submitted_at: str | None = None
    name: str | None = None
    consent: bool | None = None
    language: str | None = None
    message: str | None = None
    anonymize: bool = False
    anonymization: dict[str, Any] | None = None
    """What the face detection found and hid (anonymized clips only)."""
    duplicates: list[str] = field(default_factory=list)
    copies: list[dict[str, Any]] = field(default_factory=list)
    """Every upload of these bytes with what its own sidecar asked (``source``, ``name``,
    ``consent``, ``anonymize`` …); the fields above are the merge, most protective first."""
    warnings: list[str] = field(default_factory=list)
    render_key: str | None = None
    seconds: float | None = None
    rendered_by: str | None = None
    """``host:pid`` of the process that rendered the clip."""
    rendered_at: str | None = None
    """When the clip was rendered (UTC, ISO 8601): originals are kept for
    ``upload.keep_originals_days`` after it (:mod:`processing.retention`)."""
    original_deleted: bool = False
    """The upload's original was deleted (retention): the clip can only be reused, never
    rendered again."""
    cached: bool = False
    flags: dict[str, dict[str, Any]] | None = None
    """Quality flags of the rendered clip (see ``processing.quality``): flag name →
    ``{"raised": bool, "value": float, "threshold": float}``; None when not measured."""
    quality: dict[str, Any] | None = None
    """What re-flagging needs without decoding: fingerprint, analysed region, settings key."""
    streams: dict[str, Any] | None = None
    """The rendered clip's stream signature as its output check probed it, with the
    file's ``[size, mtime_ns]`` then: the compilation trusts it while they still match."""
    renditions: dict[str, dict[str, Any]] | None = None
    """The clip's social renditions (``social.renditions``): aspect → ``key`` (relative to
    the output), ``frame``, ``file`` ``[size, mtime_ns]``, ``sha256``, stream ``signature``,
    ``layout`` (crop, fill, native), ``why`` and ``max_pan_px`` (1080-wide output pixels)."""
    stage_times: dict[str, float] | None = None
    """When the render's parts ran (Unix time): ``started``, ``prepared`` (ready to
    encode), ``slot_taken``, ``encoded``, ``slot_given``, ``finished``; how busy the
    encode slots were is read from them."""

    @classmethod
    def from_dict(cls, data: dict[str, Any], **changes: Any) -> Entry:
        """The entry a record or a report holds (unknown keys ignored), with ``changes``."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**(known | changes))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def write_report(out: Path, source: str, cfg: Config, entries: list[Entry]) -> Path:
    """Write ``out/report.json`` (atomically) and return its path."""
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.status] = counts.get(e.status, 0) + 1
    report = {
        "version": REPORT_VERSION,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": source,
        "settings": cfg.render_fingerprint(),
        "targets": {
            "integrated_lufs": cfg.loudness.target_i,
            "true_peak_dbtp": cfg.loudness.target_tp,
            "size": [cfg.output.width, cfg.output.height],
            "fps": cfg.output.fps,
        },
        "counts": counts,
        "submissions": [e.as_dict() for e in entries],
    }
    return state.write_report(out, report)
