"""Quality flags: what an editor should look at before watching a clip.

Every flag is measured on the *rendered* clip, so every submission is measured
the same way whatever it was uploaded as. One ffmpeg run streams small gray
frames (:data:`SAMPLE_FPS` per second, :data:`ANALYSIS_WIDTH` wide) and, in
the same run, passes the sound through ``silencedetect`` and the ``ebur128``
meter (the clip's loudness for the report: no second decode). Pixels are
measured only inside the *analysis region*: the clip's own picture (not the blurred fill beside a
portrait clip) without the caption bands (hashtag top right, name lower third),
so white caption boxes cannot hide a dark, black or frozen picture, and the
same video uploaded twice with different names still hashes alike.

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
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from . import graph, runner
from .config import Config, Quality
from .errors import FFmpegError
from .faces import FaceDetector
from .loudness import Measurement, meter_filter, parse_ebur128

if TYPE_CHECKING:
    from .report import Entry

log = logging.getLogger(__name__)

#: Bump when a measurement changes, so cached values are measured again.
MEASURE_VERSION = "1"
#: Frames analysed per second of clip, and their width (height follows the frame).
SAMPLE_FPS = 2.0
ANALYSIS_WIDTH = 640
#: Rows left out of every measurement, as fractions of the frame height: the
#: hashtag box (top, 60 px margin + 46 px text + box at 1080p) and the name's
#: lower third (110 px margin, 64 px text, possibly wrapped to two lines).
CAPTION_TOP = 0.13
CAPTION_BOTTOM = 0.72
#: Frames searched for a face (evenly spaced), scaled to this height: a face
#: smaller than the detector's 24 px there (13 % of the picture) is not looked for.
FACE_FRAMES = 4
FACE_HEIGHT = 180
#: Fewest rows and columns of the analysed frame measured (see :func:`_span`).
MIN_SPAN = 16
#: Frames hashed for the duplicate fingerprint (evenly spaced, flat frames skipped).
FINGERPRINT_FRAMES = 24
#: Grid of blocks compared for frozen video: the *largest* block change counts,
#: so a talking mouth in one corner is motion even when the rest stands still.
FREEZE_GRID = (6, 8)
#: Largest contrast stretch applied before measuring sharpness.
MAX_STRETCH = 8.0
#: Nominal 8-bit video range of the Y plane the frames carry (BT.709 limited range).
_Y_BLACK, _Y_WHITE = 16.0, 235.0

#: Settings whose change alters measured values (the rest are compared afterwards).
_MEASURE_SETTINGS = ("silence_db", "freeze_noise", "black_luma", "black_pixels")

_SILENCE = re.compile(r"silence_(start|end): (-?[0-9.]+)")


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


@dataclass(frozen=True)
class Measurements:
    """What :func:`measure` found in one rendered clip."""

    luma: float
    sharpness: float
    silent: float
    frozen: float
    black: float
    face: float
    fingerprint: tuple[int, ...]
    """64-bit DCT hashes of evenly spaced, non-flat frames of the analysis region."""
    loudness: Measurement | None = None
    """The clip's integrated loudness and true peak, metered in the same run."""

    def values(self) -> dict[str, float]:
        """Flag name → measured value (all but ``duplicate``, which is batch-wide)."""
        return {
            "dark": self.luma,
            "blurry": self.sharpness,
            "silent": self.silent,
            "frozen": self.frozen,
            "black": self.black,
            "no_face": self.face,
        }


def measure_key(q: Quality) -> str:
    """Changes when a setting that alters measured values (not only thresholds) changes."""
    relevant = {"v": MEASURE_VERSION, **{k: getattr(q, k) for k in _MEASURE_SETTINGS}}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:12]


