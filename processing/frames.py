"""Decoded frames for analysis: downscaled, as numpy arrays, one at a time."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import graph, runner


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
    log_file: Path | None = None,
) -> Generator[np.ndarray, None, None]:
    """Yield frames of ``path`` at ``spec.fps`` from t=0, sized ``spec.width x spec.height``.

    Uses the same ``fps=…:start_time=0`` as the encode, so frame ``i`` here is
    frame ``i`` of the rendered clip (before it is fitted into the output frame).
    Frames are ``uint8`` arrays of shape (h, w) for gray or (h, w, 3) for RGB.
    ``log_file`` gets the command and ffmpeg's stderr (without tags).
    """
    pix_fmt, depth = ("gray", 1) if spec.gray else ("rgb24", 3)
    clip = graph.input_file(path, **({"t": f"{duration:.6f}"} if duration is not None else {}))
    pic = graph.filt(clip["v:0"], "fps", spec.fps, start_time=0)
    pic = graph.filt(pic, "scale", spec.width, spec.height, flags="area")
    pic = graph.filt(pic, "setsar", 1)
    raw = graph.output(pic, "pipe:1", f="rawvideo", pix_fmt=pix_fmt)
    args = ["-v", "error", *graph.compile_args(raw, overwrite=False)]
    size = spec.width * spec.height * depth
    shape = (spec.height, spec.width) if spec.gray else (spec.height, spec.width, 3)
    for chunk in runner.stream(args, size, timeout=timeout, log_file=log_file):
        yield np.frombuffer(chunk, np.uint8).reshape(shape)
