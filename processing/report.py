"""``report.json``: one entry per submission, written atomically, read into typed values.

:func:`write_report` writes it whole; :func:`read_report` is how every other
module reads it: a frozen :class:`Report` of frozen :class:`Entry` values,
one error (:class:`~processing.state.StateError`) for a file that cannot be
read, and an entry that is not one (no id, a field of the wrong type) left
out with the reason logged and kept in :attr:`Report.skipped`.
"""

from __future__ import annotations

import logging
import types
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from . import state
from .config import Config

REPORT_VERSION = 1

#: The frame size a report without ``targets.size`` was made for.
DEFAULT_FRAME = (1920, 1080)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    """What happened to one submission.

    Frozen: the stage that builds an entry owns its fields; a later step (quality
    flags, retention) makes a new one with :func:`dataclasses.replace`.
    """

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


@dataclass(frozen=True)
class Report:
    """``report.json`` as the compile and review sides read it."""

    entries: tuple[Entry, ...]
    """Every well-formed submission entry, in the file's order."""
    source: str = ""
    generated_at: str = ""
    frame: tuple[int, int] = DEFAULT_FRAME
    """The clips' frame size (``targets.size``)."""
    skipped: tuple[str, ...] = ()
    """Why each malformed entry was left out (one line each)."""

    def by_id(self) -> dict[str, Entry]:
        return {e.id: e for e in self.entries}


def read_report(out: Path) -> Report:
    """``OUT/report.json`` as a :class:`Report` (the one reader of the file).

    Raises:
        StateError: There is none yet, or it cannot be read as a JSON object.
    """
    data = state.read_report_document(out)
    entries, skipped = [], []
    subs = data.get("submissions")
    for n, raw in enumerate(subs if isinstance(subs, list) else []):
        entry, why = parse_entry(raw)
        if entry is None:
            skipped.append(f"submission {n + 1}: {why}")
            log.warning("%s: left out submission %d: %s", Path(out) / state.REPORT, n + 1, why)
        else:
            entries.append(entry)
    return Report(
        entries=tuple(entries),
        source=str(data.get("source") or ""),
        generated_at=str(data.get("generated_at") or ""),
        frame=_frame(data.get("targets")),
        skipped=tuple(skipped),
    )


def parse_entry(raw: Any) -> tuple[Entry | None, str]:
    """One report entry as an :class:`Entry`, or None and why it is not one.

    Unknown keys are ignored (a newer writer); ``source`` and ``status``
    default to ``""`` when absent (hand-written reports); a field of the
    wrong type makes the whole entry malformed, never half-read.
    """
    if not isinstance(raw, Mapping):
        return None, f"not a JSON object ({type(raw).__name__})"
    sid = raw.get("id")
    if not isinstance(sid, str) or not sid:
        return None, "no id"
    hints = _hints()
    for name, value in raw.items():
        if name in hints and not _fits(value, hints[name]):
            return None, f"{sid}: {name} is not {_shown(hints[name])}"
    known = {k: v for k, v in raw.items() if k in hints}
    return Entry(**({"source": "", "status": ""} | known)), ""


@cache
def _hints() -> dict[str, Any]:
    hints = get_type_hints(Entry)
    return {f.name: hints[f.name] for f in fields(Entry)}


def _fits(value: Any, hint: Any) -> bool:
    """Whether a JSON ``value`` is of the field type ``hint`` (list items too; dicts shallow)."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is Any:
        return True
    if hint is float:  # JSON has no int/float distinction; a bool is not a number here
        return isinstance(value, int | float) and not isinstance(value, bool)
    if origin is list:
        return isinstance(value, list) and all(_fits(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    return isinstance(value, hint)


def _shown(hint: Any) -> str:
    return str(hint).replace("typing.", "")


def _frame(targets: Any) -> tuple[int, int]:
    size = targets.get("size") if isinstance(targets, dict) else None
    try:
        return (int(size[0]), int(size[1])) if size else DEFAULT_FRAME
    except (TypeError, ValueError, IndexError, KeyError):
        return DEFAULT_FRAME


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
