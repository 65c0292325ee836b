"""Anonymization on request: every face hidden for the clip's whole length.

The stages, each taking the previous one's value:

1. :func:`scan` decodes the clip on the encode's own timeline (``fps=N:start_time=0``
   after ffmpeg's auto-rotation), downscaled, and looks for every face with
   :class:`~processing.faces.BlazeFace` (a CNN, whole frame and tiles) on every
   ``detect_every``-th frame.
2. :func:`mask_frames` turns the looks into one mask per output frame. Every box
   is enlarged by ``margin`` and held from the look before to the look after
   (and ``hold_seconds`` either side); between two looks the area swept by a
   moving face is covered too. With ``coverage = "clip"`` every place a face
   was seen is also hidden on every frame. A clip without any face found is
   blurred whole (``no_face = "blur_all"``) or held back (``"reject"``).
3. :func:`write_mask` streams those masks into a small lossless FFV1 file.
4. The encode (:func:`hide_faces`, used by ``normalize.filter_graph``) merges
   the picture with a heavily blurred copy of itself through the mask, before
   the picture is fitted and the background copy made from it, so the
   background is anonymized too. Still exactly one encode per clip.

Memory stays at a frame or two whatever the clip's length: frames are
streamed, and only the boxes of each look are kept.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import graph, runner
from .config import Anonymize, Config
from .errors import Rejection
from .faces import BlazeFace, Box
from .faces.uncertain import Span, is_cut, margin_for, whole_frame_spans
from .frames import FrameSpec, read_frames
from .probe import VideoStream

Rect = tuple[int, int, int, int]
"""``(x0, y0, x1, y1)``, end exclusive, in mask pixels."""


@dataclass(frozen=True)
class Look:
    """Faces found on one frame of the output timeline."""

    frame: int
    boxes: tuple[Box, ...]
    scores: tuple[float, ...] = ()
    """The detector's confidence in each box (0-1); empty when unknown."""


@dataclass(frozen=True)
class FaceScan:
    """Where faces were found in a clip, on the analysis grid."""

    size: tuple[int, int]
    """Analysis (and mask) width and height."""
    frames: int
    """Frames of the output timeline the mask must cover."""
    looks: tuple[Look, ...]
    seconds: float
    """How long the detection pass took."""
    cuts: tuple[int, ...] = ()
    """Frames that start a new shot (a scene cut)."""

    @property
    def looks_with_faces(self) -> int:
        return sum(1 for look in self.looks if look.boxes)


@dataclass(frozen=True)
class FaceMask:
    """A written mask and what went into it, for the report."""

    path: Path
    scan: FaceScan
    whole_frame: bool
    """No face was found, so the whole picture is blurred."""
    hidden_share: float
    """Average share of the picture that is blurred."""
    fps: int = 30
    uncertain: tuple[Span, ...] = ()
    """Spans hidden whole because detection was in doubt (not counting a whole-clip blur)."""

    def doubt_note(self) -> str:
        """For staff: where the whole picture was blurred because detection was in doubt."""
        if not self.uncertain:
            return ""
        spans = ", ".join(
            f"{u.first / self.fps:.1f}-{(u.last + 1) / self.fps:.1f} s ({u.why})"
            for u in self.uncertain[:4]
        )
        return f"anonymized: the whole picture is blurred where detection was in doubt: {spans}"

    def summary(self) -> dict[str, Any]:
        s = self.scan
        return {
            "looks": len(s.looks),
            "looks_with_faces": s.looks_with_faces,
            "whole_frame_blurred": self.whole_frame,
            "hidden_share": round(self.hidden_share, 3),
            "detection_seconds": round(s.seconds, 2),
            "scene_cuts": len(s.cuts),
            "uncertain_spans": [
                [round(u.first / self.fps, 2), round((u.last + 1) / self.fps, 2), u.why]
                for u in self.uncertain
            ],
        }


def scan(
    path: Path,
    video: VideoStream,
    frames: int,
    fps: int,
    settings: Anonymize,
    *,
    detector: BlazeFace | None = None,
    timeout: float | None = None,
    log_file: Path | None = None,
) -> FaceScan:
    """Look for every face on every ``settings.detect_every``-th frame, and on the last one.

    Frame ``i`` here is frame ``i`` of the encode (same ``fps`` filter, same
    start, same rotation), so the mask lines up with the picture.
    """
    detector = detector or BlazeFace(min_score=settings.min_score)
    size = analysis_grid(video.display_size, settings.analysis_width)
    spec = FrameSpec(size[0], size[1], fps, gray=False)
    every = settings.detect_every
    looks: list[Look] = []
    pending: tuple[int, np.ndarray] | None = None
    started = time.monotonic()

    def look(i: int, frame: np.ndarray) -> Look:
        faces = detector.detect_faces(frame)
        boxes = tuple(_int_box(f.box) for f in faces)
        return Look(i, boxes, tuple(round(f.score, 3) for f in faces))

    cuts: list[int] = []
    previous: np.ndarray | None = None
    stream = read_frames(path, spec, duration=frames / fps, timeout=timeout, log_file=log_file)
    # Closed as soon as the frames are in: the decode is stopped (and logged) now, not at GC.
    with contextlib.closing(stream):
        for i, frame in enumerate(itertools.islice(stream, frames)):
            cut = previous is not None and is_cut(previous, frame)
            cuts += [i] if cut else []
            previous = frame
            # A new shot is looked at at once: the boxes of the last one say nothing about it.
            if i % every == 0 or cut:
                looks.append(look(i, frame))
                pending = None
            else:
                pending = (i, frame)  # one frame kept, for a look at the very end
    if pending is not None:
        looks.append(look(*pending))
    return FaceScan(size, frames, tuple(looks), time.monotonic() - started, tuple(cuts))


