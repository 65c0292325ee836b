"""Face detection with the Haar cascades that opencv-python-headless 4.x ships."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np

Box = tuple[int, int, int, int]
"""``(x, y, w, h)`` in the pixels of the analysed frame."""

_CASCADES = ("haarcascade_frontalface_default.xml", "haarcascade_profileface.xml")


@dataclass
class FaceDetector:
    """Frontal and profile (both directions) faces on a grayscale frame.

    Tuned to err towards finding faces (anonymization must not miss one);
    callers that only need "is there a face" can raise ``min_neighbors``.
    Cascade objects are not thread-safe, so each thread gets its own.
    """

    min_neighbors: int = 4
    scale_factor: float = 1.1
    min_size: int = 24

    def __post_init__(self) -> None:
        self._local = threading.local()

    def _cascades(self) -> list[cv2.CascadeClassifier]:
        cascades = getattr(self._local, "cascades", None)
        if cascades is None:
            cascades = []
            for name in _CASCADES:
                c = cv2.CascadeClassifier(cv2.data.haarcascades + name)  # type: ignore[attr-defined]
                if c.empty():  # pragma: no cover - a broken OpenCV install
                    raise RuntimeError(
                        f"OpenCV could not load {name}; reinstall opencv-python-headless<5"
                    )
                cascades.append(c)
            self._local.cascades = cascades
        return cascades

    def detect(self, gray: np.ndarray) -> list[Box]:
        """Every face found in ``gray`` (uint8, 2-D)."""
        img = cv2.equalizeHist(gray)
        frontal, profile = self._cascades()
        found: list[Box] = []
        w = img.shape[1]
        for cascade, flipped in ((frontal, False), (profile, False), (profile, True)):
            src = cv2.flip(img, 1) if flipped else img
            for x, y, bw, bh in cascade.detectMultiScale(
                src,
                scaleFactor=self.scale_factor,
                minNeighbors=self.min_neighbors,
                minSize=(self.min_size, self.min_size),
            ):
                x = w - x - bw if flipped else x
                found.append((int(x), int(y), int(bw), int(bh)))
        return found
