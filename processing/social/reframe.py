"""Face-aware reframing: where a 9:16 or 1:1 window sits on each frame of a landscape clip.

Input is the face track the anonymization already made (:class:`~processing.anonymize.FaceScan`:
BlazeFace looks on every few frames of the encode's timeline, and the frames
that start a new shot), so reframing costs no extra decode and no extra detector.
Output is a frozen :class:`CropPath`, turned into filters by :mod:`.graph`.

Per shot the window either stays put (the face barely moves and one window
holds it throughout) or follows a smoothed face track at no more than
``social.max_pan_px`` per frame, always keeping the face (with room around it)
inside when that is possible at that speed. Between shots it jumps, as a cut
does. A clip is shown whole over a blurred copy of itself instead (``fill``)
when two people are too far apart for one window, or a face moves faster than
the window may; a portrait clip in a 9:16 frame is only scaled (``native``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import numpy as np

from ..anonymize import FaceScan, Look
from ..config import Social

#: Output frame of each rendition, in pixels.
TARGETS: dict[str, tuple[int, int]] = {"9:16": (1080, 1920), "1:1": (1080, 1080)}

Layout = Literal["crop", "fill", "native"]
Box = tuple[float, float, float, float]
"""``(x0, y0, x1, y1)`` in source pixels."""

#: Confidence a face needs to move the window. The anonymization keeps fainter
#: detections (a missed face is worse than a blurred patch of wall); for framing, a
#: false face in the background would pull the window off the speaker.
FRAME_SCORE = 0.6

#: A subject's centre sits this far down the window when the window moves vertically
#: (a square cut of a portrait clip): eyes in the upper half, as a camera operator frames.
_Y_CENTRE = 0.42


@dataclass(frozen=True)
class Key:
    """The window's top-left corner on one frame; the path is linear between keys."""

    frame: int
    x: float
    y: float


