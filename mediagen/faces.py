"""Clips with a real face in them, and a way to count faces in a rendered clip.

The face is scikit-image's ``astronaut`` photograph (NASA, public domain),
panned across and zoomed into a softly patterned frame, so the face moves,
grows and is partly cut by the frame's edge, as in a hand-held selfie.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from skimage import data

import mediagen as mg
from processing import runner
from processing.anonymize import analysis_grid
from processing.faces import FaceDetector
from processing.frames import FrameSpec, read_frames

TIMEOUT = 120.0
#: Width the Haar detector looks for faces at when these tests count them in a clip.
COUNT_WIDTH = 480


#: The head (hair to chin) in the 512x512 photograph, ``(x0, y0, x1, y1)``.
HEAD_IN_PHOTO = (150, 20, 300, 190)
_PHOTO_SIDE = 512


def head_box(i: int, frames: int, size: tuple[int, int]) -> tuple[float, float, float, float]:
    """Ground truth: where the head is on displayed frame ``i`` of :func:`make_face_clip`."""
    scene = Scene((moving_zooming(size),))
    return head_boxes(scene, i / max(1, frames - 1))[0]


@dataclass(frozen=True)
class Person:
    """One photo in a scene: where it is at ``t`` (0-1 over the clip), as ``(x, y, side, angle)``.

    ``x, y`` is the photo's top-left corner, ``side`` its size in pixels of the
    displayed frame, ``angle`` an anticlockwise tilt in degrees about its centre.
    """

    place: Callable[[float], tuple[float, float, float, float]]
    yaw: Callable[[float], float] | None = None
    """Degrees the flat photo is turned about the head's vertical axis at ``t`` (:func:`turned`)."""


def turned(side: int, yaw: float) -> np.ndarray:
    """The homography showing the ``side``-pixel photo turned ``yaw`` degrees about a vertical axis.

    The photo is a flat card rotated about the vertical line through the head's
    centre and seen in perspective (focal length twice its side): the near half
    widens a little, the far half narrows and shrinks, the whole width shrinks by
    about cos(yaw). At 60-75 degrees this is what a detector sees of a head
    turned most of the way to profile, but it is a foreshortened frontal face,
    not a real profile (no nose in silhouette, no ear): the only photo of a
    person scikit-image ships is frontal.
    """
    k = side / _PHOTO_SIDE
    cx, cy = (HEAD_IN_PHOTO[0] + HEAD_IN_PHOTO[2]) / 2 * k, side / 2
    f, a = 2.0 * side, np.radians(yaw)
    src = np.array([(0, 0), (side, 0), (side, side), (0, side)], np.float32)
    dst = []
    for x, y in src:
        z = (x - cx) * np.sin(a)
        dst.append((cx + f * (x - cx) * np.cos(a) / (f + z), cy + f * (y - cy) / (f + z)))
    return cv2.getPerspectiveTransform(src, np.array(dst, np.float32))


@dataclass(frozen=True)
class Scene:
    """People over a soft moving pattern, with the light of the whole frame."""

    people: tuple[Person, ...]
    gain: float = 1.0
    """Contrast (1 = as shot): dim light is a low gain and offset."""
    offset: float = 0.0
    backlit: bool = False
    """A bright window behind: the background near white, the people darker."""


def moving_zooming(size: tuple[int, int]) -> Person:
    """The single moving, zooming face of :func:`make_face_clip`."""

    def place(t: float) -> tuple[float, float, float, float]:
        w, h = size
        side = int(min(w, h) * (1.0 + 0.5 * t))
        return int(-0.08 * w + 0.4 * w * t), int(-0.15 * side * t), side, 0.0

    return Person(place)


def head_boxes(scene: Scene, t: float) -> list[tuple[float, float, float, float]]:
    """Ground truth: every head's ``(x0, y0, x1, y1)`` at ``t``; a tilted head's bounding box."""
    boxes = []
    for person in scene.people:
        x, y, side, angle = person.place(t)
        k = side / _PHOTO_SIDE
        x0, y0, x1, y1 = HEAD_IN_PHOTO
        corners = np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], np.float32) * k
        if person.yaw is not None:
            corners = cv2.perspectiveTransform(corners[None], turned(int(side), person.yaw(t)))[0]
        c = side / 2
        turn = cv2.getRotationMatrix2D((c, c), angle, 1.0)
        pts = corners @ turn[:, :2].T + turn[:, 2] + (x, y)
        boxes.append((*pts.min(axis=0), *pts.max(axis=0)))
    return boxes


