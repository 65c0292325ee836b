"""Stream signatures: what must be identical for a stream-copy join to be valid."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from . import runner
from .config import Config
from .fsutil import atomic_output
from .normalize import encoder_args
from .probe import ffprobe_json, stream_signature


def signature(path: Path) -> dict[str, Any]:
    """The stream parameters of ``path`` that a concat by stream copy needs to match."""
    return stream_signature(ffprobe_json(path, "-show_streams").get("streams", []))


def recorded_signature(path: Path, record: dict[str, Any] | None) -> dict[str, Any]:
    """The signature the pipeline recorded when it checked ``path``, else :func:`signature`.

    ``record`` is an entry's ``streams`` (see :class:`processing.report.Entry`):
    it is trusted only while the file has the size and modification time it
    had then; a clip replaced or fetched again since is probed anew.
    """
    if record and isinstance(record.get("signature"), dict):
        try:
            st = path.stat()
        except OSError:
            st = None
        if st is not None and [st.st_size, st.st_mtime_ns] == record.get("file"):
            return dict(record["signature"])
    return signature(path)


def signature_diff(reference: dict[str, Any], other: dict[str, Any]) -> list[str]:
    """Human-readable differences between two signatures (empty when they match)."""
    diffs = []
    for kind in ("video", "audio"):
        if reference[f"{kind}_streams"] != other[f"{kind}_streams"]:
            diffs.append(f"{other[f'{kind}_streams']} {kind} streams")
            continue
        ref, got = reference[kind] or {}, other[kind] or {}
        for key in ref:
            if ref[key] != got.get(key):
                diffs.append(f"{kind} {key} {got.get(key)} (expected {ref[key]})")
    return diffs


def conform(src: Path, folder: Path, cfg: Config, duration: float) -> Path:
    """Re-encode an already-normalized segment into the current output settings.

    Used when a clip rendered under other settings (say an older frame rate)
    would otherwise be glued into a stream copy. Loudness is already right,
    so audio is only resampled. The result is cached by content and settings.
    """
    key = hashlib.sha256(
        f"{src.stat().st_size}:{src.stat().st_mtime_ns}:{cfg.render_fingerprint()}".encode()
    ).hexdigest()[:12]
    dst = folder / f"{src.stem}-{key}.mp4"
    if dst.is_file():
        return dst
    out = cfg.output
    frames = max(1, round(duration * out.fps))
    vf = (
        f"fps={out.fps}:start_time=0,"
        f"scale={out.width}:{out.height}:force_original_aspect_ratio=decrease,"
        f"pad={out.width}:{out.height}:(ow-iw)/2:(oh-ih)/2,setsar=1,format=yuv420p,"
        "tpad=stop=-1:stop_mode=clone"
    )
    af = f"aresample={out.sample_rate},aformat=channel_layouts=stereo,apad"
    with atomic_output(dst) as part:
        runner.run(
            [
                "-i", runner.input_path(src), "-map", "0:v:0", "-map", "0:a:0",
                "-vf", vf, "-af", af, "-t", f"{frames / out.fps:.6f}",
                *encoder_args(cfg), "-f", "mp4", "-y", runner.input_path(part),
            ],
            timeout=cfg.limits.timeout_for(duration),
        )  # fmt: skip
    return dst