def _int_box(box: tuple[float, float, float, float]) -> Box:
    """A float ``(x, y, w, h)`` rounded outwards to whole pixels."""
    x, y, w, h = box
    x0, y0 = math.floor(x), math.floor(y)
    return x0, y0, math.ceil(x + w) - x0, math.ceil(y + h) - y0


def analysis_grid(display: tuple[int, int], width: int) -> tuple[int, int]:
    """Even size with ``display``'s aspect and at most the pixels of a 16:9 frame ``width`` wide.

    With the default 960, a portrait clip is looked at as 540x960: as many
    pixels as a landscape one, so the detector's cost per frame is the same.
    """
    w, h = display
    k = min(1.0, math.sqrt(width * width * 9 / 16 / (w * h)))
    return max(2, round(w * k / 2) * 2), max(2, round(h * k / 2) * 2)


def _grow(box: Box, margin: float, size: tuple[int, int]) -> Rect:
    """``box`` (a face) enlarged to the head: ``margin`` of its size on three sides, 1.6x on top.

    BlazeFace's box runs from the brows to the chin; the hair above is as
    identifying as the face, so the top gets more room.
    """
    x, y, w, h = box
    mx, my = margin * w, margin * h
    width, height = size
    x0, y0 = max(0, int(np.floor(x - mx))), max(0, int(np.floor(y - 1.6 * my)))
    x1, y1 = min(width, int(np.ceil(x + w + mx))), min(height, int(np.ceil(y + h + my)))
    return x0, y0, x1, y1


