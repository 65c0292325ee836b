"""Runs the ``process-submissions`` flow once, in its own process, for :mod:`bench.batch`.

A fresh process per run keeps one run's memory out of the next one's peak and
lets the parent sample this process tree (ffmpeg children and Dask workers
included). The Prefect server is the parent's (``PREFECT_API_URL``); encodes
are counted by the ffmpeg shim ``REEL_FFMPEG`` points at.

    python -m bench.flow_child --source DIR --out DIR [--config FILE] --result FILE
        [--dask [--workers N] [--warm]] [--pin CORES]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def pin_workers(cluster: Any, cores: list[int]) -> None:
    """Worker ``i`` of ``cluster`` (and its ffmpeg children) on ``cores[i % len(cores)]``."""
    from distributed import Client

    with Client(cluster) as client:
        pids = sorted(client.run(os.getpid).values())
    for i, pid in enumerate(pids):
        # Every thread of the worker: an affinity set by pid covers only its main thread.
        for tid in os.listdir(f"/proc/{pid}/task"):
            os.sched_setaffinity(int(tid), {cores[i % len(cores)]})


def main() -> None:
    started = time.monotonic()
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--config")
    ap.add_argument("--dask", action="store_true", help="a local Dask cluster (2 workers)")
    ap.add_argument("--workers", type=int, default=2, help="Dask workers")
    ap.add_argument("--threads", type=int, default=1, help="threads per Dask worker")
    ap.add_argument(
        "--pin", help="cores, comma-separated: Dask worker i on core i (this process on all)"
    )
    ap.add_argument(
        "--warm", action="store_true", help="workers preload flows.scale, as a standing cluster"
    )
    ap.add_argument("--result", required=True)
    a = ap.parse_args()

    cores = [int(c) for c in a.pin.split(",")] if a.pin else None
    if cores:  # ffmpeg children inherit it
        os.sched_setaffinity(0, set(cores))

    from flows import campaign
    from flows.campaign import process_submissions, with_task_runner
    from flows.params import BatchParams

    imported = time.monotonic()
    steps = {"identify": 0.0, "finish": 0.0}

    def timed(step: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t = time.monotonic()
            try:
                return fn(*args, **kwargs)
            finally:
                steps[step] += time.monotonic() - t

        return wrapper

    # The batch's own steps, run by the flow's process on either task runner: hashing
    # every upload, and report.json + the review page (posters and contact sheets).
    campaign.identify = timed("identify", campaign.identify)
    campaign.finish_batch = timed("finish", campaign.finish_batch)
    params = BatchParams(source=a.source, out=a.out, config=a.config)
    cluster = None
    cluster_seconds = None
    flow = process_submissions
    if a.dask:
        from distributed import LocalCluster

        t = time.monotonic()
        cluster = LocalCluster(
            n_workers=a.workers, threads_per_worker=a.threads, processes=True,
            dashboard_address=None,
            preload=["flows.scale"] if a.warm else None,
        )  # fmt: skip
        if cores:
            pin_workers(cluster, cores)
        cluster_seconds = time.monotonic() - t
        flow = with_task_runner(process_submissions, cluster.scheduler_address)
        params = params.model_copy(update={"dask_address": cluster.scheduler_address})
    t = time.monotonic()
    began = time.time()  # Unix time, as the entries' stage_times
    try:
        entries = flow(params)
    finally:
        flow_seconds = time.monotonic() - t
        ended = time.time()
        if cluster is not None:
            cluster.close()
    result = {
        "import_seconds": round(imported - started, 3),
        "cluster_seconds": None if cluster_seconds is None else round(cluster_seconds, 3),
        "flow_seconds": round(flow_seconds, 3),
        "flow_began": began,
        "flow_ended": ended,
        "identify_seconds": round(steps["identify"], 3),
        "finish_seconds": round(steps["finish"], 3),
        "entries": [
            {
                "status": e.status,
                "cached": e.cached,
                "seconds": e.seconds,
                "rendered_by": e.rendered_by,
                "stage_times": None if e.cached else e.stage_times,
            }
            for e in entries
        ],
    }
    Path(a.result).write_text(json.dumps(result), "utf-8")


if __name__ == "__main__":
    main()
