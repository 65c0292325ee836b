"""A supporter's still photo and message, made into a short clip with a slow zoom (moviepy).

Some supporters cannot film themselves and send a photo (JPEG, PNG or WebP)
and a few words instead (the sidecar's ``message``). The health check refuses
a still image, so an upload named ``.jpg``, ``.jpeg``, ``.png`` or ``.webp``
(:func:`is_photo`) is first made into a short video by :func:`photo_clip`
(:mod:`processing.clip.still`, called by the driver before the stages), and
the pipeline then treats that video like any other upload: it is fitted
into the frame, captioned, given its silent soundtrack, encoded once with the
campaign settings, verified and measured. That keeps the photo off the
per-clip hot path (one extra, short encode for the few photo uploads; none
for the videos) and out of the cache, scrubbing and checks, which it could
otherwise bypass. moviepy is imported only when a photo is composed, so a
run without photos never loads it.

Why moviepy here and not a filter graph: the zoom is a sub-pixel affine
warp per frame, computed in Python with an ease in and out (ffmpeg's
``zoompan`` moves its window in whole pixels, so a slow zoom judders), and
the message is a timed text layer faded in over it, shaped by Pillow with
libraqm (Arabic joins, right-to-left order) in a font fontconfig chooses
for the message's characters. moviepy composes the frames; the project's
runner encodes them (:func:`processing.runner.feed`), so the timeout,
PDEATHSIG and the submission's log apply as to every other ffmpeg call.

Only the photo's pixels reach the clip: Pillow decodes it, the orientation
tag is applied to the pixels, and every EXIF field (GPS position, camera,
owner, dates) stays behind with the file; the encode writes no metadata.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from . import graph, runner
from .config import Config
from .errors import Rejection
from .fitting import fit
from .fsutil import atomic_output

if TYPE_CHECKING:
    from moviepy import CompositeVideoClip

#: Length of a photo clip, and how much closer the view is at its end.
PHOTO_SECONDS = 6.0
ZOOM = 0.12
#: When the message fades in, and how long the fade takes.
MESSAGE_START = 0.8
MESSAGE_FADE = 0.6
#: Image formats accepted (Pillow's names), and the upload names that are photos.
FORMATS = ("JPEG", "PNG", "WEBP")
SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
#: Bumped when the look of a photo clip changes, so cached photo clips are made again.
STYLE = 1


def is_photo(key: str) -> bool:
    """Whether the upload ``key`` is a photo to be made into a clip (by its name)."""
    return key.lower().endswith(SUFFIXES)


def settings() -> dict[str, float]:
    """What a photo clip's look depends on besides the photo, the message and the config."""
    return {
        "seconds": PHOTO_SECONDS,
        "zoom": ZOOM,
        "message_start": MESSAGE_START,
        "message_fade": MESSAGE_FADE,
        "style": STYLE,
    }


def exif_values(path: Path) -> list[tuple[str, str]]:
    """The photo's EXIF text values, ``(tag name, value)``, for the scrub check to search for.

    Text tags of the main, Exif and GPS directories (camera make, owner,
    dates), and the GPS position as decimal degrees. Unreadable EXIF gives
    what could be read: this only adds needles to a byte search.
    """
    found: list[tuple[str, str]] = []
    try:
        with Image.open(path) as img:
            exif = img.getexif()
            folders = [exif, exif.get_ifd(ExifTags.IFD.Exif), exif.get_ifd(ExifTags.IFD.GPSInfo)]
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return found
    for folder in folders:
        for tag, value in folder.items():
            name = ExifTags.TAGS.get(tag) or ExifTags.GPSTAGS.get(tag) or str(tag)
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            if isinstance(value, str):
                found.append((name, value.strip("\x00 ")))
            elif isinstance(value, tuple) and len(value) == 3:  # degrees, minutes, seconds
                try:
                    deg = float(value[0]) + float(value[1]) / 60 + float(value[2]) / 3600
                except (TypeError, ValueError, ZeroDivisionError):
                    continue
                found.append((name, f"{deg:.4f}"))
    return found


def load_photo(path: Path, max_pixels: int) -> np.ndarray:
    """The photo's pixels as RGB, turned as its orientation tag says; nothing else of the file.

    Raises:
        Rejection: Not a readable JPEG, PNG or WebP, or more than ``max_pixels``.
    """
    Image.MAX_IMAGE_PIXELS = max_pixels  # Pillow refuses a decompression bomb past 2x this
    try:
        with Image.open(path) as img:
            if img.format not in FORMATS:
                raise Rejection(
                    "not_photo", f"This is a {img.format} image: send a JPEG, PNG or WebP."
                )
            if img.width * img.height > max_pixels:
                raise Rejection(
                    "bad_frame_size", f"The photo is {img.width}x{img.height}: too big."
                )
            upright = ImageOps.exif_transpose(img)
            return np.asarray(upright.convert("RGB"))
    except UnidentifiedImageError as exc:  # its text names the file's path: not for the report
        raise Rejection(
            "not_photo", "The photo cannot be read: it is not a JPEG, PNG or WebP image."
        ) from exc
    except (Image.DecompressionBombError, OSError, SyntaxError, ValueError) as exc:
        # Pillow says SyntaxError for a broken PNG chunk, OSError for a truncated JPEG.
        why = " ".join(str(exc).replace(str(path), "the photo").split())[:160]
        raise Rejection("not_photo", f"The photo cannot be read ({why}).") from exc


