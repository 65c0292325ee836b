"""Quality flags: what an editor should look at before watching a clip.

Every flag is measured on the *rendered* clip, so every submission is measured
the same way whatever it was uploaded as: :mod:`processing.analysis` decodes
and measures it once, :mod:`processing.fingerprint` compares clips for
duplicates, and this module turns values into flags and keeps them on entries.

The flags, each with its threshold in the ``[quality]`` config section:

==========  ===========================================  ======================
flag        value                                        raised when
==========  ===========================================  ======================
dark        median mean luma of the picture (0–1)        value < ``dark_luma``
blurry      median variance of the Laplacian             value < ``blurry_sharpness``
silent      fraction of the clip below ``silence_db``    value >= ``silent_fraction``
frozen      longest stretch (s) with no visible change   value >= ``frozen_seconds``
black       longest stretch (s) of black picture         value >= ``black_seconds``
no_face     fraction of sampled frames with a face       value < ``face_fraction``
duplicate   share of frames matching another clip        value >= ``duplicate_fraction``
==========  ===========================================  ======================

In ``report.json`` an entry's ``flags`` maps each name to
``{"raised": bool, "value": float, "threshold": float}`` (``duplicate`` adds
``"of": [ids]``); :func:`raised` lists the raised names. The entry's
``quality`` keeps what re-evaluating needs without decoding again: the
perceptual fingerprint, the analysed region and a key of the settings that
change measured values.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .analysis import (
    ANALYSIS_WIDTH,
    CAPTION_BOTTOM,
    CAPTION_TOP,
    MEASURE_VERSION,
    MIN_SPAN,
    SAMPLE_FPS,
    Measurements,
    analysis_region,
    as_json,
    face_region,
    measure,
    measure_frames,
    sample_frames,
    sharpness,
    silence_filter,
    silent_share,
)
from .config import Config, Quality
from .errors import FFmpegError
from .fingerprint import duplicates, phash
from .fitting import fit
from .taps import Taps

if TYPE_CHECKING:
    from .report import Entry

__all__ = [
    "ANALYSIS_WIDTH",
    "CAPTION_BOTTOM",
    "CAPTION_TOP",
    "RULES",
    "SAMPLE_FPS",
    "Measurements",
    "Rule",
    "analysis_region",
    "as_json",
    "assess",
    "duplicates",
    "face_region",
    "flags",
    "mark_duplicates",
    "measure",
    "measure_clip",
    "measure_key",
    "measure_taps",
    "phash",
    "raised",
    "record",
    "reevaluate",
    "refresh",
    "sample_frames",
    "sharpness",
    "silence_filter",
    "silent_share",
]  # fmt: skip

log = logging.getLogger(__name__)

#: Settings whose change alters measured values (the rest are compared afterwards).
_MEASURE_SETTINGS = ("silence_db", "freeze_noise", "black_luma", "black_pixels")


@dataclass(frozen=True)
class Rule:
    """How one flag's value is compared with its threshold."""

    label: str
    """Short text for the review page."""
    threshold: str
    """Field of :class:`~processing.config.Quality`."""
    below: bool
    """Raised when the value is below the threshold (else when at or above it)."""
    unit: str = ""
    """``"%"``: the value is a share shown as a percentage; ``"s"``: seconds."""
    measure: str = ""
    """What the value is, for the review page."""


RULES: dict[str, Rule] = {
    "dark": Rule("Too dark", "dark_luma", True, "%", "mean brightness"),
    "blurry": Rule("Blurry", "blurry_sharpness", True, "", "sharpness"),
    "silent": Rule("Mostly silent", "silent_fraction", False, "%", "of the time silent"),
    "frozen": Rule("Frozen video", "frozen_seconds", False, "s", "longest still stretch"),
    "black": Rule("Long black stretch", "black_seconds", False, "s", "longest black stretch"),
    "no_face": Rule("No face found", "face_fraction", True, "%", "of frames with a face"),
    "duplicate": Rule("Probable duplicate", "duplicate_fraction", False, "%", "of frames match"),
}


def measure_key(q: Quality) -> str:
    """Changes when a setting that alters measured values (not only thresholds) changes."""
    relevant = {"v": MEASURE_VERSION, **{k: getattr(q, k) for k in _MEASURE_SETTINGS}}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:12]


def flags(m: Measurements | dict[str, float], q: Quality) -> dict[str, dict[str, Any]]:
    """Compare measured values with the thresholds in ``q``."""
    values = m.values() if isinstance(m, Measurements) else m
    return {name: _flag(name, value, q) for name, value in values.items()}


def reevaluate(current: dict[str, dict[str, Any]], q: Quality) -> dict[str, dict[str, Any]]:
    """``current`` flags compared again with ``q``'s thresholds (no decoding)."""
    out = {}
    for name, f in current.items():
        if name in RULES and isinstance(f, dict) and isinstance(f.get("value"), int | float):
            out[name] = {**f, **_flag(name, float(f["value"]), q)}
    return out


def raised(entry_flags: dict[str, dict[str, Any]] | None) -> list[str]:
    """Names of the raised flags, in :data:`RULES` order."""
    fl = entry_flags or {}
    return [name for name in RULES if (fl.get(name) or {}).get("raised")]


def _flag(name: str, value: float, q: Quality) -> dict[str, Any]:
    rule = RULES[name]
    threshold = float(getattr(q, rule.threshold))
    hit = value < threshold if rule.below else value >= threshold
    return {"raised": bool(hit), "value": value, "threshold": threshold}


