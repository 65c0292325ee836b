"""Health check: refuse what cannot be used before spending an encode on it.

Cheap checks first (size, ffprobe, frame size, claimed duration), then one full
decode that also measures the audio loudness the encode needs, so a clip is read
exactly twice: once here and once by the encode.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from . import runner
from .config import Config
from .errors import FFmpegError, FFmpegTimeout, Rejection
from .loudness import Measurement, meter_filter, parse_ebur128
from .probe import MediaInfo, probe

_ERROR_LINE = re.compile(r"\[(error|fatal|panic)\]\s*(.*)")
STILL_IMAGE_FORMATS = {"image2", "png_pipe", "jpeg_pipe", "webp_pipe", "bmp_pipe", "tiff_pipe"}
#: Decoders that report errors this many times are considered corrupt.
MAX_DECODE_ERRORS = 0


@dataclass(frozen=True)
class Health:
    """A clip that passed: its probe, its real (decoded) length and its loudness."""

    info: MediaInfo
    decoded_duration: float
    """Seconds actually decoded, up to the maximum (the probe's duration can lie)."""
    use_duration: float
    """Seconds that will be rendered (after trimming to the configured maximum)."""
    trimmed: bool
    loudness: Measurement | None
    """Loudness after the encode's resample and downmix; None without audio."""


def audio_prefilters(sample_rate: int, voice_pitch: float | None = None) -> list[str]:
    """Resample and down/upmix to stereo, padding gaps so audio stays in sync.

    Shared by the loudness measurement and the encode so they see the same signal.

    Args:
        sample_rate: Output sample rate.
        voice_pitch: Disguise the voice by this pitch ratio (anonymization);
            rubberband keeps the tempo, so words stay intelligible and in sync.
    """
    chain = [
        f"aresample={sample_rate}:async=1:first_pts=0",
        f"aformat=sample_fmts=fltp:sample_rates={sample_rate}:channel_layouts=stereo",
    ]
    if voice_pitch is not None:
        # https://ffmpeg.org/ffmpeg-filters.html#rubberband ; formants move with the
        # pitch (the default), which changes the voice's character more than pitch alone.
        chain.append(f"rubberband=pitch={voice_pitch:.4f}:pitchq=quality:channels=together")
    return chain


def check(
    path: Path, cfg: Config, log_file: Path | None = None, *, voice_pitch: float | None = None
) -> Health:
    """Check ``path`` and return what the encode needs.

    ``voice_pitch`` is the voice disguise the encode will apply (see
    :func:`audio_prefilters`), so that loudness is measured on what is heard.

    Raises:
        Rejection: The reason a staff member can read.
    """
    lim = cfg.limits
    size = path.stat().st_size
    if size == 0:
        raise Rejection("empty", "The file is empty (0 bytes): the upload did not complete.")
    if size > lim.max_file_bytes:
        raise Rejection(
            "too_large",
            f"The file is {size / 2**20:.0f} MiB, over the {lim.max_file_bytes / 2**20:.0f} MiB "
            "limit (limits.max_file_bytes).",
        )
    info = probe(path, timeout=lim.timeout_base_seconds, log_file=log_file)
    _check_header(info, cfg)
    decoded, loudness = _decode(path, info, cfg, log_file, voice_pitch)
    if decoded < lim.min_duration:
        raise Rejection(
            "too_short",
            f"The clip lasts {decoded:.2f} s; at least {lim.min_duration:.0f} s is needed.",
        )
    if lim.over_max == "reject" and decoded > lim.max_duration + 0.5:
        raise Rejection(
            "too_long",
            f"The clip lasts {decoded:.1f} s, longer than the {lim.max_duration:.0f} s maximum.",
        )
    use = min(decoded, lim.max_duration)
    return Health(
        info=info,
        decoded_duration=decoded,
        use_duration=use,
        # The decode stops at the maximum, so the probe tells whether there was more.
        trimmed=max(decoded, info.duration) > lim.max_duration + 0.5 / cfg.output.fps,
        loudness=loudness,
    )


def _check_header(info: MediaInfo, cfg: Config) -> None:
    """Refuse, from the probe alone, what must not be decoded.

    Raises:
        Rejection: A still image, no video, a frame size or claimed length out of bounds.
    """
    lim = cfg.limits
    v = info.video
    if info.format_name in STILL_IMAGE_FORMATS or info.format_name.endswith("_pipe"):
        raise Rejection(
            "not_video",
            "This is a still image, not a video: a photo is made into a clip only when its "
            "name ends in .jpg, .png or .webp (README: A photo instead of a video).",
        )
    if v is None or v.width <= 0 or v.height <= 0:
        what = "only audio" if info.audio else "no video"
        raise Rejection(
            "no_video",
            f"The file has {what}: a video of the contributor is needed.",
        )
    if (
        min(v.width, v.height) < lim.min_side
        or max(v.width, v.height) > lim.max_side
        or v.width * v.height > lim.max_pixels
    ):
        raise Rejection(
            "bad_frame_size",
            f"The frame size {v.width}x{v.height} is outside what can be processed "
            f"({lim.min_side} to {lim.max_side} pixels a side); refused without decoding.",
        )
    if info.duration > lim.max_input_duration:
        raise Rejection(
            "too_long",
            f"The file says it lasts {_hms(info.duration)}, far over the "
            f"{_hms(lim.max_input_duration)} that can be accepted; refused without decoding.",
        )
    if lim.over_max == "reject" and info.duration > lim.max_duration:
        raise Rejection(
            "too_long",
            f"The clip lasts {info.duration:.1f} s, longer than the "
            f"{lim.max_duration:.0f} s maximum (limits.max_duration).",
        )


def _decode(
    path: Path, info: MediaInfo, cfg: Config, log_file: Path | None, voice_pitch: float | None
) -> tuple[float, Measurement | None]:
    """Decode everything that will be used; collect errors and loudness."""
    lim = cfg.limits
    window = min(info.duration or lim.max_duration, lim.max_duration)
    args = ["-loglevel", "level+info", "-t", f"{lim.max_duration:.6f}"]
    args += ["-i", runner.input_path(path), "-map", "0:v:0"]
    if info.audio:
        chain = [*audio_prefilters(cfg.output.sample_rate, voice_pitch), meter_filter()]
        args += ["-map", "0:a:0", "-af", ",".join(chain)]
    args += ["-f", "null", "-"]
    last = 0.0

    def progress(seconds: float) -> None:
        nonlocal last
        last = max(last, seconds)

    try:
        _, stderr = runner.run(
            args,
            timeout=lim.timeout_for(window) / 2,
            progress=progress,
            log_file=log_file,
        )
    except FFmpegTimeout as exc:
        raise Rejection(
            "timeout", f"Decoding the file took too long and was stopped ({exc.args[0]})."
        ) from exc
    except FFmpegError as exc:
        raise Rejection(
            "corrupt", f"The file cannot be decoded: {_first_error(exc.stderr_tail)}"
        ) from exc

    errors = [m.group(2).strip() for m in map(_ERROR_LINE.search, stderr.splitlines()) if m]
    if len(errors) > MAX_DECODE_ERRORS:
        raise Rejection(
            "corrupt",
            f"The file is damaged: {len(errors)} decode error(s), first: {errors[0][:160]!r}. "
            "Ask the contributor to upload it again.",
        )
    if last <= 0 and info.duration > 0:
        raise Rejection("corrupt", "The file holds no decodable video frames.")
    loudness = parse_ebur128(stderr) if info.audio else None
    return last, loudness


def _first_error(tail: str) -> str:
    for line in tail.splitlines():
        m = _ERROR_LINE.search(line)
        if m:
            return m.group(2).strip()[:200]
    return tail.strip().splitlines()[-1][:200] if tail.strip() else "unknown error"


def _hms(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
