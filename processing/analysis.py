"""Measuring a rendered clip: small gray frames, the sound metered alongside.

A new clip's encode writes them itself (:mod:`processing.taps`: extra outputs of its
filter graph, so nothing decodes the clip again); a cached clip measured anew
is decoded once (:func:`measure`). Either way the frames are :data:`SAMPLE_FPS`
per second, :data:`ANALYSIS_WIDTH` wide, and the sound goes through
``silencedetect`` and the ``ebur128`` meter (the clip's loudness for the
report). Pixels are measured only inside the *analysis
region*: the clip's own picture (not the blurred fill beside a portrait clip)
without the caption bands (hashtag top right, name lower third), so white
caption boxes cannot hide a dark, black or frozen picture, and the same video
uploaded twice with different names still hashes alike. What the values mean
as flags is :mod:`processing.quality`'s business.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from . import graph, runner
from .config import Quality
from .errors import FFmpegError
from .faces import FaceDetector
from .fingerprint import evenly, phash, spread
from .loudness import Measurement, meter_filter, parse_ebur128

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

_SILENCE = re.compile(r"silence_(start|end): (-?[0-9.]+)")


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


def analysis_size(frame: tuple[int, int]) -> tuple[int, int]:
    """Width and height of the analysed frames of a clip whose frame is ``frame``."""
    return ANALYSIS_WIDTH, max(2, round(frame[1] * ANALYSIS_WIDTH / frame[0] / 2) * 2)


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
    """Measure one rendered clip by decoding it (a cached clip; a new one uses :class:`Taps`).

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
    width, height = analysis_size(frame)
    stderr: list[str] = []
    # One pass, one frame in memory at a time (plus the previous one): a long
    # clip costs time, not memory.
    audio = [silence_filter(q), meter_filter()]
    frames = sample_frames(
        clip, width, height, audio, stderr.append, timeout=timeout, log_file=log_file
    )
    return measure_frames(
        frames, lambda: stderr[0], q, frame=frame, content=content, duration=duration,
        detector=detector, name=clip.name,
    )  # fmt: skip


def measure_frames(
    frames: Iterable[np.ndarray],
    stderr: Callable[[], str],
    q: Quality,
    *,
    frame: tuple[int, int],
    content: tuple[int, int] | None,
    duration: float,
    detector: FaceDetector | None = None,
    name: str = "clip",
) -> Measurements:
    """The measurements of ``frames`` (gray, :func:`analysis_size`) and of the sound.

    ``stderr`` gives, once the frames are read, what the :func:`silence_filter`
    and the loudness meter printed.

    Raises:
        FFmpegError: There was no frame.
    """
    size = analysis_size(frame)
    det = detector or FaceDetector(min_neighbors=5, scale_factor=1.15, min_size=24)
    tally = _Tally(q, det, analysis_region(frame, content, size),
                   face_region(frame, content, size), duration)  # fmt: skip
    for i, frame_gray in enumerate(frames):
        tally.add(i, frame_gray)
    if tally.last is None:
        raise FFmpegError(f"no frames decoded from {name}", [], None, "")
    return tally.result(stderr(), duration)


class _Tally:
    """What :func:`measure` keeps of the frames seen so far."""

    def __init__(
        self,
        q: Quality,
        det: FaceDetector,
        region: tuple[slice, slice],
        face_area: tuple[slice, slice],
        duration: float,
    ):
        self.q, self.det, self.region, self.face_area = q, det, region, face_area
        # Which frames get the (slower) face and hash analysis is decided up
        # front from the expected frame count.
        expected = max(1, math.ceil(duration * SAMPLE_FPS))
        self.face_picks = set(evenly(expected, FACE_FRAMES))
        self.hash_picks = set(evenly(expected, FINGERPRINT_FRAMES * 2))
        self.black_limit = _Y_BLACK + q.black_luma * (_Y_WHITE - _Y_BLACK)
        self.noise = q.freeze_noise * (_Y_WHITE - _Y_BLACK)
        self.lumas: list[float] = []
        self.is_black: list[bool] = []
        self.sharp: list[float] = []
        self.still: list[bool] = []
        self.hashes: list[int] = []
        self.faces = self.looked = 0
        self.prev: np.ndarray | None = None
        self.last: np.ndarray | None = None

    def add(self, i: int, frame_gray: np.ndarray) -> None:
        pic = frame_gray[self.region]
        blk = float(np.mean(pic <= self.black_limit)) >= self.q.black_pixels
        self.lumas.append(_clamp((float(pic.mean()) - _Y_BLACK) / (_Y_WHITE - _Y_BLACK)))
        self.is_black.append(blk)
        self.sharp.append(sharpness(pic))
        if self.prev is not None:
            self.still.append(not blk and _largest_block_change(self.prev, pic) < self.noise)
        if i in self.face_picks:
            self.looked += 1
            self.faces += _has_face(self.det, frame_gray[self.face_area])
        if i in self.hash_picks and not blk and float(pic.std()) > 4.0:
            self.hashes.append(phash(pic))
        self.prev, self.last = pic, frame_gray

    def result(self, stderr: str, duration: float) -> Measurements:
        assert self.last is not None
        faces, looked = self.faces, self.looked
        if looked == 0:  # fewer frames than expected: look at the last one
            looked, faces = 1, int(_has_face(self.det, self.last[self.face_area]))
        step = 1.0 / SAMPLE_FPS
        pairs = list(zip(self.lumas, self.sharp, self.is_black, strict=True))
        lit = [lu for lu, _, b in pairs if not b] or self.lumas
        sharp = [s for _, s, b in pairs if not b] or self.sharp
        return Measurements(
            luma=round(float(np.median(lit)), 4),
            sharpness=round(float(np.median(sharp)), 2),
            silent=round(silent_share(stderr, duration), 4),
            # A run of n unchanged pairs spans n sample intervals.
            frozen=round(_longest_run(self.still) * step, 2),
            black=round(_longest_run(self.is_black) * step, 2),
            face=round(faces / looked, 4),
            fingerprint=tuple(spread(self.hashes, FINGERPRINT_FRAMES)),
            loudness=parse_ebur128(stderr),
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


def as_json(m: Measurements) -> dict[str, Any]:
    """``m`` for logs and benchmarks."""
    d = asdict(m)
    d["fingerprint"] = [f"{h:016x}" for h in m.fingerprint]
    return d
