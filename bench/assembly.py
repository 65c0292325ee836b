"""Section 2: the compilation by stream copy, against re-encoding the same sequence.

One real clip is rendered by the pipeline (1080p, the campaign's encoder
settings) and linked under 100 names with its FLAC audio master; a
``report.json`` lists them as accepted, as the pipeline writes it. Stream
copy is content-agnostic, so 100 links cost the join what 100 different clips
would. The title and end cards are rendered once beforehand (the pipeline
caches them too); that time is reported on its own.

* **stream copy**: :func:`processing.assemble.compile_remembrance`, timed
  whole, and split into the segment signature probes, the join (video copied,
  sound rebuilt from the masters and encoded to AAC once), and the checks on
  the result (duration, A/V end, profile, faststart, chapters, tags and the
  loudness of every segment). "Build" is the whole call minus the checks.
* **re-encode**: one ffmpeg command reading the same segments in the same
  order with the concat demuxer and encoding picture and sound again with
  :func:`processing.normalize.encoder_args`, without checks. Where running it
  would not fit the time budget (``reencode_sizes``), its time is estimated
  from the largest measured size in proportion to the frames to encode, and
  marked as an estimate.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from processing.assemble import compile_remembrance
from processing.cards import render_card
from processing.config import Config, load_config
from processing.normalize import encoder_args, master_path
from processing.pipeline import identify, process_safely
from processing.storage import LocalSource

from .common import FFmpegRecorder, by_kind, ffmpeg_binary, paired_ratios, summary
from .per_clip import CONTENT

CHECKS = "checks on the result"
JOIN = "join (video copy + sound from masters)"
SIGNATURES = "segment signatures (from the entries; cards probed)"
#: Measured beside the build, not part of it.
VIDEO_ALONE = "video copy alone (measured apart)"


def classify(tool: str, args: list[str]) -> str:
    if tool == "ffprobe":
        # conform.signature asks for streams only; the checks add format and chapters.
        return CHECKS if "-show_format" in args or "-show_chapters" in args else SIGNATURES
    if "concat" in args and "copy" in args:
        return JOIN
    if "ebur128" in " ".join(args):  # each segment's loudness in the result
        return CHECKS
    return "other ffmpeg"


def render_clip(folder: Path, seconds: float, cfg: Config) -> tuple[Path, dict[str, Any]]:
    """One normalized clip, rendered by the pipeline from a real-content upload."""
    import mediagen

    up = folder / "upload" / "clip.mp4"
    up.parent.mkdir(parents=True, exist_ok=True)
    size = (cfg.output.width, cfg.output.height)
    mediagen.make_clip(up, duration=seconds, size=size, content=CONTENT, lufs=-20.0)
    up.with_suffix(".json").write_text(json.dumps({"name": "Supporter", "consent": True}))
    source = LocalSource(up.parent, ignore=cfg.ingest.ignore)
    subs, _ = identify(source, source.list_uploads(), cfg, folder / ".work")
    entry = process_safely(subs[0], source, folder / "rendered", cfg, folder / ".work")
    if entry.status != "accepted":
        raise RuntimeError(f"the assembly clip was not accepted: {entry.reason}")
    return folder / "rendered" / str(entry.output), entry.as_dict()


def build_out(folder: Path, clip: Path, entry: dict[str, Any], count: int, cards: Path) -> Path:
    """An output folder as the pipeline leaves it: ``count`` accepted clips and the cards."""
    out = folder / f"out-{count}"
    shutil.rmtree(out, ignore_errors=True)
    (out / "clips").mkdir(parents=True)
    subs = []
    for i in range(count):
        sid = f"{i:016x}"
        os.link(clip, out / "clips" / f"{sid}.mp4")
        os.link(master_path(clip), out / "clips" / f"{sid}.flac")
        subs.append({
            **entry, "id": sid, "source": f"upload-{i:03d}.mp4", "output": f"clips/{sid}.mp4",
            "name": f"Supporter {i}", "consent": True, "status": "accepted",
            "submitted_at": f"2027-03-01T10:{i // 60:02d}:{i % 60:02d}+00:00",
        })  # fmt: skip
    (out / "report.json").write_text(
        json.dumps({"version": 1, "submissions": subs}, ensure_ascii=False), "utf-8"
    )
    shutil.copytree(cards, out / "compilation" / "cards")
    return out


def video_copy_seconds(paths: list[Path], folder: Path) -> float:
    """Seconds to join the pictures of ``paths`` by stream copy alone (no sound, no checks)."""
    listing = folder / "video-alone.ffconcat"
    listing.write_text(
        "ffconcat version 1.0\n" + "".join(f"file '{p.absolute()}'\n" for p in paths), "utf-8"
    )
    start = time.monotonic()
    subprocess.run(
        [ffmpeg_binary(), "-v", "error", "-nostdin", "-f", "concat", "-safe", "0",
         "-i", str(listing), "-map", "0:v:0", "-c", "copy", "-f", "mp4", "-y",
         str(folder / "video-alone.mp4")],
        check=True,
    )  # fmt: skip
    return time.monotonic() - start


def reencode_command(out: Path, cards: list[Path], cfg: Config) -> list[str]:
    """Re-encode title card, clips and end card, in order, with the clips' encoder settings."""
    clips = sorted((out / "clips").glob("*.mp4"))
    listing = out / "reencode.ffconcat"
    lines = ["ffconcat version 1.0"]
    lines += [f"file '{p.absolute()}'" for p in [cards[0], *clips, cards[1]]]
    listing.write_text("\n".join(lines) + "\n", "utf-8")
    return [
        ffmpeg_binary(), "-hide_banner", "-nostdin", "-f", "concat", "-safe", "0",
        "-i", str(listing), "-map", "0:v:0", "-map", "0:a:0", *encoder_args(cfg),
        "-f", "mp4", "-y", str(out / "reencoded.mp4"),
    ]  # fmt: skip


