"""Section 1: one clip through the pipeline, against one bare ffmpeg pass and a MoviePy script.

What each side includes, precisely:

* **pipeline**: ``identify`` (SHA-256 of the upload, sidecar) and
  ``process_safely``: probe, the health check's audio-only loudness pass
  (``-vn``: the picture is not read), the gain plan, the one encode (MP4 plus
  the FLAC audio master, plus its taps for the checks: the upload's decoded
  frames listed with ``framecrc``, the finished picture at 2 fps small and gray,
  the finished sound through ``silencedetect`` and the loudness meter), probe
  and conformance/scrub check of the output, and the quality maths on the
  tapped frames. Nothing decodes the upload or the clip a second time (the
  ffmpeg calls that read the upload's picture are counted per round).
  Timed in this process, no imports.
* **bare ffmpeg**: the two commands a person doing two-pass loudness by hand
  needs: an audio-only ``ebur128`` analysis pass over the same resample and
  downmix, then exactly the encode command the pipeline builds without the
  taps (``processing.normalize.build_command`` for the same clip, captions
  file and gain), each run with :func:`subprocess.run`.
* **MoviePy**: ``bench/moviepy_clip.py`` in its own process with the same
  frame, frame rate, codecs, x264 preset and CRF, and captions drawn by
  TextClip from a Noto Sans font file; timed from opening the clip to the
  finished file (imports excluded).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from processing.captions import build_ass
from processing.clip import stages
from processing.config import Config, load_config
from processing.health import audio_prefilters
from processing.loudness import meter_filter, parse_ebur128
from processing.normalize import build_command
from processing.pipeline import identify, process_safely
from processing.probe import probe
from processing.storage import LocalSource

from .common import FFmpegRecorder, by_kind, ffmpeg_binary, paired_ratios, summary

#: "Real content": a slow colour gradient field blended with testsrc2's moving
#: bars, sweeping line, noise patch and clock: motion and fine detail in every
#: frame, as cheap to generate as testsrc2 alone (a ~20 Mb/s input at 1080p).
CONTENT = (
    "gradients=s=480x270:r={fps}:d={d}:speed=0.05:n=5,scale={w}:{h}[g];"
    "testsrc2=s={w}x{h}:r={fps}:d={d}[t];[g][t]blend=all_mode=average[out0]"
)
NAME = "Айшат из Грозного"
FONT_FILE = Path("/usr/share/fonts/truetype/noto/NotoSans-Bold.ttf")
MOVIEPY_SCRIPT = Path(__file__).with_name("moviepy_clip.py")


def classify(tool: str, args: list[str]) -> str:
    """Names the pipeline's ffmpeg calls for the stage breakdown."""
    joined = " ".join(args)
    if tool == "ffprobe":
        return "probe"
    if "libx264" in args:
        return "encode (with the checks' taps)"
    if "-skip_frame" in args:
        return "output analysis: 2 fps frames + silence + loudness"
    if "ebur128" in joined and "0:v:0" in args:
        return "health check: full decode + loudness"
    if "alimiter" in joined:
        return "loudness: limiter simulation"
    if "ebur128" in joined and "-vn" in args:
        return "health check: loudness, sound only"
    return "other ffmpeg"


def reads_picture(args: list[str]) -> bool:
    """Whether an ffmpeg call decodes the upload's picture (an encode, a full health decode)."""
    return "-vn" not in args and any(a.endswith("supporter.mp4") for a in args)


def make_source(folder: Path, duration: float, size: tuple[int, int]) -> Path:
    """The upload: ``duration`` s of :data:`CONTENT` at ``size`` with a voice at -20 LUFS."""
    import mediagen

    src = folder / "upload" / "supporter.mp4"
    src.parent.mkdir(parents=True, exist_ok=True)
    mediagen.make_clip(
        src, duration=duration, size=size, content=CONTENT, lufs=-20.0, crf=20, preset="ultrafast"
    )
    src.with_suffix(".json").write_text(json.dumps({"name": NAME, "consent": True}), "utf-8")
    return src


