"""Health check: refuse what cannot be used before spending an encode on it.

Cheap checks first (size, ffprobe, frame size, claimed duration), then one pass
over the sound alone (``-vn``) that measures the loudness the encode's linear
gain needs. The picture is decoded once, by the encode itself, which reports
what a separate decode would (issue 16): :func:`confirm` reads its decode
errors and the seconds of picture it decoded, and only when those disagree with
the plan does the full decode of :func:`check_fully` run, to give the same
rejection (or the real length) that checking everything up front gives.
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
    """A clip that passed: its probe, its length and its loudness."""

    info: MediaInfo
    decoded_duration: float
    """Seconds of the upload, up to the maximum: decoded (``decoded``) or as the probe says."""
    use_duration: float
    """Seconds that will be rendered (after trimming to the configured maximum)."""
    trimmed: bool
    loudness: Measurement | None
    """Loudness after the encode's resample and downmix; None without audio."""
    decoded: bool = True
    """Whether a full decode measured the length; if not, the encode confirms it (see confirm)."""
    audio_duration: float | None = None
    """Seconds of sound the loudness pass decoded (None without it)."""


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
    """Check ``path`` without decoding its picture, and return what the encode needs.

    The length is the probe's, confirmed by the encode (:func:`confirm`); a
    file whose header gives no length is decoded in full here instead.
    ``voice_pitch`` is the voice disguise the encode will apply (see
    :func:`audio_prefilters`), so that loudness is measured on what is heard.

    Raises:
        Rejection: The reason a staff member can read.
    """
    info = _cheap_checks(path, cfg, log_file)
    if info.duration <= 0:  # nothing to confirm against: only a decode can tell
        return _full(path, info, cfg, log_file, voice_pitch)
    loudness, heard = None, None
    if info.audio:
        loudness, heard = _listen(path, info, cfg, log_file, voice_pitch)
    claimed = min(info.duration, cfg.limits.max_duration)
    return _health(info, claimed, cfg, loudness, decoded=False, audio_duration=heard)


def check_fully(
    path: Path, cfg: Config, log_file: Path | None = None, *, voice_pitch: float | None = None
) -> Health:
    """Like :func:`check`, but decode picture and sound in full first (errors, real length).

    Raises:
        Rejection: The reason a staff member can read.
    """
    return _full(path, _cheap_checks(path, cfg, log_file), cfg, log_file, voice_pitch)


def confirm(
    path: Path,
    health: Health,
    encode_stderr: str,
    video_seconds: float,
    cfg: Config,
    log_file: Path | None = None,
    *,
    voice_pitch: float | None = None,
) -> Health | None:
    """Whether the encode's own decode confirms ``health``; what to render instead if not.

    Args:
        path: The upload.
        health: What :func:`check` found (the plan the encode followed).
        encode_stderr: The encode's stderr, logged at ``level+info``.
        video_seconds: Seconds of picture the encode decoded (end of its last frame).
        cfg: Settings.
        log_file: The submission's log.
        voice_pitch: As for :func:`check`.

    Returns:
        None when the encode decoded the upload without error and as long as
        planned (its output stands); else, when the full decode of
        :func:`check_fully` accepts the upload with another length, that
        check (the clip must be planned and encoded again).

    Raises:
        Rejection: The full decode's reason (corrupt, too short…), the same
            as checking everything before the encode gives.
    """
    if health.decoded:
        return None
    heard = health.audio_duration or 0.0
    # Half a frame: less cannot change the frame count the plan rendered.
    short = max(video_seconds, heard) < health.use_duration - 0.5 / cfg.output.fps
    if not _errors(encode_stderr) and video_seconds > 0 and not short:
        return None
    full = check_fully(path, cfg, log_file, voice_pitch=voice_pitch)
    same = round(full.use_duration * cfg.output.fps) == round(health.use_duration * cfg.output.fps)
    # The errors came from the render's own filters, not the upload: the output stands.
    return None if same and full.trimmed == health.trimmed else full


def _cheap_checks(path: Path, cfg: Config, log_file: Path | None) -> MediaInfo:
    """Size, probe and header checks: everything decided without decoding."""
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
    return info


