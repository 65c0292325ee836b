"""Probe a file once into an immutable description.

Everything downstream takes a :class:`MediaInfo`, never a path plus guesses.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from . import runner
from .errors import FFmpegError, FFmpegTimeout, Rejection

HDR_TRANSFERS = {"smpte2084": "pq", "arib-std-b67": "hlg"}

#: Stream parameters that must be identical for a stream-copy join to be valid.
SIGNATURE_VIDEO_KEYS = (
    "codec_name", "profile", "width", "height", "sample_aspect_ratio", "r_frame_rate",
    "time_base", "pix_fmt", "color_space", "color_transfer", "color_primaries",
)  # fmt: skip
SIGNATURE_AUDIO_KEYS = (
    "codec_name", "profile", "sample_rate", "channels", "channel_layout", "time_base",
)  # fmt: skip


@dataclass(frozen=True)
class VideoStream:
    """The first video stream of a file, as ffprobe sees it (before rotation)."""

    index: int
    codec: str
    profile: str | None
    width: int
    height: int
    pix_fmt: str | None
    frame_rate: Fraction
    """Average frame rate; ``r_frame_rate`` when the average is unknown."""
    sar: Fraction
    rotation: int
    """Clockwise display rotation in degrees (0, 90, 180, 270) from the display matrix."""
    color_transfer: str | None
    color_primaries: str | None
    color_space: str | None
    color_range: str | None
    bit_depth: int
    variable_frame_rate: bool

    @property
    def hdr(self) -> str | None:
        """``"pq"``, ``"hlg"`` or ``None``."""
        return HDR_TRANSFERS.get(self.color_transfer or "")

    @property
    def display_size(self) -> tuple[int, int]:
        """Width and height as shown: rotation applied, pixels made square."""
        w = round(self.width * self.sar) if self.sar > 0 else self.width
        h = self.height
        return (h, w) if self.rotation in (90, 270) else (w, h)


@dataclass(frozen=True)
class AudioStream:
    """The first audio stream of a file."""

    index: int
    codec: str
    sample_rate: int
    channels: int
    channel_layout: str | None


@dataclass(frozen=True)
class MediaInfo:
    """What ffprobe says about a file."""

    path: Path
    format_name: str
    duration: float
    size: int
    bit_rate: int | None
    video: VideoStream | None
    audio: AudioStream | None
    tags: tuple[tuple[str, str], ...]
    """Container and stream tags, ``(name, value)``; used to check scrubbing."""
    signature: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    """See :func:`stream_signature`."""

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly summary for reports."""
        out: dict[str, Any] = {
            "format": self.format_name,
            "duration": round(self.duration, 3),
            "size": self.size,
        }
        if self.video:
            v = asdict(self.video)
            v["frame_rate"] = float(round(self.video.frame_rate, 3))
            v["sar"] = str(self.video.sar)
            v["hdr"] = self.video.hdr
            v.pop("index")
            out["video"] = v
        if self.audio:
            a = asdict(self.audio)
            a.pop("index")
            out["audio"] = a
        return out


def ffprobe_json(
    path: Path, *show: str, timeout: float = 60, log_file: Path | None = None
) -> dict[str, Any]:
    """ffprobe's ``-of json`` description of ``path``: the one place ffprobe is run.

    Args:
        path: The file (passed as ``file:``, so no name is read as an option).
        show: What to show, e.g. ``"-show_streams", "-show_format"``.
        timeout: Seconds before ffprobe is stopped.
        log_file: The submission's log: the command and ffprobe's stderr go
            there (the JSON, which holds the file's tags, does not).

    Raises:
        FFmpegError: ffprobe failed (``FFmpegTimeout`` when it ran too long).
    """
    stdout, _ = runner.run(
        ["-v", "error", "-of", "json", *show, runner.input_path(path)],
        tool=runner.FFPROBE,
        timeout=timeout,
        stdout_capture=True,
        log_file=log_file,
    )
    data = json.loads(stdout or "{}")
    return data if isinstance(data, dict) else {}


def probe(path: Path, *, timeout: float = 60, log_file: Path | None = None) -> MediaInfo:
    """Describe ``path`` with ffprobe (the command goes to ``log_file`` when given).

    Raises:
        Rejection: ffprobe cannot read the file as media (``not_media``).
    """
    show = ("-show_format", "-show_streams", "-show_entries", "stream_side_data")
    try:
        data = ffprobe_json(path, *show, timeout=timeout, log_file=log_file)
    except FFmpegTimeout as exc:
        raise Rejection(
            "timeout", f"Reading the file's header took too long and was stopped ({exc.args[0]})."
        ) from exc
    except FFmpegError as exc:
        if "moov atom not found" in exc.stderr_tail and _starts_like_mp4(path):
            raise Rejection(
                "truncated",
                "The file is incomplete: the upload was cut off before its index was "
                "written. Ask the contributor to upload it again.",
            ) from exc
        raise Rejection(
            "not_media",
            "This file is not a video that can be read (ffprobe: "
            f"{_last_line(exc.stderr_tail) or 'unrecognised format'}). Ask the contributor "
            "to upload the original recording.",
        ) from exc
    return parse(path, data)


