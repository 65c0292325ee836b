"""Joining segments by stream copy, with the soundtrack rebuilt from the audio masters.

Split from :mod:`processing.assemble` so the 16:9 compilation and its social
renditions (:mod:`processing.renditions`) join the same way.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from . import runner
from .config import Config
from .normalize import master_path
from .timeline import Segment, ffmetadata


def concat_copy(
    segments: list[Segment],
    dst: Path,
    cfg: Config,
    *,
    masters: Sequence[Path | None] | None = None,
    gain_db: float = 0.0,
) -> None:
    """Video joined by stream copy; sound rebuilt sample-exact from the audio masters.

    Each segment's sound is its lossless master, or the segment decoded where it
    has none, trimmed to its frames' samples and encoded to AAC once
    (:func:`_sound_inputs`): no seam can shift the sound against the picture.

    Args:
        segments: In order, with their durations.
        dst: The result.
        cfg: Settings.
        masters: Per segment, the audio master to mix from (None: decode the
            segment); by default each clip's own (:func:`master_path`).
        gain_db: Gain on the whole soundtrack (a social loudness target above
            ``loudness.target_i``); a raise goes through a limiter at
            ``loudness.target_tp`` so no peak clips.
    """
    if masters is None:
        masters = [master_path(s.path) if s.kind == "clip" else None for s in segments]
    rate, fps = cfg.output.sample_rate, cfg.output.fps
    with tempfile.TemporaryDirectory(prefix="reel-concat-") as tmp:
        listing = Path(tmp) / "segments.ffconcat"
        lines = ["ffconcat version 1.0"]
        for seg in segments:
            lines += [f"file {concat_quote(seg.path)}", f"duration {seg.duration:.6f}"]
        listing.write_text("\n".join(lines) + "\n", "utf-8")
        chapters = Path(tmp) / "chapters.ffmeta"
        chapters.write_text(ffmetadata(segments), "utf-8")
        args = ["-f", "concat", "-safe", "0", "-i", runner.input_path(listing)]
        args += ["-i", runner.input_path(chapters)]
        sound, graph = _sound_inputs(segments, masters, rate, fps)
        args += sound
        inputs = "".join(f"[a{k}]" for k in range(len(segments)))
        graph.append(f"{inputs}concat=n={len(segments)}:v=0:a=1{_gain(gain_db, cfg)}[aout]")
        script = Path(tmp) / "audio.graph"
        script.write_text(";\n".join(graph), "utf-8")
        out = cfg.output
        runner.run(
            [
                *args,
                "-filter_complex_script", str(script),
                "-map", "0:v:0", "-map", "[aout]",
                # Global tags from the chapters file (it has none): -map_metadata -1
                # would also blank the chapter titles. Segments are already scrubbed.
                "-map_metadata", "1", "-map_chapters", "1",
                "-c:v", "copy",
                "-c:a", "aac", "-profile:a", "aac_low", "-b:a", f"{out.audio_bitrate_kbps}k",
                "-ar", str(rate), "-ac", "2",
                "-fflags", "+bitexact", "-movflags", "+faststart",
                "-f", "mp4", "-y", runner.input_path(dst),
            ],
            timeout=cfg.limits.timeout_base_seconds + 2 * sum(s.duration for s in segments) / 10,
        )  # fmt: skip


def _sound_inputs(
    segments: list[Segment], masters: Sequence[Path | None], rate: int, fps: int
) -> tuple[list[str], list[str]]:
    """The inputs (from the third on) and per-segment audio chains ``[a<k>]`` of the join.

    Each segment's sound is its master, or the segment itself decoded where it
    has none, cut to exactly its frames' worth of samples.
    """
    args: list[str] = []
    graph: list[str] = []
    for k, seg in enumerate(segments):
        samples = round(round(seg.duration * fps) * rate / fps)
        master = masters[k]
        if master is not None and master.is_file():
            args += ["-i", runner.input_path(master)]
            graph.append(f"[{k + 2}:a:0]atrim=end_sample={samples},asetpts=N/SR/TB[a{k}]")
        else:
            args += ["-i", runner.input_path(seg.path)]
            graph.append(
                f"[{k + 2}:a:0]aresample={rate},apad,atrim=end_sample={samples},"
                f"asetpts=N/SR/TB[a{k}]"
            )
    return args, graph


def _gain(gain_db: float, cfg: Config) -> str:
    """Filters after the concat that raise (or lower) the soundtrack by ``gain_db``."""
    if abs(gain_db) < 0.005:
        return ""
    if gain_db < 0:
        return f",volume={gain_db:.2f}dB"
    # Sample-peak limiter at the true-peak ceiling, its lookahead delay compensated
    # (latency=1) so the sound stays on the picture; level=0: no make-up gain.
    limit = 10 ** (cfg.loudness.target_tp / 20)
    return f",volume={gain_db:.2f}dB,alimiter=limit={limit:.4f}:level=0:latency=1"


def concat_quote(path: Path) -> str:
    return "'" + ("file:" + str(path.absolute())).replace("'", "'\\''") + "'"