def measure_clip(
    clip: Path,
    cfg: Config,
    *,
    content: tuple[int, int] | None,
    duration: float,
    log_file: Path | None = None,
) -> Measurements:
    """:func:`measure` a clip rendered with ``cfg`` (its frame size and time limits)."""
    return measure(
        clip,
        cfg.quality,
        frame=(cfg.output.width, cfg.output.height),
        content=content,
        duration=duration,
        timeout=cfg.limits.timeout_for(duration),
        log_file=log_file,
    )


def measure_taps(
    taps: Taps,
    stderr: str,
    cfg: Config,
    *,
    content: tuple[int, int] | None,
    duration: float,
) -> Measurements:
    """:func:`measure` a clip from what its encode tapped (no decode), ``stderr`` its log.

    Raises:
        FFmpegError: The encode tapped no frame.
    """
    return measure_frames(
        taps.read_frames(),
        lambda: stderr,
        cfg.quality,
        frame=(cfg.output.width, cfg.output.height),
        content=content,
        duration=duration,
        name="the encode's taps",
    )


def assess(
    entry: Entry,
    clip: Path,
    cfg: Config,
    *,
    content: tuple[int, int] | None,
    duration: float,
    log_file: Path | None = None,
) -> Entry:
    """``entry`` with the flags and fingerprint of ``clip`` measured.

    A clip that cannot be measured keeps no flags and gets a warning; quality
    flags never reject a clip.
    """
    started = time.monotonic()
    try:
        m = measure_clip(clip, cfg, content=content, duration=duration, log_file=log_file)
    except FFmpegError as exc:
        log.warning("quality flags for %s could not be measured: %s", clip.name, exc)
        warning = f"quality flags could not be measured ({exc.args[0][:200]})"
        return replace(entry, warnings=[*entry.warnings, warning], flags={}, quality=None)
    return record(entry, m, cfg, content=content, seconds=time.monotonic() - started)


def record(
    entry: Entry,
    m: Measurements,
    cfg: Config,
    *,
    content: tuple[int, int] | None,
    seconds: float,
) -> Entry:
    """``entry`` with the flags and fingerprint of ``m`` (measured in ``seconds``)."""
    q = cfg.quality
    found = flags(m, q)
    warnings = list(entry.warnings)
    if entry.anonymize:
        # Blurred faces are meant not to be found; finding one is the alarm.
        found.pop("no_face", None)
        if m.face > 0:
            warnings.append(
                f"the face detector still finds a face in {m.face:.0%} of sampled frames of "
                "this anonymized clip: check it frame by frame before approving"
            )
    thin = min(content) * ANALYSIS_WIDTH / cfg.output.width if content else MIN_SPAN
    if thin < MIN_SPAN:
        warnings.append(
            f"quality flags are unreliable: the picture is only {min(content or (0,))} px "
            "across in the frame (extreme aspect ratio), so they were measured partly on "
            "the blurred fill around it"
        )
    kept = {
        "key": measure_key(q),
        "content": list(content) if content else None,
        "fingerprint": [f"{h:016x}" for h in m.fingerprint],
        "seconds": round(seconds, 3),
    }
    return replace(entry, flags=found, warnings=warnings, quality=kept)


def refresh(
    entry: Entry, clip: Path, cfg: Config, *, log_file: Path | None = None
) -> tuple[Entry, bool]:
    """A cached entry with its flags brought up to date with ``cfg``.

    Thresholds are compared again; values are measured again only when the
    record has none or a measuring setting changed. Returns the new entry and
    whether the clip was measured again (so the record should be rewritten).
    """
    q = cfg.quality
    stale = not entry.flags or not entry.quality or entry.quality.get("key") != measure_key(q)
    if not stale and entry.flags is not None:
        return replace(entry, flags=reevaluate(entry.flags, q)), False
    content = None
    if entry.quality and entry.quality.get("content"):
        w, h = entry.quality["content"]
        content = (int(w), int(h))
    else:
        content = _content_from_input(entry.input, cfg)
    duration = entry.duration or 0.0
    measured = assess(entry, clip, cfg, content=content, duration=duration, log_file=log_file)
    return measured, True


def mark_duplicates(entries: Iterable[Entry], q: Quality) -> list[Entry]:
    """``entries`` with the batch-wide ``duplicate`` flag on every accepted, measured one."""
    entries = list(entries)
    measured = [e for e in entries if e.quality and e.flags is not None]
    prints = {e.id: [int(h, 16) for h in e.quality.get("fingerprint", [])] for e in measured}  # type: ignore[union-attr]
    found = duplicates(prints, q)
    marked = []
    for e in entries:
        if e.quality and e.flags is not None:
            share, of = found.get(e.id, (0.0, []))
            flag = {**_flag("duplicate", share, q), "of": of}
            e = replace(e, flags={**e.flags, "duplicate": flag})
        marked.append(e)
    return marked


def _content_from_input(summary: dict[str, Any] | None, cfg: Config) -> tuple[int, int] | None:
    """The picture's size in the frame, from an entry's input summary (old records)."""
    v = (summary or {}).get("video") or {}
    try:
        w, h = int(v["width"]), int(v["height"])
        sar = Fraction(str(v.get("sar") or "1"))
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    w = round(w * sar) if sar > 0 else w
    if int(v.get("rotation") or 0) in (90, 270):
        w, h = h, w
    box = (cfg.output.width, cfg.output.height)
    size = fit((w, h), box)
    return None if size == box else size