def message_font(text: str, family: str) -> str:
    """A font file of ``family`` (or fontconfig's nearest) with every character of ``text``."""
    charset = " ".join(f"{ord(c):x}" for c in sorted(set(text)) if not c.isspace())
    pattern = f"{family}:charset={charset}" if charset else family
    found = subprocess.run(
        ["fc-match", "-f", "%{file}", pattern],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return found.stdout.strip()


def zoomed(still: np.ndarray, progress: float, size: tuple[int, int]) -> np.ndarray:
    """The frame at ``progress`` (0-1) of the zoom: ``still`` warped with sub-pixel precision.

    ``still`` is the photo at ``1 + ZOOM`` times ``size``; the view starts
    showing all of it and ends ``1 + ZOOM`` closer, both about its centre,
    easing in and out (smoothstep) so the motion starts and stops softly.
    """
    w, h = size
    ease = progress * progress * (3 - 2 * progress)
    k = (1 + ZOOM * ease) / (1 + ZOOM)
    cx, cy = (still.shape[1] - 1) / 2, (still.shape[0] - 1) / 2
    m = np.array([[k, 0, (w - 1) / 2 - k * cx], [0, k, (h - 1) / 2 - k * cy]], np.float64)
    return cv2.warpAffine(still, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def compose(
    rgb: np.ndarray, size: tuple[int, int], message: str | None, font: str, seconds: float
) -> CompositeVideoClip:
    """The moviepy clip: the photo zooming slowly, the message fading in over its middle."""
    from moviepy import CompositeVideoClip, TextClip, VideoClip, vfx  # only when a photo comes

    w, h = size
    big = (round(w * (1 + ZOOM)), round(h * (1 + ZOOM)))
    still = cv2.resize(rgb, big, interpolation=cv2.INTER_AREA)
    layers: list[Any] = [
        VideoClip(lambda t: zoomed(still, min(1.0, t / seconds), size), duration=seconds)
    ]
    if message:
        px = max(12, round(h / 14))
        # The box is sized here: moviepy 2.2 measures a caption's height too
        # small and cuts the top of the letters off.
        text = TextClip(
            font=font, text=message, font_size=px, color="white", stroke_color="black",
            stroke_width=max(1, round(h / 360)), method="caption",
            size=(round(w * 0.8), 4 * px), text_align="center",
        )  # fmt: skip
        text = text.with_start(MESSAGE_START).with_duration(seconds - MESSAGE_START)
        text = text.with_position(("center", "center")).with_effects(
            [vfx.CrossFadeIn(MESSAGE_FADE)]
        )
        layers.append(text)
    return CompositeVideoClip(layers, size=size).with_duration(seconds)


def photo_clip(
    photo: Path,
    dst: Path,
    cfg: Config,
    *,
    message: str | None = None,
    seconds: float = PHOTO_SECONDS,
    log_file: Path | None = None,
) -> Path:
    """Write ``dst``, an MP4 of ``photo`` zooming slowly with ``message`` over it, for the pipeline.

    The clip has the photo's aspect at most the output frame's size (the
    pipeline fits it like any upload) and no sound (the pipeline adds silence).
    It is encoded nearly losslessly (CRF 12) since the pipeline encodes it again.

    Raises:
        Rejection: The photo is not a readable JPEG, PNG or WebP.
    """
    out = cfg.output
    rgb = load_photo(photo, cfg.limits.max_pixels)
    w, h = fit((rgb.shape[1], rgb.shape[0]), (out.width, out.height))
    font = message_font(message or "", cfg.captions.font)
    clip = compose(rgb, (w, h), message, font, seconds)

    def frames() -> Iterator[bytes]:
        for frame in clip.iter_frames(fps=out.fps, dtype="uint8"):
            yield np.ascontiguousarray(frame[:, :, :3]).tobytes()

    raw = graph.pipe_input(f="rawvideo", pix_fmt="rgb24", s=f"{w}x{h}", r=out.fps)
    pic = graph.filt(raw, "scale", out_color_matrix="bt709", out_range="tv")
    with atomic_output(dst) as part:
        encoded = graph.output(
            pic, runner.input_path(part), f="mp4", pix_fmt="yuv420p", crf=12, preset="veryfast",
            colorspace="bt709", color_primaries="bt709", color_trc="bt709", color_range="tv",
            map_metadata="-1", fflags="+bitexact", **{"c:v": "libx264"},
        )  # fmt: skip
        runner.feed(
            ["-v", "error", *graph.compile_args(encoded)],
            frames(),
            timeout=cfg.limits.timeout_for(seconds),
            log_file=log_file,
        )
    return dst
