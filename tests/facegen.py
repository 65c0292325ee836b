"""Clips with a real face in them, and a way to count faces in a rendered clip.

The face is scikit-image's ``astronaut`` photograph (NASA, public domain),
panned across and zoomed into a softly patterned frame, so the face moves,
grows and is partly cut by the frame's edge, as in a hand-held selfie.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from skimage import data

from processing import ffmpeg
from processing.anonymize import analysis_grid
from processing.faces import FaceDetector
from processing.frames import FrameSpec, read_frames
from tests import mediagen as mg

TIMEOUT = 120.0
#: Width faces are looked for at when counting them in a clip (the pipeline's default).
COUNT_WIDTH = 480


#: The head (hair to chin) in the 512x512 photograph, ``(x0, y0, x1, y1)``.
HEAD_IN_PHOTO = (150, 20, 300, 190)
_PHOTO_SIDE = 512


def _placement(i: int, frames: int, size: tuple[int, int]) -> tuple[int, int, int]:
    """Where frame ``i`` draws the photo: ``(x, y, side)`` (the photo is square)."""
    w, h = size
    t = i / max(1, frames - 1)
    side = int(min(w, h) * (1.0 + 0.5 * t))
    return int(-0.08 * w + 0.4 * w * t), int(-0.15 * side * t), side


def head_box(i: int, frames: int, size: tuple[int, int]) -> tuple[float, float, float, float]:
    """Ground truth: where the head is on displayed frame ``i`` of a clip of ``size``."""
    x, y, side = _placement(i, frames, size)
    k = side / _PHOTO_SIDE
    x0, y0, x1, y1 = HEAD_IN_PHOTO
    return x + x0 * k, y + y0 * k, x + x1 * k, y + y1 * k


def _display_frames(size: tuple[int, int], frames: int) -> Iterator[np.ndarray]:
    """BGR frames of the astronaut moving right and zooming in over a soft pattern."""
    w, h = size
    photo = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for i in range(frames):
        t = i / max(1, frames - 1)
        bg = np.stack(
            [
                70 + 40 * np.sin(xx / 90 + 3 * t),
                90 + 30 * np.cos(yy / 70),
                np.full_like(xx, 110),
            ],
            axis=-1,
        ).astype(np.uint8)
        x, y, side = _placement(i, frames, size)
        photo_i = cv2.resize(photo, (side, side), interpolation=cv2.INTER_AREA)
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + side, w), min(y + side, h)
        bg[y0:y1, x0:x1] = photo_i[y0 - y : y1 - y, x0 - x : x1 - x]
        yield bg


def make_face_clip(
    path: Path,
    *,
    duration: float = 3.0,
    size: tuple[int, int] = (1280, 720),
    fps: int = 30,
    clockwise: int = 0,
    lufs: float = -24.0,
) -> Path:
    """An MP4 of a moving, zooming face with the speech-like voice of :mod:`tests.mediagen`.

    Args:
        path: Output .mp4.
        duration: Seconds.
        size: Displayed ``(width, height)``.
        fps: Frame rate.
        clockwise: Store the picture turned and add a display matrix that turns
            it back (90 or 270: a phone's portrait clip), like :func:`mg.make_portrait_rotated`.
        lufs: Loudness of the voice.

    Returns:
        ``path``.
    """
    frames = round(duration * fps)
    w, h = size
    stored = (h, w) if clockwise in (90, 270) else (w, h)
    turns = {0: 0, 90: 1, 180: 2, 270: 3}[clockwise]  # np.rot90 turns anticlockwise

    def chunks() -> Iterator[bytes]:
        for frame in _display_frames(size, frames):
            yield np.ascontiguousarray(np.rot90(frame, turns)).tobytes()

    with tempfile.TemporaryDirectory(prefix="facegen-") as tmp:
        video, audio, muxed = Path(tmp) / "v.mp4", Path(tmp) / "a.m4a", Path(tmp) / "m.mp4"
        ffmpeg.feed(
            [
                "-v", "error", "-f", "rawvideo", "-pix_fmt", "bgr24",
                "-s", f"{stored[0]}x{stored[1]}", "-r", str(fps), "-i", "pipe:0",
                "-c:v", "libx264", "-preset", "ultrafast", "-crf", "16", "-pix_fmt", "yuv420p",
                "-y", ffmpeg.input_path(video),
            ],
            chunks(),
            timeout=TIMEOUT,
        )  # fmt: skip
        mg.make_audio_only(audio, duration=duration, lufs=lufs)
        ffmpeg.run(
            [
                "-v", "error", "-i", ffmpeg.input_path(video), "-i", ffmpeg.input_path(audio),
                "-map", "0:v", "-map", "1:a", "-c", "copy", "-shortest",
                "-y", ffmpeg.input_path(muxed if clockwise else path),
            ],
            timeout=TIMEOUT,
        )  # fmt: skip
        if clockwise:
            mg.set_display_rotation(muxed, path, clockwise)
    return Path(path)


def face_boxes(
    path: Path,
    *,
    every: int = 1,
    width: int = COUNT_WIDTH,
    detector: FaceDetector | None = None,
) -> list[list[tuple[float, float, float, float]]]:
    """The faces the detector finds on each (``every``-th) displayed frame of ``path``.

    Args:
        path: A video file.
        every: Look at every Nth frame only.
        width: Frames are scaled as the pipeline does for detection
            (:func:`processing.anonymize.analysis_grid`).
        detector: The detector; the pipeline's own by default.

    Returns:
        Per frame looked at, ``(x0, y0, x1, y1)`` boxes in pixels of the
        displayed frame.
    """
    info = mg._ffprobe(path, "-show_streams", "-select_streams", "v:0")["streams"][0]
    num, den = (int(n) for n in info["avg_frame_rate"].split("/"))
    turned = any(
        abs(int(s.get("rotation", 0))) in (90, 270) for s in info.get("side_data_list", [])
    )
    fw, fh = (info["height"], info["width"]) if turned else (info["width"], info["height"])
    small = analysis_grid((fw, fh), width)
    k = fw / small[0]
    detector = detector or FaceDetector()
    found = []
    frames = read_frames(path, FrameSpec(small[0], small[1], num / den), timeout=TIMEOUT * 3)
    for i, frame in enumerate(frames):
        if i % every == 0:
            found.append(
                [(x * k, y * k, (x + w) * k, (y + h) * k) for x, y, w, h in detector.detect(frame)]
            )
    return found