def bench(
    work: Path,
    *,
    clip_seconds: float,
    sizes: tuple[int, ...],
    runs: int,
    reencode_sizes: tuple[int, ...],
    reencode_runs: int,
    log: Callable[[str], None],
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Interleaved rounds of the stream-copy compilation and the re-encode, per size.

    ``overrides``: config overrides (the smoke run renders a small frame).
    """
    folder = work / "assembly"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    cfg = load_config(overrides=overrides)
    t = time.monotonic()
    clip, entry = render_clip(folder, clip_seconds, cfg)
    render_seconds = time.monotonic() - t
    t = time.monotonic()
    cards = folder / "cards"
    card_paths = [render_card(kind, cfg, cards).path for kind in ("title", "end")]
    card_seconds = time.monotonic() - t
    log(f"  clip rendered in {render_seconds:.1f} s, cards in {card_seconds:.1f} s")
    outs = {n: build_out(folder, clip, entry, n, cards) for n in sizes}
    rec = FFmpegRecorder(classify)
    copies: dict[int, list[dict[str, float]]] = {n: [] for n in sizes}
    reencodes: dict[int, list[float]] = {n: [] for n in sizes}
    lengths: dict[int, float] = {}
    with rec.active():
        for i in range(runs):
            for n in sizes:
                rec.take()
                start = time.monotonic()
                comp = compile_remembrance(outs[n], cfg)
                total = time.monotonic() - start
                lengths[n] = comp.duration
                parts = by_kind(rec.take())
                parts["python (timeline, sidecars, report)"] = total - sum(parts.values())
                build = total - parts.get(CHECKS, 0.0)
                # What the join costs without the sound: the same segments, video copied alone.
                parts[VIDEO_ALONE] = video_copy_seconds([seg.path for seg in comp.segments], folder)
                copies[n].append({"total": total, "build": build, **parts})
                log(f"  round {i + 1}/{runs} {n} clips by stream copy: build {build:.1f} s, "
                    f"checks {parts.get(CHECKS, 0.0):.1f} s")  # fmt: skip
                if n in reencode_sizes and i < reencode_runs:
                    cmd = reencode_command(outs[n], card_paths, cfg)
                    start = time.monotonic()
                    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   check=True)  # fmt: skip
                    reencodes[n].append(time.monotonic() - start)
                    log(f"  round {i + 1}/{runs} {n} clips re-encoded: {reencodes[n][-1]:.1f} s")
    measured = max((n for n in sizes if reencodes[n]), default=None)
    figures = {}
    for n in sizes:
        copy = copies[n]
        builds = [c["build"] for c in copy]
        join = [c.get(JOIN, 0.0) for c in copy]
        redo = reencodes[n]
        estimated = False
        if not redo and measured is not None:
            # x264 at a fixed preset and frame size costs the same per frame: scale by length.
            redo = [t * lengths[n] / lengths[measured] for t in reencodes[measured]]
            estimated = True
        pairs = min(len(redo), len(builds))
        figures[str(n)] = {
            "clips": n,
            "compilation_seconds": round(lengths[n], 2),
            "copy_seconds": {k: summary([c.get(k, 0.0) for c in copy]) for k in copy[0]},
            "reencode_seconds": summary(redo) if redo else None,
            "reencode_estimated": estimated,
            "reencode_over_build": paired_ratios(redo[:pairs], builds[:pairs]) if redo else None,
            "reencode_over_join": paired_ratios(redo[:pairs], join[:pairs]) if redo else None,
        }
    return {
        "setup": {
            "clip": f"{clip_seconds:g} s {cfg.output.width}x{cfg.output.height}, rendered by "
            "the pipeline, hard-linked once per slot with its FLAC master",
            "cards_seconds": [cfg.compilation.title_seconds, cfg.compilation.end_seconds],
            "clip_render_seconds": round(render_seconds, 2),
            "cards_render_seconds": round(card_seconds, 2),
            "runs": runs,
            "reencode_runs": reencode_runs,
            "reencode_measured_sizes": [n for n in sizes if reencodes[n]],
            "x264_preset": cfg.output.x264_preset,
        },
        "sizes": figures,
        "targets": {"reencode_over_build_min": 50.0},
    }