def _paste(
    bg: np.ndarray, photo: np.ndarray, place: tuple[float, float, float, float], yaw: float = 0.0
) -> None:
    """Draw ``photo`` (square, BGR) onto ``bg`` at ``place``, turned, tilted, clipped."""
    x, y, side, angle = (int(place[0]), int(place[1]), int(place[2]), place[3])
    h, w = bg.shape[:2]
    pic: np.ndarray = cv2.resize(photo, (side, side), interpolation=cv2.INTER_AREA)
    alpha: np.ndarray = np.full((side, side), 255, np.uint8)
    if yaw:
        card = turned(side, yaw)
        pic = cv2.warpPerspective(pic, card, (side, side), flags=cv2.INTER_LINEAR)
        alpha = cv2.warpPerspective(alpha, card, (side, side), flags=cv2.INTER_LINEAR)
    if angle:
        turn = cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0)
        pic = cv2.warpAffine(pic, turn, (side, side), flags=cv2.INTER_LINEAR)
        alpha = cv2.warpAffine(alpha, turn, (side, side), flags=cv2.INTER_LINEAR)
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + side, w), min(y + side, h)
    if x1 <= x0 or y1 <= y0:
        return
    a = alpha[y0 - y : y1 - y, x0 - x : x1 - x, None].astype(np.float32) / 255
    part = pic[y0 - y : y1 - y, x0 - x : x1 - x].astype(np.float32)
    bg[y0:y1, x0:x1] = (a * part + (1 - a) * bg[y0:y1, x0:x1]).astype(np.uint8)


def scene_frames(scene: Scene, size: tuple[int, int], frames: int) -> Iterator[np.ndarray]:
    """BGR frames of ``scene``'s people over a soft moving pattern."""
    w, h = size
    photo = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    if scene.backlit:
        photo = cv2.convertScaleAbs(photo, alpha=0.35, beta=0)
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
        )
        bg = (bg * 0.3 + 175 if scene.backlit else bg).astype(np.uint8)
        for person in scene.people:
            _paste(bg, photo, person.place(t), person.yaw(t) if person.yaw else 0.0)
        if scene.gain != 1.0 or scene.offset:
            bg = cv2.convertScaleAbs(bg, alpha=scene.gain, beta=scene.offset)
        yield bg


def make_face_clip(
    path: Path,
    *,
    duration: float = 3.0,
    size: tuple[int, int] = (1280, 720),
    fps: int = 30,
    clockwise: int = 0,
    lufs: float = -24.0,
    scene: Scene | None = None,
) -> Path:
    """An MP4 of ``scene`` (a moving, zooming face) with the voice of :mod:`mediagen`.

    Args:
        path: Output .mp4.
        duration: Seconds.
        size: Displayed ``(width, height)``.
        fps: Frame rate.
        clockwise: Store the picture turned and add a display matrix that turns
            it back (90 or 270: a phone's portrait clip), like :func:`mg.make_portrait_rotated`.
        lufs: Loudness of the voice.
        scene: What is filmed; by default one face moving right and zooming in.

    Returns:
        ``path``.
    """
    frames = round(duration * fps)
    w, h = size
    stored = (h, w) if clockwise in (90, 270) else (w, h)
    turns = {0: 0, 90: 1, 180: 2, 270: 3}[clockwise]  # np.rot90 turns anticlockwise
    scene = scene or Scene((moving_zooming(size),))

    def chunks() -> Iterator[bytes]:
        for frame in scene_frames(scene, size, frames):
            yield np.ascontiguousarray(np.rot90(frame, turns)).tobytes()

    with tempfile.TemporaryDirectory(prefix="facegen-") as tmp:
        video, audio, muxed = Path(tmp) / "v.mp4", Path(tmp) / "a.m4a", Path(tmp) / "m.mp4"
        runner.feed(
            [
                "-v", "error", "-f", "rawvideo", "-pix_fmt", "bgr24",
                "-s", f"{stored[0]}x{stored[1]}", "-r", str(fps), "-i", "pipe:0",
                "-c:v", "libx264", "-preset", "ultrafast", "-crf", "16", "-pix_fmt", "yuv420p",
                "-y", runner.input_path(video),
            ],
            chunks(),
            timeout=TIMEOUT,
        )  # fmt: skip
        mg.make_audio_only(audio, duration=duration, lufs=lufs)
        runner.run(
            [
                "-v", "error", "-i", runner.input_path(video), "-i", runner.input_path(audio),
                "-map", "0:v", "-map", "1:a", "-c", "copy", "-shortest",
                "-y", runner.input_path(muxed if clockwise else path),
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
