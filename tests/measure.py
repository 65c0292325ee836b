"""Measurements tests assert with: probe data, loudness, pixels, frame counts, A/V sync.

ffprobe and text-producing ffmpeg calls go through :func:`processing.runner.run`.
Where raw bytes are needed (decoded pictures and PCM), ffmpeg is run here with
:func:`subprocess.run` and an argument list, because the project runner decodes
stdout as text.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from mediagen import BEEP_HZ
from processing import probe as _probe_mod
from processing import runner

__all__ = [
    "av_offset",
    "beep_onset",
    "ffprobe_json",
    "flash_time",
    "frame_at",
    "frame_count",
    "loudness",
    "stream_end_times",
    "tags",
]

TIMEOUT = 120.0
AUDIO_RATE = 48_000


def _probe(path: Path, *args: str) -> dict[str, Any]:
    return _probe_mod.ffprobe_json(path, *args, timeout=TIMEOUT)


def ffprobe_json(path: Path) -> dict[str, Any]:
    """ffprobe's view of a file (streams with side data, format, chapters).

    Args:
        path: Media file.

    Returns:
        The parsed ``-of json`` output.

    Raises:
        processing.errors.FFmpegError: ffprobe cannot read the file.
    """
    return _probe(path, "-show_streams", "-show_format", "-show_chapters")


_NUMBER = r"(-?\d+(?:\.\d+)?|-inf|inf|nan)"


def loudness(path: Path) -> tuple[float, float]:
    """Integrated loudness and true peak of the first audio stream (EBU R128).

    Args:
        path: Media file with audio.

    Returns:
        ``(integrated LUFS, true peak dBTP)``; ``-inf`` for silence.

    Raises:
        ValueError: No ebur128 summary was printed (no audio stream?).
    """
    _, err = runner.run(
        [
            "-nostats", "-i", runner.input_path(path), "-map", "0:a:0",
            "-af", "ebur128=peak=true:framelog=verbose", "-f", "null", "-",
        ],
        timeout=TIMEOUT,
    )  # fmt: skip
    summary = err[err.rfind("Summary:") :]
    i = re.search(r"Integrated loudness:\s*I:\s*" + _NUMBER + r"\s*LUFS", summary)
    tp = re.search(r"True peak:\s*Peak:\s*" + _NUMBER + r"\s*dBFS", summary)
    if not (i and tp):
        raise ValueError(f"no loudness summary for {path}:\n{err[-2000:]}")
    return float(i.group(1)), float(tp.group(1))


def _ffmpeg_bytes(args: list[str]) -> bytes:
    """Run ffmpeg and return its raw stdout (raises on failure)."""
    cmd = [runner.FFMPEG, "-hide_banner", "-nostdin", "-v", "error", *args]
    proc = subprocess.run(cmd, capture_output=True, timeout=TIMEOUT, check=False)
    if proc.returncode != 0:
        raise RuntimeError(
            f"ffmpeg failed ({proc.returncode}): {cmd}\n{proc.stderr.decode(errors='replace')}"
        )
    return proc.stdout


def frame_at(path: Path, t: float, size: tuple[int, int] | None = None) -> np.ndarray:
    """The decoded picture shown at time ``t``, as a player would show it.

    Rotation from the display matrix is applied (ffmpeg autorotates); the
    sample aspect ratio is not (use ``size`` to scale).

    Args:
        path: Media file with video.
        t: Seconds from the start of the file.
        size: Optional ``(width, height)`` to scale to.

    Returns:
        ``uint8`` array of shape ``(height, width, 3)``, RGB.

    Raises:
        RuntimeError: ffmpeg failed or produced no frame.
    """
    vf = [f"scale={size[0]}:{size[1]}"] if size else []
    args = ["-ss", f"{t:.6f}", "-i", runner.input_path(path), "-map", "0:v:0", "-frames:v", "1"]
    if vf:
        args += ["-vf", ",".join(vf)]
    # PPM carries its own width/height, which is right after rotation too.
    data = _ffmpeg_bytes([*args, "-c:v", "ppm", "-f", "image2pipe", "pipe:1"])
    m = re.match(rb"P6\s+(\d+)\s+(\d+)\s+(\d+)\s", data)
    if not m:
        raise RuntimeError(f"no frame at {t} s in {path}")
    w, h, maxval = (int(g) for g in m.groups())
    if maxval != 255:
        raise RuntimeError(f"unexpected PPM maxval {maxval}")
    pixels = np.frombuffer(data, dtype=np.uint8, count=w * h * 3, offset=m.end())
    return pixels.reshape(h, w, 3)


def frame_count(path: Path) -> int:
    """Number of video frames, counted by decoding (``ffprobe -count_frames``).

    Args:
        path: Media file with video.

    Returns:
        Frames in the first video stream (0 when there is none).
    """
    data = _probe(
        path, "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames"
    )
    streams = data.get("streams") or [{}]
    return int(streams[0].get("nb_read_frames") or 0)


_SHOWINFO = re.compile(r"pts_time:\s*(-?[\d.]+).*?mean:\[(\d+)")


def flash_time(path: Path) -> float:
    """Presentation time of the first frame that flashes (near-)white.

    Each frame's mean luma comes from ``showinfo`` on a downscaled grey copy;
    the flash is the first frame whose mean rises above halfway between the
    median frame and the brightest one.

    Args:
        path: Media file with video.

    Returns:
        Seconds on the file's timeline (start time subtracted, as ffmpeg does).

    Raises:
        ValueError: No frame stands out as a flash.
    """
    _, err = runner.run(
        [
            "-nostats", "-i", runner.input_path(path), "-map", "0:v:0",
            "-vf", "scale=64:36,format=gray,showinfo", "-f", "null", "-",
        ],
        timeout=TIMEOUT,
    )  # fmt: skip
    frames = [(float(t), int(mean)) for t, mean in _SHOWINFO.findall(err)]
    if not frames:
        raise ValueError(f"no video frames decoded from {path}")
    means = np.array([m for _, m in frames], dtype=float)
    peak, median = means.max(), float(np.median(means))
    if peak - median < 40:
        raise ValueError(f"no flash in {path} (median luma {median:.0f}, max {peak:.0f})")
    first = int(np.argmax(means > (peak + median) / 2))
    return frames[first][0]


def _pcm_mono(path: Path) -> np.ndarray:
    """First audio stream as float mono 48 kHz, sample 0 at the file's time 0."""
    raw = _ffmpeg_bytes(
        [
            "-i", runner.input_path(path), "-map", "0:a:0",
            # Pad (or trim) so the first sample sits at t=0 of the shared timeline.
            "-af", "aresample=async=1:first_pts=0",
            "-ac", "1", "-ar", str(AUDIO_RATE), "-f", "s16le", "-c:a", "pcm_s16le", "pipe:1",
        ]
    )  # fmt: skip
    return np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0