def bare_commands(src: Path, folder: Path, cfg: Config) -> tuple[list[str], list[str], dict]:
    """The loudness analysis pass and the pipeline's exact encode command for ``src``.

    Decided outside the timing, with the pipeline's own functions, so the bare
    encode is byte for byte the command the pipeline runs (paths aside).
    """
    ff = ffmpeg_binary()
    source = LocalSource(src.parent, ignore=cfg.ingest.ignore)
    subs, _ = identify(source, source.list_uploads(), cfg, folder)
    seen = stages.inspect(src, subs[0], cfg)
    with contextlib.ExitStack() as stack:  # the bench clip is not anonymized: no mask to keep
        planned = stages.plan(src, subs[0], seen, cfg, folder, stack)
    plan, gain = planned.render, planned.gain
    assert gain is not None
    ass = folder / "captions.ass"
    ass.write_text(build_ass(plan.captions, cfg.output.width, cfg.output.height), "utf-8")
    dst = folder / "bare.mp4"
    encode = build_command(src, dst, plan, seen.health, cfg, ass, dst.with_suffix(".flac"))
    rate = cfg.output.sample_rate
    analysis = [
        "-i", f"file:{src.absolute()}", "-map", "0:a:0", "-vn",
        "-af", ",".join([*audio_prefilters(rate), meter_filter()]), "-f", "null", "-",
    ]  # fmt: skip
    head = [ff, "-hide_banner", "-nostdin"]
    facts = {
        "gain_db": gain.gain_db,
        "limiter": gain.limit,
        "simulation_passes": planned.simulations,
        "encode_command": " ".join(["ffmpeg", *encode]),
    }
    return head + analysis, head + encode, facts


