"""The filters of a 9:16 or 1:1 rendition, as ffmpeg-python nodes, from a :class:`.CropPath`.

``crop``: one ``crop`` whose ``x`` and ``y`` are piecewise-linear expressions of
``t`` (evaluated per frame, https://ffmpeg.org/ffmpeg-filters.html#crop), then
scaled to the rendition's frame. The expression is a flat sum of clipped ramps,
one per segment of the path, rather than nested ``if``: its length and the
parser's depth grow by one term per key, whatever the clip's length.

``fill`` and ``native``: the whole picture fitted into the frame over a blurred,
darkened copy of itself, as the 16:9 clip does for portrait uploads; only
scaled when the aspects already match.

The input stream must be the picture the plan was made for: ``path.source``
in size, square pixels, frame ``n`` at ``t = n / fps`` from 0 (the encode's
``fps=N:start_time=0``), and already anonymized when the clip asks for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import ffmpeg

from ..fitting import BG_REDUCTION, fit
from .reframe import CropPath


def ramp_expression(frames: list[int], values: list[float], fps: int) -> str:
    """An ffmpeg expression of ``t`` through ``(frame / fps, value)``, linear in between.

    Before the first and after the last point it holds the end value. Two
    points one frame apart make a jump (a cut) that lands exactly on the frame.
    """
    if not values:
        return "0"
    terms = [f"{values[0]:.2f}"]
    for i in range(1, len(values)):
        step = values[i] - values[i - 1]
        if abs(step) < 0.005:
            continue
        start, span = frames[i - 1] / fps, (frames[i] - frames[i - 1]) / fps
        terms.append(f"{step:+.2f}*clip((t-{start:.6f})/{span:.6f},0,1)")
    return "".join(terms)


def crop_expressions(path: CropPath) -> tuple[str, str]:
    """The ``x`` and ``y`` expressions of ``path``'s window."""
    frames = [k.frame for k in path.keys]
    return (
        ramp_expression(frames, [k.x for k in path.keys], path.fps),
        ramp_expression(frames, [k.y for k in path.keys], path.fps),
    )


def rendition_nodes(
    stream: ffmpeg.nodes.FilterableStream,
    path: CropPath,
    *,
    scale_args: Mapping[str, str] | None = None,
) -> ffmpeg.nodes.FilterableStream:
    """``stream`` (the clip's picture) laid out in ``path.output``, square pixels.

    Args:
        stream: The picture the plan was made for (see the module's notes).
        path: From :func:`.reframe.plan_reframe`.
        scale_args: Extra ``scale`` options for every scale of the picture, such as
            the 16:9 encode's colour conversion (``out_color_matrix="bt709"``).

    Returns:
        A stream of ``path.output`` size; captions and ``format`` come after.
    """
    extra = dict(scale_args or {})
    w, h = path.output
    if path.layout != "crop":
        return fill_nodes(stream, path.source, path.output, scale_args=extra)
    x, y = crop_expressions(path)
    cw, ch = path.window
    # exact=1: odd x/y allowed, so a slow pan moves 1 px at a time, not 2 (chroma is subsampled).
    cropped = stream.filter("crop", w=cw, h=ch, x=x, y=y, exact=1)
    return cropped.filter("scale", w, h, flags="bicubic", **extra).filter("setsar", 1)


def fill_nodes(
    stream: ffmpeg.nodes.FilterableStream,
    source: tuple[int, int],
    output: tuple[int, int],
    *,
    scale_args: Mapping[str, str] | None = None,
) -> ffmpeg.nodes.FilterableStream:
    """``stream`` fitted whole into ``output`` over a blurred copy of itself (no crop)."""
    extra = dict(scale_args or {})
    w, h = output
    fw, fh = fit(source, output)
    if (fw, fh) == output:
        return stream.filter("scale", w, h, flags="bicubic", **extra).filter("setsar", 1)
    parts = stream.split()
    bw, bh = w // BG_REDUCTION, h // BG_REDUCTION
    # Blurred at an eighth of the frame (cheap), as the 16:9 clip's background.
    bg = (
        parts[0]
        .filter("scale", bw, bh, force_original_aspect_ratio="increase", **extra)
        .filter("crop", bw, bh)
        .filter("boxblur", luma_radius=6, luma_power=2)
        .filter("eq", brightness=-0.08, saturation=0.8)
        .filter("scale", w, h, flags="bilinear")
        .filter("setsar", 1)
    )
    fg = parts[1].filter("scale", fw, fh, flags="bicubic", **extra).filter("setsar", 1)
    return ffmpeg.overlay(bg, fg, x="(W-w)/2", y="(H-h)/2", format="auto")


def rendition_streams(
    picture: ffmpeg.nodes.FilterableStream,
    paths: Sequence[CropPath],
    *,
    scale_args: Mapping[str, str] | None = None,
) -> tuple[ffmpeg.nodes.FilterableStream, list[ffmpeg.nodes.FilterableStream]]:
    """One decoded picture shared by the 16:9 clip and every rendition (issue 17: one decode).

    Args:
        picture: The clip's picture (see the module's notes).
        paths: One plan per rendition to make.
        scale_args: As :func:`rendition_nodes`.

    Returns:
        The stream the 16:9 graph goes on with, and each rendition's stream, in
        the order of ``paths``; every one becomes an output of the same command.
    """
    if not paths:
        return picture, []
    copies = picture.split()
    return copies[0], [
        rendition_nodes(copies[i + 1], p, scale_args=scale_args) for i, p in enumerate(paths)
    ]