def analysis_region(
    frame: tuple[int, int], content: tuple[int, int] | None, size: tuple[int, int]
) -> tuple[slice, slice]:
    """Rows and columns of an analysed frame of ``size`` that hold the picture.

    Args:
        frame: The rendered clip's width and height.
        content: Width and height of the clip's own picture, centred in the
            frame (``None``: it fills the frame).
        size: Width and height of the analysed (downscaled) frame.
    """
    fw, fh = frame
    cw, ch = content or frame
    sx, sy = size[0] / fw, size[1] / fh
    x0, x1 = (fw - cw) / 2 * sx, (fw + cw) / 2 * sx
    y0 = max((fh - ch) / 2, CAPTION_TOP * fh) * sy
    y1 = min((fh + ch) / 2, CAPTION_BOTTOM * fh) * sy
    # A pixel or two in from each edge: the scaler blends the edge with the blurred fill.
    return _span(y0, y1, size[1], inset=2), _span(x0, x1, size[0], inset=2)


def face_region(
    frame: tuple[int, int], content: tuple[int, int] | None, size: tuple[int, int]
) -> tuple[slice, slice]:
    """Like :func:`analysis_region` but all rows of the picture: faces sit high."""
    fw, fh = frame
    cw, ch = content or frame
    sx, sy = size[0] / fw, size[1] / fh
    return (
        _span((fh - ch) / 2 * sy, (fh + ch) / 2 * sy, size[1]),
        _span((fw - cw) / 2 * sx, (fw + cw) / 2 * sx, size[0]),
    )


def _span(start: float, end: float, limit: int, *, inset: int = 0) -> slice:
    """Pixels ``start``..``end`` (less ``inset`` each side), never fewer than :data:`MIN_SPAN`.

    A 16x8192 upload is a picture under 2 px wide in the frame: too thin for
    an inset, a Laplacian or the freeze grid. There the span is widened
    around its centre (taking in some of the blurred fill) and :func:`record`
    warns that the flags are unreliable.
    """
    lo, hi = round(start), round(end)
    if hi - lo - 2 * inset >= MIN_SPAN:
        return slice(lo + inset, hi - inset)
    want = min(MIN_SPAN, limit)
    lo = min(max(0, round((start + end) / 2 - want / 2)), limit - want)
    return slice(lo, lo + want)


def measure(
    clip: Path,
    q: Quality,
    *,
    frame: tuple[int, int],
    content: tuple[int, int] | None = None,
    duration: float,
    timeout: float | None = None,
    detector: FaceDetector | None = None,
    log_file: Path | None = None,
) -> Measurements:
    """Measure one rendered clip.

    Args:
        clip: The rendered clip.
        q: Quality settings (only the measuring ones are used here).
        frame: The clip's frame size (the output size).
        content: Size of the clip's own picture inside the frame; ``None`` when
            it fills the frame.
        duration: The clip's length in seconds.
        timeout: Seconds each ffmpeg call may take.
        detector: Face detector to reuse (one is made otherwise).
        log_file: The submission's log, for the analysis command and its stderr.

    Raises:
        FFmpegError: The clip could not be decoded.
    """
    width = ANALYSIS_WIDTH
    height = max(2, round(frame[1] * width / frame[0] / 2) * 2)
    rows, cols = analysis_region(frame, content, (width, height))
    face_rows, face_cols = face_region(frame, content, (width, height))
    # One pass, one frame in memory at a time (plus the previous one): a long
    # clip costs time, not memory. Which frames get the (slower) face and hash
    # analysis is decided up front from the expected frame count.
    expected = max(1, math.ceil(duration * SAMPLE_FPS))
    face_picks = set(_evenly(expected, FACE_FRAMES))
    hash_picks = set(_evenly(expected, FINGERPRINT_FRAMES * 2))
    black_limit = _Y_BLACK + q.black_luma * (_Y_WHITE - _Y_BLACK)
    noise = q.freeze_noise * (_Y_WHITE - _Y_BLACK)
    det = detector or FaceDetector(min_neighbors=5, scale_factor=1.15, min_size=24)
    lumas: list[float] = []
    is_black: list[bool] = []
    sharp_by_frame: list[float] = []
    still: list[bool] = []
    hashes: list[int] = []
    faces = looked = 0
    prev: np.ndarray | None = None
    last: np.ndarray | None = None
    stderr: list[str] = []
    frames = sample_frames(
        clip, width, height, [silence_filter(q), meter_filter()], stderr.append,
        timeout=timeout, log_file=log_file,
    )  # fmt: skip
    for i, frame_gray in enumerate(frames):
        pic = frame_gray[rows, cols]
        blk = float(np.mean(pic <= black_limit)) >= q.black_pixels
        lumas.append(_clamp((float(pic.mean()) - _Y_BLACK) / (_Y_WHITE - _Y_BLACK)))
        is_black.append(blk)
        sharp_by_frame.append(sharpness(pic))
        if prev is not None:
            still.append(not blk and _largest_block_change(prev, pic) < noise)
        if i in face_picks:
            looked += 1
            faces += _has_face(det, frame_gray[face_rows, face_cols])
        if i in hash_picks and not blk and float(pic.std()) > 4.0:
            hashes.append(phash(pic))
        prev, last = pic, frame_gray
    if last is None:
        raise FFmpegError(f"no frames decoded from {clip.name}", [], None, "")
    if looked == 0:  # fewer frames than expected: look at the last one
        looked, faces = 1, int(_has_face(det, last[face_rows, face_cols]))
    step = 1.0 / SAMPLE_FPS
    lit = [lu for lu, b in zip(lumas, is_black, strict=True) if not b] or lumas
    sharp = [s for s, b in zip(sharp_by_frame, is_black, strict=True) if not b] or sharp_by_frame
    return Measurements(
        luma=round(float(np.median(lit)), 4),
        sharpness=round(float(np.median(sharp)), 2),
        silent=round(silent_share(stderr[0], duration), 4),
        # A run of n unchanged pairs spans n sample intervals.
        frozen=round(_longest_run(still) * step, 2),
        black=round(_longest_run(is_black) * step, 2),
        face=round(faces / looked, 4),
        fingerprint=tuple(_spread(hashes, FINGERPRINT_FRAMES)),
        loudness=parse_ebur128(stderr[0]),
    )