def run_bare(analysis: list[str], encode: list[str]) -> dict[str, float]:
    start = time.monotonic()
    done = subprocess.run(analysis, capture_output=True, text=True, check=True)
    if parse_ebur128(done.stderr) is None:
        raise RuntimeError("the analysis pass printed no loudness summary")
    mid = time.monotonic()
    subprocess.run(encode, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    end = time.monotonic()
    return {"total": end - start, "analysis": mid - start, "encode": end - mid}


def run_pipeline(src: Path, out: Path, cfg: Config, rec: FFmpegRecorder) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    source = LocalSource(src.parent, ignore=cfg.ingest.ignore)
    rec.take()
    start = time.monotonic()
    subs, _ = identify(source, source.list_uploads(), cfg, out / ".work")
    entry = process_safely(subs[0], source, out, cfg, out / ".work")
    total = time.monotonic() - start
    if entry.status != "accepted":
        raise RuntimeError(f"the pipeline did not accept the benchmark clip: {entry.reason}")
    calls = rec.take()
    stages = by_kind(calls)
    stages["python (hashing, plans, checks, quality maths, report)"] = total - sum(stages.values())
    decodes = sum(1 for c in calls if c.kind != "probe" and reads_picture(c.args))
    return {"total": total, "stages": stages, "clip": out / str(entry.output), "decodes": decodes}


def run_moviepy(src: Path, dst: Path, cfg: Config) -> dict[str, float]:
    env = {**os.environ, "FFMPEG_BINARY": ffmpeg_binary()}
    start = time.monotonic()
    done = subprocess.run(
        [
            sys.executable, str(MOVIEPY_SCRIPT), str(src), str(dst),
            "--font", str(FONT_FILE), "--preset", cfg.output.x264_preset,
            "--crf", str(cfg.output.crf), "--width", str(cfg.output.width),
            "--height", str(cfg.output.height), "--fps", str(cfg.output.fps),
            "--hashtag", cfg.campaign.hashtag, "--name", NAME,
        ],
        capture_output=True, text=True, env=env, cwd=dst.parent, check=False,
    )  # fmt: skip
    wall = time.monotonic() - start
    if done.returncode != 0:
        raise RuntimeError(f"the MoviePy script failed: {done.stderr[-2000:]}")
    inner = json.loads(done.stdout.strip().splitlines()[-1])["seconds"]
    return {"total": float(inner), "process": wall}


def describe(path: Path) -> dict[str, Any]:
    info = probe(path)
    v, a = info.video, info.audio
    assert v is not None and a is not None
    return {
        "video": f"{v.codec} {v.profile} {v.width}x{v.height} {float(v.frame_rate):g} fps",
        "audio": f"{a.codec} {a.sample_rate} Hz {a.channels} ch",
        "duration": round(info.duration, 3),
    }


def video_md5(path: Path) -> str:
    done = subprocess.run(
        [ffmpeg_binary(), "-v", "error", "-i", str(path), "-map", "0:v:0", "-c", "copy",
         "-f", "md5", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def bench(
    work: Path,
    *,
    duration: float,
    size: tuple[int, int],
    runs: int,
    moviepy_runs: int,
    log: Callable[[str], None],
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Interleaved rounds of pipeline, bare ffmpeg and MoviePy on one clip.

    ``overrides``: config overrides (the smoke run renders a small frame).
    """
    folder = work / "per-clip"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    cfg = load_config(overrides=overrides)
    start = time.monotonic()
    src = make_source(folder, duration, size)
    generate = time.monotonic() - start
    analysis, encode, facts = bare_commands(src, folder, cfg)
    rec = FFmpegRecorder(classify)
    results: dict[str, list[Any]] = {"pipeline": [], "bare": [], "moviepy": []}
    order = ["pipeline", "bare", "moviepy"]
    last_clip: Path | None = None
    with rec.active():
        for i in range(runs):
            # Rotate who goes first: a slow minute on a shared machine hits every side.
            turn = order[i % 3 :] + order[: i % 3]
            for who in turn:
                if who == "pipeline":
                    r = run_pipeline(src, folder / "pipeline", cfg, rec)
                    last_clip = r.pop("clip")
                elif who == "bare":
                    r = run_bare(analysis, encode)
                elif i < moviepy_runs:
                    r = run_moviepy(src, folder / "moviepy.mp4", cfg)
                else:
                    continue
                results[who].append(r)
                log(f"  round {i + 1}/{runs} {who}: {r['total']:.1f} s")
    assert last_clip is not None
    pipe = [r["total"] for r in results["pipeline"]]
    bare = [r["total"] for r in results["bare"]]
    bare_encode = [r["encode"] for r in results["bare"]]
    movie = [r["total"] for r in results["moviepy"]]
    stage_names = list(results["pipeline"][0]["stages"])
    outputs = {
        "pipeline": describe(last_clip),
        "bare": describe(folder / "bare.mp4"),
        "moviepy": describe(folder / "moviepy.mp4") if movie else None,
    }
    same_video = video_md5(last_clip) == video_md5(folder / "bare.mp4")
    return {
        "setup": {
            "clip": f"{duration:g} s {size[0]}x{size[1]} 30 fps H.264 + AAC stereo at -20 LUFS",
            "content": CONTENT,
            "generate_seconds": round(generate, 2),
            "runs": runs,
            "moviepy_runs": len(movie),
            "x264_preset": cfg.output.x264_preset,
            "crf": cfg.output.crf,
            "font_file": str(FONT_FILE),
            **facts,
        },
        "pipeline_seconds": summary(pipe),
        "bare_seconds": summary(bare),
        "bare_analysis_seconds": summary([r["analysis"] for r in results["bare"]]),
        "bare_encode_seconds": summary(bare_encode),
        "moviepy_seconds": summary(movie) if movie else None,
        "moviepy_process_seconds": (
            summary([r["process"] for r in results["moviepy"]]) if movie else None
        ),
        "pipeline_stages_seconds": {
            name: summary([r["stages"].get(name, 0.0) for r in results["pipeline"]])
            for name in stage_names
        },
        "pipeline_decodes_of_upload": sorted({r["decodes"] for r in results["pipeline"]}),
        "pipeline_over_bare": paired_ratios(pipe, bare),
        "pipeline_over_bare_encode_only": paired_ratios(pipe, bare_encode),
        "moviepy_over_pipeline": paired_ratios(movie, pipe[: len(movie)]) if movie else None,
        "outputs": outputs,
        "bare_video_identical_to_pipeline": same_video,
        "targets": {
            "pipeline_over_bare_max": 1.05,
            "moviepy_over_pipeline_min": 6.0,
        },
    }