@dataclass(frozen=True)
class CropPath:
    """Where the rendition's window sits, frame by frame, and how the frame is laid out.

    ``crop``: the window ``window`` (source pixels) at :meth:`at`, scaled to ``output``.
    ``fill``: the whole source fitted into ``output`` over a blurred copy of itself.
    ``native``: the whole source scaled to ``output`` (blurred fill if the aspect differs).
    """

    layout: Layout
    aspect: str
    source: tuple[int, int]
    window: tuple[int, int]
    output: tuple[int, int]
    fps: int
    frames: int
    keys: tuple[Key, ...]
    cuts: tuple[int, ...]
    why: str
    """For staff and the report: why this layout."""

    def at(self, frame: int | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The window's ``(x, y)`` on ``frame`` (an int or an array of frames)."""
        f = np.asarray(frame, float)
        if not self.keys:
            return np.zeros_like(f), np.zeros_like(f)
        frames = [k.frame for k in self.keys]
        return np.interp(f, frames, [k.x for k in self.keys]), np.interp(
            f, frames, [k.y for k in self.keys]
        )

    def max_step(self) -> float:
        """Largest move of the window from one frame to the next inside a shot, source pixels."""
        x, y = self.at(np.arange(self.frames))
        step = np.hypot(np.diff(x), np.diff(y))
        inside = np.ones(len(step), bool)
        for c in self.cuts:
            if 0 < c < self.frames:
                inside[c - 1] = False  # the move from c-1 to c is the cut itself
        return float(step[inside].max()) if inside.any() else 0.0

    def summary(self) -> dict[str, object]:
        """For ``report.json``."""
        return {
            "aspect": self.aspect,
            "layout": self.layout,
            "window": list(self.window),
            "keys": len(self.keys),
            "max_step_px": round(self.max_step(), 2),
            "why": self.why,
        }


def window_size(source: tuple[int, int], aspect: str) -> tuple[int, int]:
    """The largest even window of ``aspect`` (``"9:16"`` or ``"1:1"``) inside ``source``."""
    w, h = source
    a = Fraction(*TARGETS[aspect])
    if Fraction(w, h) > a:
        return min(w, 2 * round(h * a / 2)), h
    return w, min(h, 2 * round(w / a / 2))


def plan_reframe(
    scan: FaceScan,
    source: tuple[int, int],
    aspect: str,
    fps: int,
    settings: Social,
    *,
    cuts: Sequence[int] | None = None,
) -> CropPath:
    """Plan the ``aspect`` rendition of a clip from its face scan.

    Args:
        scan: The anonymization's face scan (boxes in ``scan.size`` pixels, frames
            on the encode's timeline).
        source: Size of the picture the crop is applied to (square pixels,
            after rotation): usually the probe's ``display_size``.
        aspect: ``"9:16"`` or ``"1:1"``.
        fps: Output frame rate (the scan's frames are at this rate).
        settings: ``[social]``.
        cuts: Frames that start a new shot; ``scan.cuts`` by default.

    Raises:
        ValueError: ``aspect`` is not one of :data:`TARGETS`, or the scan has no frames.
    """
    if aspect not in TARGETS:
        raise ValueError(f"unknown rendition aspect {aspect!r}; use one of {', '.join(TARGETS)}")
    if scan.frames < 1:
        raise ValueError("a clip without frames has nothing to reframe")
    out = TARGETS[aspect]
    w, h = source
    win = window_size(source, aspect)
    shots = tuple(sorted({c for c in (scan.cuts if cuts is None else cuts) if 0 < c < scan.frames}))

    def whole(layout: Layout, why: str) -> CropPath:
        return CropPath(layout, aspect, source, source, out, fps, scan.frames, (), shots, why)

    if h > w and aspect == "9:16":
        return whole("native", "portrait clip: scaled, not cropped")
    if abs(Fraction(w, h) / Fraction(*out) - 1) <= Fraction(1, 100):
        return whole("native", "the clip already has this aspect")
    k = (w / scan.size[0], h / scan.size[1])
    subjects, apart = _subjects(scan.looks, k, win, settings)
    seen = sum(1 for b in subjects if b is not None) + apart
    if seen and apart / seen >= settings.apart_share:
        return whole("fill", f"two people too far apart for one window in {apart} of {seen} looks")
    bounds = [0, *shots, scan.frames]
    looked = [(look.frame, b) for look, b in zip(scan.looks, subjects, strict=True)]
    planned = _shot_keys(looked, bounds, source, win, fps, settings)
    if planned is None:
        return whole("fill", "the face moves faster than social.max_pan_px allows")
    keys, fixed = planned
    why = f"window follows the face; {fixed} of {len(bounds) - 1} shots fixed"
    return CropPath("crop", aspect, source, win, out, fps, scan.frames, tuple(keys), shots, why)


def _shot_keys(
    looked: list[tuple[int, Box | None]],
    bounds: list[int],
    source: tuple[int, int],
    win: tuple[int, int],
    fps: int,
    settings: Social,
) -> tuple[list[Key], int] | None:
    """Window keys shot by shot and how many shots hold still; None if one cannot follow."""
    keys: list[Key] = []
    fixed = 0
    for first, end in itertools.pairwise(bounds):
        track = [(f, b) for f, b in looked if first <= f < end and b is not None]
        axes = []
        for axis in (0, 1):
            path = _axis_path(track, first, end, axis, source, win, fps, settings)
            if path is None:
                return None
            axes.append(path)
        fixed += int(np.ptp(axes[0]) == 0 and np.ptp(axes[1]) == 0)
        keys += _keys(first, axes[0], axes[1])
    return keys, fixed


def _subjects(
    looks: Sequence[Look], k: tuple[float, float], win: tuple[int, int], settings: Social
) -> tuple[list[Box | None], int]:
    """Per look, the box to keep in the window (the speaker, or people close together).

    A second face counts when it is at least 0.6 times the largest one's height
    (a face far behind, or a poster, does not pull the window). Returns the
    boxes (None where no face) and how many looks had people too far apart
    for one window (those looks keep the largest face).
    """
    boxes: list[Box | None] = []
    apart = 0
    for look in looks:
        scores = look.scores or (1.0,) * len(look.boxes)
        faces = [
            _grow(b, k, settings.face_margin)
            for b, score in zip(look.boxes, scores, strict=False)
            if score >= FRAME_SCORE
        ]
        if not faces:
            boxes.append(None)
            continue
        faces.sort(key=lambda b: b[3] - b[1], reverse=True)
        main = faces[0]
        people = [b for b in faces if b[3] - b[1] >= 0.6 * (main[3] - main[1])]
        hull = (
            min(b[0] for b in people),
            min(b[1] for b in people),
            max(b[2] for b in people),
            max(b[3] for b in people),
        )
        if hull[2] - hull[0] > win[0] or hull[3] - hull[1] > win[1]:
            apart += 1
            boxes.append(main)
        else:
            boxes.append(hull)
    return boxes, apart


def _grow(box: tuple[float, ...], k: tuple[float, float], margin: float) -> Box:
    """A detector box ``(x, y, w, h)`` in scan pixels as a head box in source pixels."""
    x, y, bw, bh = box
    mx, my = margin * bw, margin * bh
    return (x - mx) * k[0], (y - 1.6 * my) * k[1], (x + bw + mx) * k[0], (y + bh + my) * k[1]


def _axis_path(
    track: list[tuple[int, Box]],
    first: int,
    end: int,
    axis: int,
    source: tuple[int, int],
    win: tuple[int, int],
    fps: int,
    settings: Social,
) -> np.ndarray | None:
    """The window's position along ``axis`` for frames ``first..end-1``; None if it cannot keep up.

    Without slack on this axis, or without a face in the shot, the window is
    fixed (centred). Otherwise it is fixed when the face barely moves and one
    window holds it, else it follows the smoothed track within speed limits.
    """
    n = end - first
    slack = source[axis] - win[axis]
    if slack <= 0 or not track:
        return np.full(n, max(0, slack) / 2)
    frames = np.arange(first, end)
    at = [f for f, _ in track]
    lo_edge = np.interp(frames, at, [b[axis] for _, b in track])
    hi_edge = np.interp(frames, at, [b[axis + 2] for _, b in track])
    share = 0.5 if axis == 0 else _Y_CENTRE
    centre = (lo_edge + hi_edge) / 2
    size = win[axis]
    # The window may sit anywhere that keeps the face in: [right - size, left], within the frame.
    lo = np.clip(hi_edge - size, 0, slack)
    hi = np.clip(lo_edge, 0, slack)
    too_big = lo > hi  # a face larger than the window: centre on it
    mid = np.clip(centre - share * size, 0, slack)
    lo[too_big], hi[too_big] = mid[too_big], mid[too_big]
    target = _smooth(mid, max(1, round(settings.smooth_seconds * fps)))
    if np.ptp(centre) <= settings.still_share * size and lo.max() <= hi.min():
        return np.full(n, float(np.clip(target.mean(), lo.max(), hi.min())))
    v = settings.max_pan_px * win[0] / TARGETS_WIDTH
    return _tube(lo, hi, target, v)


#: Every rendition is 1080 px wide: ``max_pan_px`` is counted in those pixels.
TARGETS_WIDTH = 1080


def _smooth(values: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average over ``width`` frames (ends padded with the edge value)."""
    if width <= 1 or len(values) < 2:
        return values
    pad = width // 2
    padded = np.pad(values, (pad, width - 1 - pad), mode="edge")
    return np.convolve(padded, np.ones(width) / width, mode="valid")


def _tube(lo: np.ndarray, hi: np.ndarray, target: np.ndarray, v: float) -> np.ndarray | None:
    """The path nearest ``target`` inside ``[lo, hi]`` on every frame, moving at most ``v``.

    Forward, the positions reachable at that speed while staying in bounds;
    backward, those from which the rest of the shot stays reachable; then the
    path follows the target as closely as both allow. None when no path exists.
    """
    rlo, rhi = lo.astype(float), hi.astype(float)
    for i in range(1, len(rlo)):
        rlo[i] = max(rlo[i], rlo[i - 1] - v)
        rhi[i] = min(rhi[i], rhi[i - 1] + v)
        if rlo[i] > rhi[i] + 1e-9:
            return None
    for i in range(len(rlo) - 2, -1, -1):
        rlo[i] = max(rlo[i], rlo[i + 1] - v)
        rhi[i] = min(rhi[i], rhi[i + 1] + v)
    path = np.empty(len(rlo))
    prev = float(np.clip(target[0], rlo[0], rhi[0]))
    for i in range(len(rlo)):
        step = np.clip(target[i], prev - v, prev + v) if i else prev
        prev = float(np.clip(step, rlo[i], rhi[i]))
        path[i] = prev
    return path


def _keys(first: int, xs: np.ndarray, ys: np.ndarray, tolerance: float = 0.5) -> list[Key]:
    """The fewest keys whose linear path stays within ``tolerance`` px of ``xs, ys``.

    Keys are points of the path, so no segment between them is faster than the path.
    """
    n = len(xs)
    keep = {0, n - 1}
    stack = [(0, n - 1)]
    while stack:
        a, b = stack.pop()
        if b - a < 2:
            continue
        t = (np.arange(a + 1, b) - a) / (b - a)
        err = np.maximum(
            np.abs(xs[a + 1 : b] - (xs[a] + t * (xs[b] - xs[a]))),
            np.abs(ys[a + 1 : b] - (ys[a] + t * (ys[b] - ys[a]))),
        )
        worst = int(np.argmax(err))
        if err[worst] > tolerance:
            keep.add(a + 1 + worst)
            stack += [(a, a + 1 + worst), (a + 1 + worst, b)]
    return [Key(first + i, round(float(xs[i]), 2), round(float(ys[i]), 2)) for i in sorted(keep)]
