"""Section 8: does the Dask scale-out scale? One worker on one core against two on one each.

The same uploads through the ``process-submissions`` flow (a fresh process per
run, as in sections 3-5, one Prefect server for all), on:

* ``dask-1``: a one-worker Dask cluster, the worker pinned to core 0;
* ``dask-2``: two workers, pinned to cores 0 and 1 (a second machine, here);
* ``threads``: the default thread runner, the flow pinned to cores 0 and 1
  (the same cores as ``dask-2``), ``max_parallel_encodes`` = 2.

Pinning (``sched_setaffinity`` on every thread of each worker; ffmpeg
children inherit it) stands in for machines: one core is one machine. Workers
are started with ``--preload flows.scale``, as a standing cluster would be, so
the cluster's start-up (not part of a run) is not in the flow time. The runs of
a round are back to back, the order turned round from one round to the next.

Uploads are 640x360 (3 s each, distinct content) rendered into a 640x360
frame, so that encoding, not Prefect, is most of a clip's time, as for real
30-60 s phone clips, while the section stays within minutes.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .batch import FlowRunner, link_uploads, overhead
from .common import paired_ratios, summary

CONFIG = """\
# bench/scale.py: a small frame so that a run takes tens of seconds.
[output]
width = 640
height = 360

[orchestration]
max_parallel_encodes = SLOTS
"""
#: Issue 16's targets: two workers against one, threads against Dask on the same cores.
TWO_OVER_ONE_MIN = 1.7
THREADS_DASK_WITHIN = 0.10
#: The runs of a round: name, flow_child arguments. A Dask worker stands for a
#: one-core machine: one encode slot (``DASK_TOML``), and a second thread, so that
#: the next clip's task starts (Prefect's task-run bookkeeping, probing, loudness)
#: while one encodes. Threads: the flow on both cores with two slots (``THREADS_TOML``).
DASK_TOML, THREADS_TOML = "dask.toml", "threads.toml"
RUNS: dict[str, list[str]] = {
    "dask-1": ["--dask", "--workers", "1", "--threads", "2", "--warm", "--pin", "0"],
    "dask-2": ["--dask", "--workers", "2", "--threads", "2", "--warm", "--pin", "0,1"],
    "threads": ["--pin", "0,1"],
}


def make_uploads(pool: Path, count: int, size: tuple[int, int], seconds: float) -> list[Path]:
    """``count`` uploads of distinct content (length differs by a frame or more), sidecars."""
    import json

    import mediagen as mg

    pool.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(count):
        path = pool / f"upload-{i:02d}.mp4"
        if not path.exists():
            mg.make_clip(path, duration=seconds + 0.1 * i, size=size, preset="veryfast")
        path.with_suffix(".json").write_text(
            json.dumps({"name": f"Supporter {i}", "consent": True}), "utf-8"
        )
        out.append(path)
    return out


def bench(
    work: Path,
    *,
    clips: int,
    size: tuple[int, int],
    seconds: float,
    rounds: int,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """``rounds`` rounds of :data:`RUNS` on the same ``clips`` uploads."""
    from prefect.testing.utilities import prefect_test_harness

    folder = work / "scale"
    shutil.rmtree(folder / "runs", ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    toml = CONFIG.replace("640", str(size[0])).replace("360", str(size[1]))
    for name, slots in ((DASK_TOML, 1), (THREADS_TOML, 2)):
        (folder / name).write_text(toml.replace("SLOTS", str(slots)), "utf-8")
    t = time.monotonic()
    src = link_uploads(make_uploads(folder / "pool", clips, size, seconds), folder / "src")
    log(f"  {clips} uploads ready in {time.monotonic() - t:.0f} s")
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in RUNS}
    with prefect_test_harness(server_startup_timeout=180):
        from prefect.settings import PREFECT_API_URL

        runner = FlowRunner(folder / "runs", str(PREFECT_API_URL.value()), folder / THREADS_TOML)
        for i in range(rounds):
            order = list(RUNS) if i % 2 == 0 else list(reversed(RUNS))
            for name in order:
                out = folder / "runs" / f"out-{name}-{i}"
                # The last --config wins: Dask runs take the one-core machine's settings.
                extra = RUNS[name] + (
                    ["--config", str(folder / DASK_TOML)] if "dask" in name else []
                )
                r = runner.run(src, out, extra=extra)
                r.update(overhead(r, 2 if name != "dask-1" else 1))
                results[name].append(r)
                log(f"  round {i + 1} {name}: flow {r['flow_seconds']:.1f} s, "
                    f"{r['encodes']} encodes by {r['renderers']} process(es)")  # fmt: skip

    def flows(name: str) -> list[float]:
        return [r["flow_seconds"] for r in results[name]]

    return {
        "setup": {
            "clips": clips,
            "upload": f"{seconds:g}-{seconds + 0.1 * (clips - 1):g} s "
            f"{size[0]}x{size[1]} H.264 + AAC",
            "rounds": rounds,
            "runs": {k: " ".join(v) for k, v in RUNS.items()},
            "slots": {"dask": "1 per worker", "threads": 2},
        },
        "flow_seconds": {name: summary(flows(name)) for name in RUNS},
        "two_over_one": paired_ratios(flows("dask-1"), flows("dask-2")),
        "dask_over_threads": paired_ratios(flows("dask-2"), flows("threads")),
        "runs": results,
    }


def targets(section: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 16's two scale-out targets, checked on the medians of the paired ratios."""
    two = section["two_over_one"]
    dt = section["dask_over_threads"]
    out = [
        {
            "target": "Dask: two workers (a core each) vs one worker (one core)",
            "goal": f"≥ {TWO_OVER_ONE_MIN}× the throughput",
            "measured": f"{two['median']:.2f}× ({two['min']:.2f}–{two['max']:.2f})",
            "met": two["median"] >= TWO_OVER_ONE_MIN,
        },
        {
            "target": "Dask (2 workers) vs threads on the same 2 cores",
            "goal": f"flow time within {THREADS_DASK_WITHIN:.0%}",
            "measured": f"{dt['median']:.2f}× ({dt['min']:.2f}–{dt['max']:.2f}) the threads' time",
            "met": abs(dt["median"] - 1) <= THREADS_DASK_WITHIN,
        },
    ]
    for t in out:
        if not t["met"]:
            t["why"] = (
                f"{section['setup']['rounds']} round(s) back to back on a machine whose load "
                "changed during the run (see section 8: load average at start and end); the "
                "clips' own processing time moves with it, so compare the slot use and the "
                "overhead per clip, which do not depend on how fast the clips encoded."
            )
    return out