def _starts_like_mp4(path: Path) -> bool:
    """An MP4/MOV begins with an ``ftyp`` box (or ``wide``/``mdat`` in old QuickTime)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(12)
    except OSError:
        return False
    return head[4:8] in (b"ftyp", b"wide", b"mdat", b"free")


def parse(path: Path, data: dict[str, Any]) -> MediaInfo:
    """Build a :class:`MediaInfo` from ffprobe's JSON."""
    fmt = data.get("format") or {}
    streams = data.get("streams") or []
    if not fmt:
        raise Rejection("not_media", "This file is not a video that can be read.")
    video = next(
        (
            _video(s)
            for s in streams
            if s.get("codec_type") == "video"
            and not (s.get("disposition") or {}).get("attached_pic")
        ),
        None,
    )
    audio = next((_audio(s) for s in streams if s.get("codec_type") == "audio"), None)
    tags: list[tuple[str, str]] = [(k, str(v)) for k, v in (fmt.get("tags") or {}).items()]
    for s in streams:
        tags += [(k, str(v)) for k, v in (s.get("tags") or {}).items()]
    durations = [_float(fmt.get("duration"))] + [_float(s.get("duration")) for s in streams]
    duration = next((d for d in durations if d and d > 0), 0.0)
    return MediaInfo(
        path=path,
        format_name=str(fmt.get("format_name", "")),
        duration=duration,
        size=int(_float(fmt.get("size")) or 0),
        bit_rate=int(_float(fmt.get("bit_rate")) or 0) or None,
        video=video,
        audio=audio,
        tags=tuple(tags),
        signature=stream_signature(streams),
    )


def stream_signature(streams: list[dict[str, Any]]) -> dict[str, Any]:
    """The parameters of ffprobe's ``streams`` that a concat by stream copy needs to match."""
    sig: dict[str, Any] = {}
    for kind, keys in (("video", SIGNATURE_VIDEO_KEYS), ("audio", SIGNATURE_AUDIO_KEYS)):
        found = [s for s in streams if s.get("codec_type") == kind]
        sig[kind] = {k: found[0].get(k) for k in keys} if found else None
        sig[f"{kind}_streams"] = len(found)
    if sig["video"] and sig["video"]["sample_aspect_ratio"] in (None, "0:1"):
        sig["video"]["sample_aspect_ratio"] = "1:1"
    return sig


def _video(s: dict[str, Any]) -> VideoStream:
    avg = _fraction(s.get("avg_frame_rate"))
    real = _fraction(s.get("r_frame_rate"))
    rate = avg if avg > 0 else real
    sar = _fraction(s.get("sample_aspect_ratio"))
    pix_fmt = s.get("pix_fmt")
    depth = int(s.get("bits_per_raw_sample") or 0) or _depth_from_pix_fmt(pix_fmt)
    return VideoStream(
        index=int(s.get("index", 0)),
        codec=str(s.get("codec_name", "unknown")),
        profile=s.get("profile"),
        width=int(s.get("width") or 0),
        height=int(s.get("height") or 0),
        pix_fmt=pix_fmt,
        frame_rate=rate,
        sar=sar if sar > 0 else Fraction(1),
        rotation=_rotation(s),
        color_transfer=s.get("color_transfer"),
        color_primaries=s.get("color_primaries"),
        color_space=s.get("color_space"),
        color_range=s.get("color_range"),
        bit_depth=depth,
        variable_frame_rate=bool(avg > 0 and real > 0 and abs(float(avg - real)) > 0.01),
    )


def _audio(s: dict[str, Any]) -> AudioStream:
    return AudioStream(
        index=int(s.get("index", 0)),
        codec=str(s.get("codec_name", "unknown")),
        sample_rate=int(s.get("sample_rate") or 0),
        channels=int(s.get("channels") or 0),
        channel_layout=s.get("channel_layout"),
    )


def _rotation(s: dict[str, Any]) -> int:
    """Clockwise rotation from the display matrix (ffprobe reports it counter-clockwise)."""
    for side in s.get("side_data_list") or []:
        if "rotation" in side:
            return round(-float(side["rotation"])) % 360
    rotate = (s.get("tags") or {}).get("rotate")
    return int(rotate) % 360 if rotate and str(rotate).lstrip("-").isdigit() else 0


def _depth_from_pix_fmt(pix_fmt: str | None) -> int:
    if not pix_fmt:
        return 8
    for depth in (16, 14, 12, 10, 9):
        if f"p{depth}" in pix_fmt:
            return depth
    return 8


def _fraction(value: Any) -> Fraction:
    try:
        num, _, den = str(value).replace(":", "/").partition("/")
        f = Fraction(int(num), int(den or 1))
    except (ValueError, ZeroDivisionError):
        return Fraction(0)
    return f if f > 0 else Fraction(0)


def _float(value: Any) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return 0.0
    return f if math.isfinite(f) else 0.0


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""
