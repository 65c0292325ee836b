"""Decoded frames for analysis: downscaled, as numpy arrays, one at a time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import runner


@dataclass(frozen=True)
class FrameSpec:
    """How to sample frames: output rate and size (after ffmpeg's auto-rotation)."""

    width: int
    height: int
    fps: float
    gray: bool = True


def analysis_size(display: tuple[int, int], max_width: int) -> tuple[int, int]:
    """``display`` scaled to at most ``max_width`` wide, even dimensions."""
    w, h = display
    if w > max_width:
        h = round(h * max_width / w)
        w = max_width
    return max(2, w - w % 2), max(2, h - h % 2)


def read_frames(
    path: Path,
    spec: FrameSpec,
    *,
    duration: float | None = None,
    timeout: float | None = None,
) -> Iterator[np.ndarray]:
    """Yield frames of ``path`` at ``spec.fps`` from t=0, sized ``spec.width x spec.height``.

    Uses the same ``fps=…:start_time=0`` as the encode, so frame ``i`` here is
    frame ``i`` of the rendered clip (before it is fitted into the output frame).
    Frames are ``uint8`` arrays of shape (h, w) for gray or (h, w, 3) for RGB.
    """
    pix_fmt, depth = ("gray", 1) if spec.gray else ("rgb24", 3)
    args: list[str] = ["-v", "error"]
    if duration is not None:
        args += ["-t", f"{duration:.6f}"]
    args += [
        "-i", runner.input_path(path),
        "-map", "0:v:0",
        "-vf", f"fps={spec.fps}:start_time=0,scale={spec.width}:{spec.height}:flags=area,setsar=1",
        "-f", "rawvideo", "-pix_fmt", pix_fmt, "pipe:1",
    ]  # fmt: skip
    size = spec.width * spec.height * depth
    shape = (spec.height, spec.width) if spec.gray else (spec.height, spec.width, 3)
    for chunk in runner.stream(args, size, timeout=timeout):
        yield np.frombuffer(chunk, np.uint8).reshape(shape)