def markdown(section: dict[str, Any]) -> list[str]:
    """Section 8 of ``results.md``."""
    s = section["setup"]
    lines = [
        "",
        "## 8. Scale-out: Dask workers pinned to cores, against threads",
        "",
        f"{s['clips']} uploads ({s['upload']}) through the flow, {s['rounds']} round(s) of "
        "the three runs back to back (order turned round each round), fresh output folders, "
        "one Prefect server. One core stands for one machine: each Dask worker (every thread, "
        "and so its ffmpeg children) is pinned to its core; the threads run pins the flow "
        "process to both cores. Workers start with `--preload flows.scale`, as a standing "
        "cluster would; the cluster's start-up is not in the flow time. Each worker has one "
        "encode slot (`max_parallel_encodes = 1`: a one-core machine) and two threads, so the "
        "next clip's task does its Prefect bookkeeping, fetch, probe, health and loudness pass "
        "(and the last one's checks) while one encodes: a slot is held around the encode "
        "only. The threads run has two slots and keeps `prepare_ahead` clips in hand beyond "
        "them. Slot use as in section 3 (Σ slot held / (slots × flow time)).",
        "",
        "| run | what | flow | encodes | rendering processes | overhead / clip "
        "| slot use | slot use, first to last encode | load average (1 min) at start |",
        "| --- " * 9 + "|",
    ]
    for name, runs in section["runs"].items():
        lines.append(
            f"| {name} | `{s['runs'][name]}` | {_sec(section['flow_seconds'][name])} "
            f"| {', '.join(str(r['encodes']) for r in runs)} "
            f"| {', '.join(str(r['renderers']) for r in runs)} "
            f"| {max(r['per_clip_seconds'] for r in runs):.2f} s "
            f"| {_range(r['slot_use'] for r in runs)} "
            f"| {_range(r.get('slot_use_encoding', 0.0) for r in runs)} "
            f"| {', '.join(str(r.get('load_average_at_start', '—')) for r in runs)} |"
        )
    two, dt = section["two_over_one"], section["dask_over_threads"]
    lines += [
        "",
        f"Throughput of two workers over one: **{two['median']:.2f}×** "
        f"({two['min']:.2f}–{two['max']:.2f}); Dask over threads on the same cores: "
        f"**{dt['median']:.2f}×** ({dt['min']:.2f}–{dt['max']:.2f}) the flow time.",
    ]
    if ran := section.get("ran"):
        lines.append(f"Run {ran['date']}; load average at its end {ran['load_average_at_end']}.")
    return lines


def _range(values: Iterable[float]) -> str:
    vals = sorted(values)
    return f"{vals[0]:.0%}" if vals[0] == vals[-1] else f"{vals[0]:.0%}–{vals[-1]:.0%}"


def _sec(stat: dict[str, Any]) -> str:
    if len(stat["runs"]) == 1:
        return f"{stat['median']:.1f} s (1 run)"
    return f"{stat['median']:.1f} s ({stat['min']:.1f}–{stat['max']:.1f})"