def _has_face(det: FaceDetector, pic: np.ndarray) -> bool:
    size = (max(1, round(pic.shape[1] * FACE_HEIGHT / pic.shape[0])), FACE_HEIGHT)
    return bool(det.detect(cv2.resize(pic, size, interpolation=cv2.INTER_AREA)))


def sharpness(gray: np.ndarray) -> float:
    """Variance of the Laplacian, as if the frame spanned the whole video range.

    The Laplacian is linear, so a frame with a quarter of the contrast has a
    sixteenth of the variance: without the stretch every dark or hazy clip
    would also be "blurry". The stretch (1st to 99th percentile onto the
    range) is capped at :data:`MAX_STRETCH` so a flat, noisy frame stays soft.
    """
    lo, hi = np.percentile(gray, (1, 99))
    gain = min((_Y_WHITE - _Y_BLACK) / max(float(hi - lo), 1.0), MAX_STRETCH)
    return float(cv2.Laplacian(gray, cv2.CV_32F).var()) * gain * gain


def sample_frames(
    clip: Path,
    width: int,
    height: int,
    audio_filters: Sequence[str],
    on_exit: Callable[[str], None],
    *,
    timeout: float | None = None,
    log_file: Path | None = None,
) -> Iterator[np.ndarray]:
    """Gray frames of ``clip`` at :data:`SAMPLE_FPS`, ``width`` x ``height``, as uint8 arrays.

    Like :func:`processing.frames.read_frames` but the decoder skips frames no
    other frame refers to and the deblocking filter: half the decoding work,
    and at two samples a second a frame 33 ms off is as good. The first audio
    stream goes through ``audio_filters`` in the same run (to a null output);
    ``on_exit`` gets the stderr the run printed.
    """
    decoded = graph.input_file(clip, skip_frame="noref", skip_loop_filter="all")
    pic = graph.filt(decoded["v:0"], "fps", SAMPLE_FPS, start_time=0)
    pic = graph.filt(pic, "scale", width, height, flags="area")
    sound = graph.chain(decoded["a:0"], audio_filters)
    raw = graph.output(pic, "pipe:1", f="rawvideo", pix_fmt="gray")
    metered = graph.output(sound, "-", f="null")
    args = ["-v", "info", "-nostats", *graph.compile_args(raw, metered, overwrite=False)]
    size = width * height
    for chunk in runner.stream(args, size, timeout=timeout, log_file=log_file, on_exit=on_exit):
        yield np.frombuffer(chunk, np.uint8).reshape(height, width)