def beep_onset(path: Path, freq: float = BEEP_HZ, window: float = 0.010) -> float:
    """Start time of the sync beep (the burst at ``freq``) in the first audio stream.

    The audio is demodulated at ``freq`` and averaged over a centred ``window``
    (10 ms) sliding by one sample; the onset is where that 1 kHz envelope first
    reaches half its maximum. Speech energy near 1 kHz and broadband noise
    barely register, so a processed (denoised, compressed, normalized) track
    still gives the onset to about a millisecond.

    Args:
        path: Media file with audio.
        freq: Beep frequency in Hz.
        window: Averaging window in seconds.

    Returns:
        Seconds on the file's timeline.

    Raises:
        ValueError: No audio, or no burst at ``freq``.
    """
    x = _pcm_mono(path)
    if x.size == 0:
        raise ValueError(f"no audio decoded from {path}")
    n = np.arange(x.size)
    base = x * np.exp(-2j * np.pi * freq * n / AUDIO_RATE)
    width = max(1, round(window * AUDIO_RATE))
    csum = np.concatenate(([0], np.cumsum(base)))
    half = width // 2
    lo = np.clip(n - half, 0, x.size)
    hi = np.clip(n - half + width, 0, x.size)
    env = np.abs(csum[hi] - csum[lo]) / width  # centred moving average
    peak = env.max()
    if peak < 1e-3 or peak < 8 * float(np.median(env)):
        raise ValueError(f"no {freq:g} Hz beep in {path}")
    return float(np.argmax(env >= peak / 2)) / AUDIO_RATE


def av_offset(path: Path) -> float:
    """Audio-minus-video time of the sync marker: beep onset minus flash frame.

    Args:
        path: A file made with ``sync_marker=True`` (or processed from one).

    Returns:
        Seconds; positive means the audio is late. A clean file gives ~0.
    """
    return beep_onset(path) - flash_time(path)


def stream_end_times(path: Path) -> tuple[float | None, float | None]:
    """When the first video and first audio stream end, from their packets.

    Args:
        path: Media file.

    Returns:
        ``(video_end, audio_end)`` in seconds (max of pts + duration over the
        stream's packets, on the file's own timestamps); ``None`` for a missing
        stream.
    """
    data = _probe(
        path,
        "-show_entries",
        "stream=index,codec_type:packet=stream_index,pts_time,duration_time",
    )
    kinds: dict[int, str] = {}
    for s in data.get("streams") or []:
        kinds.setdefault(int(s["index"]), s.get("codec_type", ""))
    first = {
        kind: min(i for i, k in kinds.items() if k == kind)
        for kind in ("video", "audio")
        if kind in kinds.values()
    }
    ends: dict[int, float] = {}
    for p in data.get("packets") or []:
        try:
            end = float(p["pts_time"]) + float(p.get("duration_time") or 0)
        except (KeyError, ValueError):
            continue
        idx = int(p["stream_index"])
        ends[idx] = max(ends.get(idx, end), end)
    v = ends.get(first["video"]) if "video" in first else None
    a = ends.get(first["audio"]) if "audio" in first else None
    return v, a


def tags(path: Path) -> dict[str, str]:
    """All container and stream tags, keys lower-cased.

    A container tag wins over a stream tag of the same name; a stream tag is
    also kept as ``"<stream index>:<key>"`` so nothing is lost.

    Args:
        path: Media file.

    Returns:
        ``{key: value}``.
    """
    data = _probe(path, "-show_entries", "format_tags:stream_tags")
    out = {k.lower(): str(v) for k, v in ((data.get("format") or {}).get("tags") or {}).items()}
    for i, s in enumerate(data.get("streams") or []):
        for k, v in (s.get("tags") or {}).items():
            out.setdefault(k.lower(), str(v))
            out[f"{i}:{k.lower()}"] = str(v)
    return out


def f0_track(path: Path) -> np.ndarray:
    """Fundamental frequency (Hz) per 40 ms window by autocorrelation; NaN where unvoiced."""
    x = _pcm_mono(path)
    rate = AUDIO_RATE
    win = int(0.04 * rate)
    lo, hi = rate // 300, rate // 70  # lags for 300..70 Hz
    windows = x[: x.size // win * win].reshape(-1, win)
    loud = np.sqrt((windows**2).mean(axis=1))
    f0 = np.full(len(windows), np.nan)
    for n, seg in enumerate(windows):
        if loud[n] < np.median(loud):  # the syllables, not the pauses between them
            continue
        seg = seg - seg.mean()
        ac = np.correlate(seg, seg, "full")[win - 1 :]
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.5 * ac[0]:
            f0[n] = rate / lag
    return f0