def _hull(a: Rect, b: Rect) -> Rect:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def _centre_distance(a: Rect, b: Rect) -> float:
    return float(np.hypot((a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2))


def _spans(found: FaceScan, settings: Anonymize, fps: int) -> list[tuple[int, int, Rect]]:
    """``(first frame, last frame, rect)`` for every rectangle to hide."""
    looks = found.looks
    last_frame = found.frames - 1
    hold = round(settings.hold_seconds * fps)
    grown = [
        [
            _grow(b, margin_for(score, settings.margin), found.size)
            for b, score in itertools.zip_longest(look.boxes, look.scores[: len(look.boxes)])
        ]
        for look in looks
    ]
    spans: list[tuple[int, int, Rect]] = []
    for j, look in enumerate(looks):
        before = looks[j - 1].frame if j > 0 else 0
        # The last look's boxes stay to the end (a video stream that stops early
        # is continued with its last frame by the encode).
        after = looks[j + 1].frame if j + 1 < len(looks) else last_frame
        first = max(0, min(before, look.frame - hold))
        last = min(last_frame, max(after, look.frame + hold))
        spans += [(first, last, rect) for rect in grown[j]]
        # Between two looks a face moves: cover the whole way from one box to
        # the nearest box of the next look.
        if j + 1 < len(looks):
            for rect in grown[j]:
                nxt = grown[j + 1]
                if not nxt:
                    continue
                near = nxt[int(np.argmin([_centre_distance(rect, r) for r in nxt]))]
                reach = 4 * max(rect[2] - rect[0], rect[3] - rect[1], near[2] - near[0])
                if _centre_distance(rect, near) <= reach:
                    spans.append((look.frame, looks[j + 1].frame, _hull(rect, near)))
    return sorted(spans)


def mask_frames(found: FaceScan, settings: Anonymize, fps: int) -> Iterator[np.ndarray]:
    """One ``uint8`` mask per output frame: 255 where the picture is blurred.

    Raises:
        Rejection: No face was found and ``settings.no_face`` is ``"reject"``.
    """
    w, h = found.size
    spans = _spans(found, settings, fps)
    if not spans:
        if settings.no_face == "reject":
            raise Rejection(
                "no_face_found",
                "The contributor asked to be anonymized, but no face was found to blur; "
                "the clip is held back for a person to check (anonymize.no_face).",
            )
        full = np.full((h, w), 255, np.uint8)
        for _ in range(found.frames):
            yield full
        return
    base = np.zeros((h, w), np.uint8)
    if settings.coverage == "clip":
        for _, _, (x0, y0, x1, y1) in spans:
            base[y0:y1, x0:x1] = 255
    active: list[tuple[int, int, Rect]] = []
    pending = iter(spans)
    upcoming = next(pending, None)
    whole = np.zeros(found.frames, bool)
    for span in whole_frame_spans(found.looks, found.cuts, found.frames, fps):
        whole[span.first : span.last + 1] = True
    full = np.full((h, w), 255, np.uint8)
    for i in range(found.frames):
        while upcoming is not None and upcoming[0] <= i:
            active.append(upcoming)
            upcoming = next(pending, None)
        active = [s for s in active if s[1] >= i]
        if whole[i]:
            yield full
            continue
        mask = base.copy()
        for _, _, (x0, y0, x1, y1) in active:
            mask[y0:y1, x0:x1] = 255
        yield mask


def write_mask(
    found: FaceScan,
    settings: Anonymize,
    fps: int,
    dst: Path,
    *,
    timeout: float | None = None,
    log_file: Path | None = None,
) -> FaceMask:
    """Write the masks of :func:`mask_frames` to ``dst`` (FFV1, grey, lossless)."""
    w, h = found.size
    total = 0.0
    whole = found.looks_with_faces == 0

    def chunks() -> Iterator[bytes]:
        nonlocal total
        for mask in mask_frames(found, settings, fps):
            total += float(mask.mean()) / 255
            yield mask.tobytes()

    args = [
        "-v", "error",
        "-f", "rawvideo", "-pix_fmt", "gray", "-s", f"{w}x{h}", "-r", str(fps), "-i", "pipe:0",
        "-c:v", "ffv1", "-pix_fmt", "gray", "-f", "matroska", "-y", runner.input_path(dst),
    ]  # fmt: skip
    runner.feed(args, chunks(), timeout=timeout, log_file=log_file)
    doubt = () if whole else tuple(whole_frame_spans(found.looks, found.cuts, found.frames, fps))
    return FaceMask(dst, found, whole, total / max(1, found.frames), fps, doubt)


@contextlib.contextmanager
def face_mask(
    path: Path,
    video: VideoStream,
    frames: int,
    cfg: Config,
    workdir: Path,
    *,
    log_file: Path | None = None,
) -> Iterator[FaceMask]:
    """Scan ``path`` and write its mask into a temporary folder that lives for the block.

    Raises:
        Rejection: No face was found and ``anonymize.no_face`` is ``"reject"``.
    """
    fps = cfg.output.fps
    timeout = cfg.limits.timeout_for(frames / fps)
    workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mask-", dir=workdir) as tmp:
        found = scan(path, video, frames, fps, cfg.anonymize, timeout=timeout, log_file=log_file)
        yield write_mask(
            found, cfg.anonymize, fps, Path(tmp) / "mask.mkv", timeout=timeout, log_file=log_file
        )


def picture_size(video: VideoStream) -> tuple[int, int]:
    """Size of the decoded picture after auto-rotation (before pixels are squared)."""
    if video.rotation in (90, 270):
        return video.height, video.width
    return video.width, video.height


def hide_faces(
    picture: graph.Stream, mask: graph.Stream, video: VideoStream, cfg: Config
) -> graph.Stream:
    """``picture`` with every face hidden: merged with a blurred copy of itself through ``mask``.

    Args:
        picture: The decoded picture on the encode's timeline (after ``fps``).
        mask: The mask file's input (:func:`write_mask`).
        video: The clip's video stream (for the picture's size).
        cfg: Settings (``output.fps``, ``anonymize.blur_cells``).

    The blurred copy is the picture averaged down to ``blur_cells`` across
    and enlarged smoothly: a face keeps nothing but its average colour.
    Everything is merged in 4:4:4 and the grey mask is copied into all three
    planes, so colour is hidden as fully as brightness.
    """
    w, h = picture_size(video)
    cells_w = max(2, cfg.anonymize.blur_cells)
    cells_h = max(2, round(cells_w * h / w))
    fps = cfg.output.fps
    pic, copy = graph.split(graph.filt(picture, "format", "yuv444p"), 2)
    # Averaged down to a few cells, then smoothed at 8x that size (cheap) so no
    # cell edges show when it is enlarged.
    blur = graph.filt(copy, "scale", cells_w, cells_h, flags="area")
    blur = graph.filt(blur, "scale", cells_w * 8, cells_h * 8, flags="bicubic")
    blur = graph.filt(graph.filt(blur, "gblur", sigma=5), "scale", w, h, flags="bicubic")
    blur = graph.filt(blur, "format", "yuv444p")
    # The mask file's timestamps are rounded to milliseconds; renumbering its
    # frames on the encode's 1/fps grid pairs frame n with frame n exactly.
    m = graph.filt(graph.filt(mask["v:0"], "settb", f"1/{fps}"), "setpts", "N")
    m = graph.filt(graph.filt(m, "scale", w, h, flags="bilinear"), "format", "gray")
    planes = graph.filt(graph.split(m, 3), "mergeplanes", "0x001020", "yuv444p")
    return graph.filt([pic, blur, planes], "maskedmerge")