def silence_filter(q: Quality) -> str:
    """``silencedetect`` at ``q.silence_db``: https://ffmpeg.org/ffmpeg-filters.html#silencedetect"""
    return f"silencedetect=noise={q.silence_db}dB:duration=0.3"


def silent_share(stderr: str, duration: float) -> float:
    """Share of ``duration`` that the :func:`silence_filter` lines in ``stderr`` call silent."""
    if duration <= 0:
        return 0.0
    silent, start = 0.0, None
    for kind, value in _SILENCE.findall(stderr):
        t = max(0.0, float(value))
        if kind == "start":
            start = t
        elif start is not None:
            silent += t - start
            start = None
    if start is not None:
        silent += duration - start
    return min(1.0, silent / duration)


def phash(gray: np.ndarray) -> int:
    """64-bit perceptual hash: signs of the 8x8 lowest DCT terms against their median.

    Survives rescaling, re-encoding, brightness and mild blur; a mirrored or
    different picture lands ~32 bits away.
    """
    small = cv2.resize(gray, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8].flatten()
    bits = low > np.median(low[1:])
    return int(sum(1 << i for i, b in enumerate(bits) if b))


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


def duplicates(
    fingerprints: Mapping[str, Sequence[int]], q: Quality
) -> dict[str, tuple[float, list[str]]]:
    """For each clip, the best share of its frames matching another clip, and which clips match.

    A frame matches when some frame of the other clip lies within
    ``q.duplicate_bits`` bits; the share is taken over the clip with fewer
    hashes, so a trimmed copy matches its original. Clips are compared all at
    once with numpy (a thousand clips take about a second).
    """
    ids = [i for i, fp in fingerprints.items() if fp]
    result: dict[str, tuple[float, list[str]]] = {i: (0.0, []) for i in fingerprints}
    if len(ids) < 2:
        return result
    width = max(len(fingerprints[i]) for i in ids)
    table = np.zeros((len(ids), width), np.uint64)
    valid = np.zeros((len(ids), width), bool)
    for row, i in enumerate(ids):
        fp = np.array([int(h) for h in fingerprints[i]], np.uint64)
        table[row, : len(fp)], valid[row, : len(fp)] = fp, True
    counts = valid.sum(axis=1)
    for a in range(len(ids)):
        # bits[b, i, j]: distance from a's hash i to b's hash j.
        bits = np.bitwise_count(table[a][None, :, None] ^ table[:, None, :])
        close = (bits <= q.duplicate_bits) & valid[a][None, :, None] & valid[:, None, :]
        a_matched = close.any(axis=2).sum(axis=1)  # a's frames found in b
        b_matched = close.any(axis=1).sum(axis=1)  # b's frames found in a
        share = np.maximum(a_matched / counts[a], b_matched / counts)
        share[a] = 0.0
        best = float(share.max())
        hits = [ids[b] for b in np.flatnonzero(share >= q.duplicate_fraction)]
        result[ids[a]] = (round(best, 4), hits)
    return result


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


def assess(
    entry: Entry,
    clip: Path,
    cfg: Config,
    *,
    content: tuple[int, int] | None,
    duration: float,
    log_file: Path | None = None,
) -> None:
    """Measure ``clip`` and store its flags and fingerprint on ``entry``.

    A clip that cannot be measured keeps no flags and gets a warning; quality
    flags never reject a clip.
    """
    started = time.monotonic()
    try:
        m = measure_clip(clip, cfg, content=content, duration=duration, log_file=log_file)
    except FFmpegError as exc:
        log.warning("quality flags for %s could not be measured: %s", clip.name, exc)
        entry.warnings.append(f"quality flags could not be measured ({exc.args[0][:200]})")
        entry.flags, entry.quality = {}, None
        return
    record(entry, m, cfg, content=content, seconds=time.monotonic() - started)


