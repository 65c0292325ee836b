"""Poster frames and contact sheets of rendered clips, for the review page.

One decode per clip pulls :data:`SHEET_FRAMES` evenly spaced frames (small,
RGB); the poster is one of them at a larger size, the contact sheet is all of
them tiled with their timestamps drawn by OpenCV. Both are small JPEGs cached
next to the page under a name that includes the clip's render key and file
signature (:func:`thumb_key`), so each is built once per rendered clip and a
clip rendered again never shows its old pictures (:func:`prune_pictures`).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from . import runner
from .errors import FFmpegError
from .fsutil import atomic_output

#: Frames on a contact sheet, and its layout (columns x rows).
SHEET_FRAMES = 8
SHEET_COLUMNS = 4
#: Width of one tile of the sheet, and of the poster.
TILE_WIDTH = 240
POSTER_WIDTH = 480
JPEG_QUALITY = 72


@dataclass(frozen=True)
class Thumbs:
    """The poster and contact sheet of one clip."""

    poster: Path
    sheet: Path
    times: tuple[float, ...]
    """Seconds into the clip of each tile."""


def thumbs(
    clip: Path,
    folder: Path,
    key: str,
    *,
    frame: tuple[int, int],
    duration: float,
    keyframe_seconds: float | None = None,
    timeout: float | None = None,
    log_file: Path | None = None,
) -> Thumbs:
    """Build (or reuse) the poster and contact sheet of ``clip`` in ``folder``.

    Args:
        clip: A rendered clip.
        folder: Where the JPEGs are kept.
        key: Names them; changes when the clip is rendered again (its id and render key).
        frame: The clip's width and height.
        duration: Its length in seconds.
        keyframe_seconds: The clip's keyframe interval, when it is the pipeline's
            own encode (a keyframe exactly every so many seconds from 0): a clip
            with a keyframe in every tile's slice shows its keyframes, and only
            they are decoded (a tenth of the frames or fewer). Otherwise the
            frames at the slices' middles (every reference frame decoded).
        timeout: Seconds the decode may take.
        log_file: The submission's log, for the decode's command and stderr.

    Raises:
        FFmpegError: The clip could not be decoded.
    """
    poster, sheet = folder / f"{key}-poster.jpg", folder / f"{key}-sheet.jpg"
    step = duration / SHEET_FRAMES if duration > 0 else 1.0
    # Each tile shows the middle of its slice of the clip, never the very first frame.
    times = tuple(round((i + 0.5) * step, 2) for i in range(SHEET_FRAMES))
    k = keyframe_seconds or 0.0
    keyed = 0 < k <= step  # each slice holds a keyframe
    if keyed:  # the keyframe nearest each slice's middle: distinct, as slices are >= k apart
        times = tuple(k * math.floor(t / k + 0.5) for t in times)
    if poster.is_file() and sheet.is_file():
        return Thumbs(poster, sheet, times)
    w = POSTER_WIDTH
    h = max(2, round(frame[1] * w / frame[0] / 2) * 2)
    if keyed:
        keys = _key_frames(clip, w, h, timeout, log_file)
        picked = [min(len(keys) - 1, round(t / k)) for t in times]
        frames = [keys[i] for i in picked] if keys else []
    else:
        frames = list(_frames(clip, w, h, times, timeout, log_file))
    if not frames:
        raise FFmpegError(f"no frames decoded from {clip.name}", [], None, "")
    folder.mkdir(parents=True, exist_ok=True)
    _write_jpeg(poster, frames[min(len(frames) - 1, len(frames) // 3)])
    _write_jpeg(sheet, contact_sheet(frames, times[: len(frames)]))
    return Thumbs(poster, sheet, times)


def thumb_key(clip: Path, sid: str, render_key: str | None) -> str:
    """Names a clip's pictures: its id, render key and the clip file's size and time.

    A clip rendered again (blurred now, say) gets new pictures, never the old ones.
    """
    try:
        st = clip.stat()
        stamp = f"{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        stamp = "missing"
    return f"{sid}-{render_key or 'x'}-{hashlib.sha256(stamp.encode()).hexdigest()[:8]}"


def prune_pictures(folder: Path, keys: set[str]) -> list[Path]:
    """Delete the pictures in ``folder`` not named by ``keys`` (re-rendered, withdrawn, gone).

    Returns:
        The files removed.
    """
    removed = []
    for path in sorted(folder.glob("*.jpg")) if folder.is_dir() else []:
        if path.name.rsplit("-", 1)[0] not in keys:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def contact_sheet(frames: list[np.ndarray], times: tuple[float, ...]) -> np.ndarray:
    """Tile ``frames`` (RGB) :data:`SHEET_COLUMNS` across with a timestamp on each."""
    h0, w0 = frames[0].shape[:2]
    tw = TILE_WIDTH
    th = max(2, round(h0 * tw / w0))
    tiles = []
    for img, t in zip(frames, times, strict=True):
        tile = cv2.resize(img, (tw, th), interpolation=cv2.INTER_AREA)
        label = f"{int(t // 60)}:{t % 60:04.1f}"
        cv2.rectangle(tile, (0, th - 20), (8 + 9 * len(label), th), (16, 16, 24), -1)
        cv2.putText(
            tile, label, (4, th - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1,
            cv2.LINE_AA,
        )  # fmt: skip
        tiles.append(tile)
    while len(tiles) % SHEET_COLUMNS:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i : i + SHEET_COLUMNS]) for i in range(0, len(tiles), SHEET_COLUMNS)]
    return np.vstack(rows)


def _frames(
    clip: Path,
    w: int,
    h: int,
    times: tuple[float, ...],
    timeout: float | None,
    log_file: Path | None = None,
) -> list[np.ndarray]:
    """RGB frames at ``times`` (evenly spaced), one decode: the first at or after each.

    A ``select`` keeps the first frame of each slot ``[times[i], times[i] + step)``,
    which is what an accurate seek to the time printed under the tile shows (or the
    next reference frame: the others are not decoded). (The
    fps filter did not: with its default rounding each slot took a frame up to half
    a slot later than its time, and the last slot was often empty.)
    """
    t0 = times[0]
    step = (times[-1] - t0) / (len(times) - 1) if len(times) > 1 else 1.0
    slot = f"floor((t-{t0:.6f})/{step:.6f})"
    first = f"gt({slot},floor((prev_selected_t-{t0:.6f})/{step:.6f}))"
    select = f"select='gte(t,{t0:.6f})*(isnan(prev_selected_t)+{first})'"
    args = [
        "-v", "error", "-skip_frame", "noref", "-i", runner.input_path(clip), "-map", "0:v:0",
        "-vf", f"{select},scale={w}:{h}:flags=area", "-fps_mode", "passthrough",
        "-frames:v", str(len(times)), "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1",
    ]  # fmt: skip
    return [
        np.frombuffer(chunk, np.uint8).reshape(h, w, 3).copy()
        for chunk in runner.stream(args, w * h * 3, timeout=timeout, log_file=log_file)
    ]


def _key_frames(
    clip: Path, w: int, h: int, timeout: float | None, log_file: Path | None
) -> list[np.ndarray]:
    """Every keyframe of ``clip`` as RGB, in order (nothing else is decoded)."""
    args = [
        "-v", "error", "-skip_frame", "nokey", "-i", runner.input_path(clip), "-map", "0:v:0",
        "-vf", f"scale={w}:{h}:flags=area", "-fps_mode", "passthrough",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1",
    ]  # fmt: skip
    return [
        np.frombuffer(chunk, np.uint8).reshape(h, w, 3).copy()
        for chunk in runner.stream(args, w * h * 3, timeout=timeout, log_file=log_file)
    ]


def _write_jpeg(dst: Path, rgb: np.ndarray) -> None:
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    )
    if not ok:  # pragma: no cover - OpenCV cannot fail on a valid array
        raise RuntimeError(f"OpenCV could not encode {dst.name}")
    with atomic_output(dst) as part:
        part.write_bytes(data.tobytes())
