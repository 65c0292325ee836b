"""Sections 3-5: whole batches through the Prefect ``process-submissions`` flow.

Every run is a fresh Python process (:mod:`bench.flow_child`) against one
Prefect server started once (its start-up is reported on its own). The parent
samples the child's process tree for peak memory, and counts the ffmpeg
commands the run started through a logging shim (``REEL_FFMPEG``), so encodes
made on Dask workers are counted too.

Uploads are tiny (320x180, 1.6 s) and rendered into a 320x180 frame by a
config file: these sections measure orchestration, encode counts and memory;
section 1 measures the encode itself at 1080p.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import (
    TreeMemory,
    is_encode,
    logged_commands,
    mib,
    paired_ratios,
    summary,
    write_ffmpeg_shim,
)

ROOT = Path(__file__).resolve().parent.parent
UPLOAD_SIZE = (320, 180)
UPLOAD_SECONDS = 1.6
#: Rendered frame for these sections (the campaign's is 1920x1080).
BATCH_CONFIG = """\
# bench/batch.py: small frames, so that hundreds of clips fit the time budget.
[output]
width = 320
height = 180
"""


def make_uploads(
    pool: Path,
    count: int,
    size: tuple[int, int] = UPLOAD_SIZE,
    seconds: float = UPLOAD_SECONDS,
) -> list[Path]:
    """``count`` distinct uploads (``size``, ``seconds`` long, 30 fps) with sidecars.

    One ffmpeg run (testsrc2 with its hue turning, a gliding tone) cut by the
    segment muxer at keyframes every ``seconds``: every upload has its own
    pictures and bytes, for a fraction of the cost of one run each.
    """
    from processing import runner

    pool.mkdir(parents=True, exist_ok=True)
    w, h = size
    fps = 30
    total = count * seconds + 0.5
    gop = round(seconds * fps)
    video = f"testsrc2=s={w}x{h}:r={fps}:d={total:g},hue=h=t*37"
    voice = "0.25*sin(2*PI*(150+40*sin(2*PI*0.3*t))*t)*(0.6+0.4*sin(2*PI*3.5*t))"
    audio = f"aevalsrc='{voice}':s=48000:d={total:g},pan=stereo|c0=c0|c1=c0"
    runner.run(
        [
            "-v", "error", "-f", "lavfi", "-i", video, "-f", "lavfi", "-i", audio,
            "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast",
            "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-b:a", "96k", "-f", "segment", "-segment_time", f"{seconds}",
            "-segment_time_delta", "0.05", "-reset_timestamps", "1", "-segment_format", "mp4",
            "-y", str(pool / "upload-%03d.mp4"),
        ],
        timeout=600,
    )  # fmt: skip
    uploads = []
    for i in range(count):
        path = pool / f"upload-{i:03d}.mp4"
        path.with_suffix(".json").write_text(
            json.dumps({"name": f"Supporter {i}", "consent": True}), "utf-8"
        )
        uploads.append(path)
    # The stream runs a little long so that the last upload is whole; drop the remainder.
    (pool / f"upload-{count:03d}.mp4").unlink(missing_ok=True)
    return uploads


def link_uploads(uploads: list[Path], folder: Path) -> Path:
    """A source folder holding ``uploads`` (hard links: symbolic ones are refused)."""
    folder.mkdir(parents=True, exist_ok=True)
    for up in uploads:
        for p in (up, up.with_suffix(".json")):
            target = folder / p.name
            if not target.exists():
                os.link(p, target)
    return folder


#: Prefect's default thread pool runs every submitted task at once, each waiting for
#: an encode slot from the server; this setting caps the pool at the encode limit.
CAPPED_POOL = "PREFECT_TASKS_RUNNER_THREAD_POOL_MAX_WORKERS"


class FlowRunner:
    """Starts :mod:`bench.flow_child` runs against one Prefect server and measures them."""

    def __init__(self, work: Path, api_url: str, config: Path):
        self.work = work
        self.config = config
        self.shim = write_ffmpeg_shim(work / "shim")
        self.env = {
            **os.environ,
            "PREFECT_API_URL": api_url,
            "PREFECT_HOME": str(work / "prefect-home"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "REEL_FFMPEG": str(self.shim),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        self.count = 0

    def run(
        self,
        source: Path,
        out: Path,
        *,
        dask: bool = False,
        env: dict[str, str] | None = None,
        extra: list[str] | None = None,
    ) -> dict[str, Any]:
        self.count += 1
        tag = f"run{self.count:02d}"
        log = self.work / "logs" / f"{tag}-ffmpeg.txt"
        result = self.work / "logs" / f"{tag}-result.json"
        console = self.work / "logs" / f"{tag}-console.txt"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "bench.flow_child", "--source", str(source), "--out", str(out)]
        cmd += ["--config", str(self.config), "--result", str(result)]
        if dask:
            cmd.append("--dask")
        cmd += extra or []
        load = os.getloadavg()[0]  # the machine is shared: what the run competed with
        start = time.monotonic()
        with console.open("w") as fh:
            proc = subprocess.Popen(
                cmd, cwd=ROOT, env={**self.env, **(env or {}), "REEL_BENCH_FFMPEG_LOG": str(log)},
                stdout=fh, stderr=subprocess.STDOUT,
            )  # fmt: skip
            with TreeMemory(proc.pid) as mem:
                code = proc.wait()
        wall = time.monotonic() - start
        if code != 0:
            tail = console.read_text("utf-8", "replace")[-3000:]
            raise RuntimeError(f"flow run {tag} failed (exit {code}):\n{tail}")
        data = json.loads(result.read_text("utf-8"))
        commands = logged_commands(log)
        entries = data["entries"]
        fresh = [e for e in entries if e["status"] != "rejected" and not e["cached"]]
        # A clip's processing time: the pipeline's own clock (output analysis included).
        clip_seconds = [e["seconds"] or 0 for e in fresh]
        return {
            "submissions": len(entries),
            "accepted": sum(e["status"] != "rejected" for e in entries),
            "process_seconds": round(wall, 3),
            "load_average_at_start": round(load, 2),
            "import_seconds": data["import_seconds"],
            "cluster_seconds": data["cluster_seconds"],
            "flow_seconds": data["flow_seconds"],
            "identify_seconds": data["identify_seconds"],
            "finish_seconds": data["finish_seconds"],
            "encodes": sum(map(is_encode, commands)),
            "ffmpeg_commands": len(commands),
            "clip_seconds_sum": round(sum(clip_seconds), 3),
            "peak_tree_mib": mib(mem.peak_total),
            "peak_python_mib": mib(mem.peak_root),
            "peak_processes": mem.peak_processes,
            "peak_threads": mem.peak_threads,
            "renderers": len({e["rendered_by"] for e in entries if e["rendered_by"]}),
            **slot_times(data, fresh),
        }


def slot_times(data: dict[str, Any], fresh: list[dict[str, Any]]) -> dict[str, float]:
    """How long the rendered clips held encode slots, from their entries' ``stage_times``.

    ``slot_held_seconds``: Σ over clips of slot given back − slot taken (the
    encode, and taking and giving back the slot around it); ``encode_seconds``:
    Σ of the encodes alone; ``encode_span_seconds``: from the first slot taken
    to the last given back; ``first_slot_after_seconds`` and
    ``after_last_slot_seconds``: the flow's time before the first and after
    the last (flow start-up, hashing the uploads, the first clip's
    preparation; the last clip's checks, report and review page).
    """
    times = [e["stage_times"] for e in fresh if e.get("stage_times")]
    if not times:
        return {"slot_held_seconds": 0.0, "encode_seconds": 0.0, "encode_span_seconds": 0.0,
                "first_slot_after_seconds": 0.0, "after_last_slot_seconds": 0.0}  # fmt: skip
    first = min(t["slot_taken"] for t in times)
    last = max(t["slot_given"] for t in times)
    return {
        "slot_held_seconds": round(sum(t["slot_given"] - t["slot_taken"] for t in times), 3),
        "encode_seconds": round(sum(t["encoded"] - t["slot_taken"] for t in times), 3),
        "encode_span_seconds": round(last - first, 3),
        "first_slot_after_seconds": round(first - data["flow_began"], 3),
        "after_last_slot_seconds": round(data["flow_ended"] - last, 3),
    }


def overhead(run: dict[str, Any], parallel: int) -> dict[str, float]:
    """Orchestration cost of a run, and how busy its ``parallel`` encode slots were.

    ``per_clip_seconds``: the flow's wall time minus its own batch steps
    (hashing the uploads; report and review page) minus the slots' held time
    spread over the ``parallel`` encode slots, per clip: what each clip costs
    the batch besides its encode (Prefect's task runs, preparation and checks
    not hidden behind another clip's encode).
    ``slot_use``: the share of the slots' time over the whole flow (start-up,
    hashing, report and review page included) during which a clip held one;
    ``slot_use_encoding``: the same share from the first slot taken to the
    last given back (what preparing the next clip while one encodes governs).
    """
    n = max(1, run["submissions"])
    held, span = run["slot_held_seconds"], run["encode_span_seconds"]
    between = run["flow_seconds"] - run["identify_seconds"] - run["finish_seconds"]
    return {
        "per_clip_seconds": round((between - held / parallel) / n, 3),
        "slot_use": round(held / (parallel * run["flow_seconds"]), 3),
        "slot_use_encoding": round(held / (parallel * span), 3) if span > 0 else 0.0,
    }


def bench(
    work: Path,
    *,
    sizes: tuple[int, ...],
    incremental_clips: int,
    scale_out_clips: int,
    scale_out_rounds: int,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Batch scaling, incremental re-runs and the Dask scale-out.

    ``incremental_clips`` and ``scale_out_clips`` must be among ``sizes``: the
    re-runs start from that batch's output, and the scale-out's first threads
    run is that batch's run, with the Dask run right after it.
    """
    from prefect.testing.utilities import prefect_test_harness

    from processing.config import load_config

    if incremental_clips not in sizes or scale_out_clips not in sizes:
        raise ValueError("incremental_clips and scale_out_clips must be batch sizes")
    folder = work / "batch"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    config = folder / "batch.toml"
    config.write_text(BATCH_CONFIG, "utf-8")
    slots = load_config(config).orchestration.max_parallel_encodes
    biggest = max(sizes)

    t = time.monotonic()
    uploads = make_uploads(folder / "pool", biggest + 1)
    pool, extra = uploads[:biggest], uploads[biggest:]
    generate = time.monotonic() - t
    log(f"  {biggest + 1} uploads generated in {generate:.1f} s")

    t = time.monotonic()
    with prefect_test_harness(server_startup_timeout=120):
        from prefect.settings import PREFECT_API_URL

        server_seconds = time.monotonic() - t
        log(f"  Prefect server started in {server_seconds:.1f} s")
        runner = FlowRunner(folder, str(PREFECT_API_URL.value()), config)

        def measured(src: Path, out: Path, label: str, **kw: Any) -> dict[str, Any]:
            r = runner.run(src, out, **kw)
            r.update(overhead(r, slots))
            log(f"  {label}: flow {r['flow_seconds']:.1f} s, {r['encodes']} encodes, "
                f"peak {r['peak_tree_mib']:.0f} MiB")  # fmt: skip
            return r

        # Scaling; the scale-out's Dask run follows the threads run of its size.
        scaling = []
        threads: list[dict[str, Any]] = []
        dask: list[dict[str, Any]] = []
        for n in sizes:
            src = link_uploads(pool[:n], folder / f"src-{n}")
            r = measured(src, folder / f"out-{n}", f"{n} clips")
            scaling.append({"clips": n, **r})
            if n == scale_out_clips:
                threads.append(r)
                dask.append(measured(src, folder / f"out-{n}-dask-0", "  on Dask", dask=True))
        for i in range(1, scale_out_rounds):
            src = folder / f"src-{scale_out_clips}"
            for kind in ("dask", "threads") if i % 2 else ("threads", "dask"):
                out = folder / f"out-{scale_out_clips}-{kind}-{i}"
                r = measured(src, out, f"  scale-out round {i + 1} {kind}", dask=kind == "dask")
                (dask if kind == "dask" else threads).append(r)

        # Incremental: the batch again, unchanged. The first re-run takes another path
        # through the caches than the next ones, so it runs twice: on the default thread
        # pool, and on a copy of the output with the pool capped at the encode slots.
        n = incremental_clips
        src, out = folder / f"src-{n}", folder / f"out-{n}"
        capped_out = folder / f"out-{n}-capped"
        shutil.copytree(out, capped_out, copy_function=os.link)
        first = measured(src, out, "re-run, nothing new")
        capped = measured(
            src, capped_out, "re-run, nothing new, pool capped", env={CAPPED_POOL: str(slots)}
        )
        again = measured(src, out, "re-run, nothing new, again")
        link_uploads(extra, src)
        one_new = measured(src, out, "re-run, one new upload")

    def flows(runs: list[dict[str, Any]]) -> list[float]:
        return [r["flow_seconds"] for r in runs]

    return {
        "setup": {
            "upload": f"{UPLOAD_SECONDS:g} s {UPLOAD_SIZE[0]}x{UPLOAD_SIZE[1]} H.264 + AAC",
            "rendered_frame": "320x180 frame (a config override; every other setting default)",
            "max_parallel_encodes": slots,
            "generate_seconds": round(generate, 2),
            "prefect_server_start_seconds": round(server_seconds, 2),
        },
        "scaling": scaling,
        "incremental": {
            "clips": n,
            "nothing_new": first,
            "nothing_new_capped_pool": capped,
            "nothing_new_again": again,
            "one_new": one_new,
        },
        "scale_out": {
            "clips": scale_out_clips,
            "rounds": scale_out_rounds,
            "threads_flow_seconds": summary(flows(threads)),
            "dask_flow_seconds": summary(flows(dask)),
            "dask_over_threads": paired_ratios(flows(dask), flows(threads)),
            "dask_cluster_start_seconds": summary([r["cluster_seconds"] for r in dask]),
            "threads_runs": threads,
            "dask_runs": dask,
        },
    }