def record(
    entry: Entry,
    m: Measurements,
    cfg: Config,
    *,
    content: tuple[int, int] | None,
    seconds: float,
) -> None:
    """Store the flags and fingerprint of ``m`` (measured in ``seconds``) on ``entry``."""
    q = cfg.quality
    entry.flags = flags(m, q)
    if entry.anonymize:
        # Blurred faces are meant not to be found; finding one is the alarm.
        entry.flags.pop("no_face", None)
        if m.face > 0:
            entry.warnings.append(
                f"the face detector still finds a face in {m.face:.0%} of sampled frames of "
                "this anonymized clip: check it frame by frame before approving"
            )
    thin = min(content) * ANALYSIS_WIDTH / cfg.output.width if content else MIN_SPAN
    if thin < MIN_SPAN:
        entry.warnings.append(
            f"quality flags are unreliable: the picture is only {min(content or (0,))} px "
            "across in the frame (extreme aspect ratio), so they were measured partly on "
            "the blurred fill around it"
        )
    entry.quality = {
        "key": measure_key(q),
        "content": list(content) if content else None,
        "fingerprint": [f"{h:016x}" for h in m.fingerprint],
        "seconds": round(seconds, 3),
    }


def refresh(entry: Entry, clip: Path, cfg: Config, *, log_file: Path | None = None) -> bool:
    """Bring a cached entry's flags up to date with ``cfg``.

    Thresholds are compared again; values are measured again only when the
    record has none or a measuring setting changed. Returns True when the
    clip was measured again (so the record should be rewritten).
    """
    q = cfg.quality
    stale = not entry.flags or not entry.quality or entry.quality.get("key") != measure_key(q)
    if not stale and entry.flags is not None:
        entry.flags = reevaluate(entry.flags, q)
        return False
    content = None
    if entry.quality and entry.quality.get("content"):
        w, h = entry.quality["content"]
        content = (int(w), int(h))
    else:
        content = _content_from_input(entry.input, cfg)
    assess(entry, clip, cfg, content=content, duration=entry.duration or 0.0, log_file=log_file)
    return True


def mark_duplicates(entries: Iterable[Entry], q: Quality) -> None:
    """Add the batch-wide ``duplicate`` flag to every accepted, measured entry."""
    measured = [e for e in entries if e.quality and e.flags is not None]
    prints = {e.id: [int(h, 16) for h in e.quality.get("fingerprint", [])] for e in measured}  # type: ignore[union-attr]
    found = duplicates(prints, q)
    for e in measured:
        share, of = found.get(e.id, (0.0, []))
        assert e.flags is not None
        e.flags["duplicate"] = {**_flag("duplicate", share, q), "of": of}


def _content_from_input(summary: dict[str, Any] | None, cfg: Config) -> tuple[int, int] | None:
    """The picture's size in the frame, from an entry's input summary (old records)."""
    from fractions import Fraction

    from .normalize import fit

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


def _largest_block_change(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of the block of the grid that changed most."""
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16)).astype(np.float32)
    rows, cols = FREEZE_GRID
    h, w = diff.shape
    h, w = h - h % rows, w - w % cols
    blocks = diff[:h, :w].reshape(rows, h // rows, cols, w // cols).mean(axis=(1, 3))
    return float(blocks.max())


def _clamp(v: float) -> float:
    return min(1.0, max(0.0, v))


def _longest_run(flags_: Sequence[bool]) -> int:
    best = run = 0
    for f in flags_:
        run = run + 1 if f else 0
        best = max(best, run)
    return best


def _spread(items: list[int], k: int) -> list[int]:
    """Up to ``k`` of ``items``, evenly spaced."""
    return [items[i] for i in _evenly(len(items), k)]


def _evenly(n: int, k: int) -> list[int]:
    """Up to ``k`` indexes spread evenly over ``range(n)``."""
    if n <= k:
        return list(range(n))
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def as_json(m: Measurements) -> dict[str, Any]:
    """``m`` for logs and benchmarks."""
    d = asdict(m)
    d["fingerprint"] = [f"{h:016x}" for h in m.fingerprint]
    return d