def _full(
    path: Path, info: MediaInfo, cfg: Config, log_file: Path | None, voice_pitch: float | None
) -> Health:
    decoded, loudness = _decode(path, info, cfg, log_file, voice_pitch)
    return _health(info, decoded, cfg, loudness, decoded=True)


def _health(
    info: MediaInfo,
    length: float,
    cfg: Config,
    loudness: Measurement | None,
    *,
    decoded: bool,
    audio_duration: float | None = None,
) -> Health:
    """The length checks on ``length`` seconds, and the :class:`Health` that passed them."""
    lim = cfg.limits
    if length < lim.min_duration:
        raise Rejection(
            "too_short",
            f"The clip lasts {length:.2f} s; at least {lim.min_duration:.0f} s is needed.",
        )
    if lim.over_max == "reject" and length > lim.max_duration + 0.5:
        raise Rejection(
            "too_long",
            f"The clip lasts {length:.1f} s, longer than the {lim.max_duration:.0f} s maximum.",
        )
    return Health(
        info=info,
        decoded_duration=length,
        use_duration=min(length, lim.max_duration),
        # The decode stops at the maximum, so the probe tells whether there was more.
        trimmed=max(length, info.duration) > lim.max_duration + 0.5 / cfg.output.fps,
        loudness=loudness,
        decoded=decoded,
        audio_duration=audio_duration,
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
    args = ["-map", "0:v:0"]
    if info.audio:
        chain = [*audio_prefilters(cfg.output.sample_rate, voice_pitch), meter_filter()]
        args += ["-map", "0:a:0", "-af", ",".join(chain)]
    last, stderr = _pass(path, info, cfg, log_file, args)
    if last <= 0 and info.duration > 0:
        raise Rejection("corrupt", "The file holds no decodable video frames.")
    loudness = parse_ebur128(stderr) if info.audio else None
    return last, loudness


def _listen(
    path: Path, info: MediaInfo, cfg: Config, log_file: Path | None, voice_pitch: float | None
) -> tuple[Measurement | None, float]:
    """The loudness pass: the sound alone (``-vn``: the picture is not even read)."""
    chain = [*audio_prefilters(cfg.output.sample_rate, voice_pitch), meter_filter()]
    args = ["-map", "0:a:0", "-vn", "-af", ",".join(chain)]
    heard, stderr = _pass(path, info, cfg, log_file, args)
    return parse_ebur128(stderr), heard


def _pass(
    path: Path,
    info: MediaInfo,
    cfg: Config,
    log_file: Path | None,
    maps: list[str],
) -> tuple[float, str]:
    """Decode ``maps`` of the upload (up to the maximum) to nothing: seconds reached, stderr.

    Raises:
        Rejection: A timeout, a failed decode or any decode error (``corrupt``).
    """
    lim = cfg.limits
    window = min(info.duration or lim.max_duration, lim.max_duration)
    args = ["-loglevel", "level+info", "-t", f"{lim.max_duration:.6f}"]
    args += ["-i", runner.input_path(path), *maps, "-f", "null", "-"]
    last = 0.0

    def progress(seconds: float) -> None:
        nonlocal last
        last = max(last, seconds)

    try:
        _, stderr = runner.run(
            args, timeout=lim.timeout_for(window) / 2, progress=progress, log_file=log_file
        )
    except FFmpegTimeout as exc:
        raise Rejection(
            "timeout", f"Decoding the file took too long and was stopped ({exc.args[0]})."
        ) from exc
    except FFmpegError as exc:
        raise Rejection(
            "corrupt", f"The file cannot be decoded: {_first_error(exc.stderr_tail)}"
        ) from exc
    errors = _errors(stderr)
    if len(errors) > MAX_DECODE_ERRORS:
        raise Rejection(
            "corrupt",
            f"The file is damaged: {len(errors)} decode error(s), first: {errors[0][:160]!r}. "
            "Ask the contributor to upload it again.",
        )
    return last, stderr


def _errors(stderr: str) -> list[str]:
    """The error lines of a run logged at ``level+info``."""
    return [m.group(2).strip() for m in map(_ERROR_LINE.search, stderr.splitlines()) if m]


def _first_error(tail: str) -> str:
    for line in tail.splitlines():
        m = _ERROR_LINE.search(line)
        if m:
            return m.group(2).strip()[:200]
    return tail.strip().splitlines()[-1][:200] if tail.strip() else "unknown error"


def _hms(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
