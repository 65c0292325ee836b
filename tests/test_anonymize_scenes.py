"""Anonymization of hard scenes: groups, a small face, a tilting head, a head turning to profile
and back, dim and backlit light, a face entering mid-clip, a turned phone clip.

Each clip is scikit-image's astronaut photograph (a real face) composited into a
short clip (:mod:`mediagen.faces`). The mask is drawn by the CNN (BlazeFace);
the output is checked here by two detectors on two frames a second: OpenCV's
Haar cascades (independent of the mask) and the CNN itself. A face counts when
it is found on a head (ground truth from the generator, mapped through the fit
into the output frame) or anywhere outside the fitted clip (the blurred fill).

The turning head is simulated: scikit-image ships no profile photo of a person,
so the (flat) photograph is turned about the head's vertical axis in
perspective (:func:`mediagen.faces.turned`), up to 75 degrees of apparent yaw and
back. The face is foreshortened, not a real profile (no nose in silhouette, no
ear); past 60 degrees neither the CNN nor Haar finds it in the input, so the
mask must cover the turn from what it saw before and after (fail-safe spans,
clip coverage). The sampled frames at full turn prove only that no detector
sees a face there, which they could not in the input either.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from mediagen.faces import Person, Scene, head_boxes, make_face_clip
from processing.config import load_config
from processing.faces import BlazeFace, FaceDetector
from processing.frames import FrameSpec, read_frames
from processing.normalize import fit
from tests.test_anonymize import ANON, SMALL, Rendered, _render

FPS = 30
FRAMES = 60  # 2 s
OUT = (SMALL["width"], SMALL["height"])
#: Output frames looked at a second (the issue asks for at least 2).
CHECK_FPS = 2
#: Greatest apparent yaw of the turning head; past FINDABLE_YAW the CNN does not find it.
PROFILE_YAW = 75.0
FINDABLE_YAW = 60.0


def _at(x: float, y: float, side: float, dx: float = 0.0) -> Person:
    return Person(lambda t: (x + dx * t, y, side, 0.0))


def _tilting(t: float) -> tuple[float, float, float, float]:
    return 140, 0, 360, 30 * math.sin(2 * math.pi * t)


def _entering(t: float) -> tuple[float, float, float, float]:
    return 640 - 460 * min(1.0, max(0.0, (t - 0.4) / 0.4)), 0, 360, 0.0


def _turning(t: float) -> float:
    """Apparent yaw: frontal, turned 75 degrees (the detectors lose the face), frontal again."""
    return PROFILE_YAW * math.sin(math.pi * t)


def _small(t: float) -> tuple[float, float, float, float]:
    # Head 45 px wide, the face (BlazeFace's box) about 30 px: 60 px in 1080p.
    return 80 + 600 * t, 200 + 60 * t, 154, 0.0


#: name: (displayed size, scene, clockwise rotation flag)
SCENES: dict[str, tuple[tuple[int, int], Scene, int]] = {
    "two.mp4": ((640, 360), Scene((_at(0, 10, 330, 20), _at(310, 0, 330, -20))), 0),
    "three.mp4": (
        (640, 360),
        Scene((_at(-10, 40, 240, 10), _at(200, 20, 240), _at(410, 40, 240, -10))),
        0,
    ),
    "small.mp4": ((960, 540), Scene((Person(_small),)), 0),
    "tilt.mp4": ((640, 360), Scene((Person(_tilting),)), 0),
    "dim.mp4": ((640, 360), Scene((_at(100, 0, 360, 60),), gain=0.3, offset=8), 0),
    "backlit.mp4": ((640, 360), Scene((_at(100, 0, 360, 60),), backlit=True), 0),
    "enter.mp4": ((640, 360), Scene((Person(_entering),)), 0),
    "phone.mp4": ((360, 640), Scene((_at(0, 150, 360, 0),)), 90),
    "profile.mp4": ((640, 360), Scene((Person(_at(120, 0, 360, 60).place, _turning),)), 0),
}


@pytest.fixture(scope="module")
def scene_clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("scenes")
    return {
        key: make_face_clip(
            root / key, duration=FRAMES / FPS, size=size, scene=scene, clockwise=turn
        )
        for key, (size, scene, turn) in SCENES.items()
    }


@pytest.fixture(scope="module")
def scenes_rendered(
    scene_clips: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Rendered:
    uploads = {key: (clip, ANON) for key, clip in scene_clips.items()}
    return _render(
        tmp_path_factory.mktemp("scenes-out"), uploads, load_config(overrides={"output": SMALL})
    )


Detect = Callable[[np.ndarray], list[tuple[int, int, int, int]]]


def _detectors() -> dict[str, Detect]:
    haar = FaceDetector(min_neighbors=3)
    cnn = BlazeFace(min_score=0.5)
    return {
        "haar": lambda rgb: haar.detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)),
        "cnn": cnn.detect,
    }


def faces_on_heads(path: Path, key: str, out: tuple[int, int], per_second: float) -> dict:
    """Per detector, the sampled frames (indexes) showing a face on a head or beside the clip."""
    size, scene, _ = SCENES[key]
    fw, fh = fit(size, out)
    ox, oy, k = (out[0] - fw) / 2, (out[1] - fh) / 2, fw / size[0]
    found: dict[str, list[int]] = {name: [] for name in _detectors()}
    detectors = _detectors()
    # Every frame is decoded and every (FPS / per_second)-th looked at: ffmpeg's fps
    # filter would pick frames at times of its own, and the ground truth needs the index.
    every = round(FPS / per_second)
    frames = read_frames(path, FrameSpec(out[0], out[1], FPS, gray=False), timeout=300)
    for n, rgb in enumerate(frames):
        if n % every:
            continue
        t = min(1.0, n / (FRAMES - 1))
        heads = [(ox + x0 * k, oy + y0 * k, ox + x1 * k, oy + y1 * k) for x0, y0, x1, y1 in
                 head_boxes(scene, t)]  # fmt: skip
        for name, detect in detectors.items():
            for x, y, w, h in detect(np.ascontiguousarray(rgb)):
                cx, cy = x + w / 2, y + h / 2
                on_head = any(a <= cx <= c and b <= cy <= d for a, b, c, d in heads)
                beside = not (ox <= cx <= ox + fw and oy <= cy <= oy + fh)
                if on_head or beside:
                    found[name].append(n)
    return {name: sorted(set(v)) for name, v in found.items()}


@pytest.mark.parametrize("key", list(SCENES))
def test_the_input_shows_its_faces(scene_clips: dict[str, Path], key: str) -> None:
    """Guards the test below: the CNN finds a face on the heads of most input frames.

    The turning head is found while it is turned less than :data:`FINDABLE_YAW`
    and lost beyond: the mask must then hide a face its own detector cannot see.
    """
    size, scene, _ = SCENES[key]
    found = faces_on_heads(scene_clips[key], key, size, CHECK_FPS)
    every = FPS // CHECK_FPS
    # Sampled frames where the centre of at least one head is in the picture.
    shown = [
        n
        for n in range(0, FRAMES, every)
        for x0, y0, x1, y1 in head_boxes(scene, n / (FRAMES - 1))[:1]
        if 0 <= (x0 + x1) / 2 <= size[0] and 0 <= (y0 + y1) / 2 <= size[1]
    ]
    yaw = scene.people[0].yaw
    turned = [n for n in shown if yaw and abs(yaw(n / (FRAMES - 1))) > FINDABLE_YAW]
    assert turned or key != "profile.mp4", "the head must turn past what the CNN finds"
    assert shown and found["cnn"] == [n for n in shown if n not in turned], found


@pytest.mark.slow
@pytest.mark.parametrize("key", list(SCENES))
def test_no_sampled_output_frame_shows_a_face(scenes_rendered: Rendered, key: str) -> None:
    entry = scenes_rendered.entries[key]
    assert entry.status == "accepted", entry.reason
    found = faces_on_heads(scenes_rendered.clip(key), key, OUT, CHECK_FPS)
    assert found == {"haar": [], "cnn": []}


@pytest.mark.parametrize("key", list(SCENES))
def test_clips_with_findable_faces_are_not_blurred_whole(
    scenes_rendered: Rendered, key: str
) -> None:
    info = scenes_rendered.entries[key].anonymization
    assert info is not None
    assert not info["whole_frame_blurred"] and info["hidden_share"] < 0.8, info
    assert info["frames_checked"] >= 2 * FRAMES / FPS and info["faces_found"] == 0, info
