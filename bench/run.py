"""``make bench``: performance figures into ``bench/results.md`` and ``bench/results.json``.

    .venv/bin/python bench/run.py                  # the full plan (~30 min on 2 cores)
    .venv/bin/python bench/run.py --smoke --out D  # seconds-long, tiny sizes (tests/test_bench.py)
    .venv/bin/python bench/run.py --only per-clip  # one section, merged into the last results

Scratch files go to ``bench/out/`` (ignored by git) unless ``--work`` says otherwise.
Sizes and run counts are in :data:`PLANS`; the results record the plan they ran.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: bench/ is on the path, the repo is not
    sys.path.insert(0, str(ROOT))

# Smoke: a small frame, so that every section takes seconds.
SMALL = {"output": {"width": 256, "height": 144}}

#: What each plan runs. "full" takes about half an hour on a 2-core machine
#: (most of it the per-clip, batch, faces and curve sections);
#: "smoke" checks that everything runs and writes its results.
PLANS: dict[str, dict[str, dict[str, Any]]] = {
    "full": {
        "per-clip": {
            "duration": 20.0, "size": (1920, 1080), "runs": 2, "moviepy_runs": 1,
        },
        "assembly": {
            "clip_seconds": 1.0, "sizes": (20, 100), "runs": 3,
            "reencode_sizes": (20,), "reencode_runs": 1,
        },
        "batch": {
            "sizes": (10, 50, 100), "incremental_clips": 50, "scale_out_clips": 10,
            "scale_out_rounds": 1,
        },
        "faces": {"duration": 2.0},
        "curve": {"size": (1920, 1080), "seconds": 3.0},
        "scale": {"clips": 6, "size": (640, 360), "seconds": 2.5, "rounds": 3},
        "social": {"duration": 4.0, "size": (1280, 720), "runs": 2},
        # Phone-like clips into the campaign's 1080p frame, default settings.
        "slots": {"clips": 10, "size": (1280, 720), "seconds": 4.0, "rounds": 2},
    },
    "smoke": {
        "per-clip": {
            "duration": 1.0, "size": (256, 144), "runs": 1, "moviepy_runs": 1,
            "overrides": SMALL,
        },
        "assembly": {
            "clip_seconds": 1.0, "sizes": (2, 3), "runs": 1, "reencode_sizes": (2,),
            "reencode_runs": 1,
            "overrides": {**SMALL, "compilation": {"title_seconds": 1.0, "end_seconds": 1.0}},
        },
        "batch": {
            "sizes": (1, 2), "incremental_clips": 2, "scale_out_clips": 1, "scale_out_rounds": 1,
        },
        "faces": {"duration": 1.0, "scenes": ("two.mp4",)},
        "curve": {
            "size": (256, 144), "seconds": 1.0, "candidates": (("fast", 20), ("veryfast", 18)),
        },
        "scale": {"clips": 2, "size": (256, 144), "seconds": 1.0, "rounds": 1},
        "social": {"duration": 1.0, "size": (320, 180), "runs": 1, "overrides": SMALL},
        "slots": {"clips": 2, "size": (256, 144), "seconds": 1.0, "rounds": 1, "overrides": SMALL},
    },
}  # fmt: skip
SECTIONS = ("per-clip", "assembly", "batch", "faces", "curve", "scale", "social", "slots")


def merged(previous: Path, results: dict[str, Any]) -> dict[str, Any]:
    """``results`` of a ``--only`` run merged into the previous results of the same plan.

    The sections run now replace theirs; the others, the machine and the wall
    times of the previous run stay, and ``merged`` lists what was run when, so
    ``results.md`` keeps every section instead of only the ones just run.
    """
    try:
        old = json.loads(previous.read_text("utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return results
    if old.get("plan") != results["plan"]:
        return results
    old["sections"].update(results["sections"])
    old["section_seconds"].update(results["section_seconds"])
    old.setdefault("merged", []).append(
        {
            "sections": list(results["sections"]),
            "date": results["machine"]["date"],
            "load_average_at_start": results["machine"]["load_average_at_start"],
            "load_average_at_end": results["machine"]["load_average_at_end"],
        }
    )
    return old


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, one run each (seconds)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench", help="where results.{md,json} go")
    ap.add_argument("--work", type=Path, help="scratch folder (default: bench/out or OUT/work)")
    ap.add_argument("--only", choices=SECTIONS, action="append", help="run only these sections")
    a = ap.parse_args(argv)
    plan_name = "smoke" if a.smoke else "full"
    plan = PLANS[plan_name]
    out: Path = a.out.resolve()
    work: Path = (a.work or (ROOT / "bench" / "out" if not a.smoke else out / "work")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    # Prefect keeps its files here, not in ~/.prefect or the project's .prefect/.
    os.environ["PREFECT_HOME"] = str(work / "prefect-home")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

    from bench import assembly, batch, curve, faces, per_clip, scale, slots, social
    from bench.common import dump, machine
    from bench.report import targets, write_markdown

    started = time.monotonic()

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - started:6.1f} s] {msg}", flush=True)

    results: dict[str, Any] = {"machine": machine(), "plan": plan_name, "sections": {}}
    timings: dict[str, float] = {}
    for name in a.only or SECTIONS:
        log(f"{name} …")
        t = time.monotonic()
        if name == "per-clip":
            section = per_clip.bench(work, log=log, **plan[name])
        elif name == "assembly":
            section = assembly.bench(work, log=log, **plan[name])
        elif name == "faces":
            section = faces.bench(work, log=log, **plan[name])
        elif name == "curve":
            section = curve.bench(work, log=log, **plan[name])
        elif name == "scale":
            section = scale.bench(work, log=log, **plan[name])
        elif name == "social":
            section = social.bench(work, log=log, **plan[name])
        elif name == "slots":
            section = slots.bench(work, log=log, **plan[name])
        else:
            section = batch.bench(work, log=log, **plan[name])
        timings[name] = round(time.monotonic() - t, 1)
        section["plan"] = {k: v for k, v in plan[name].items() if k != "overrides"}
        section["ran"] = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "seconds": timings[name],
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        }
        results["sections"][name] = section
        log(f"{name} done in {timings[name]:.0f} s")
    results["section_seconds"] = timings
    results["bench_seconds"] = round(time.monotonic() - started, 1)
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    if a.only:
        results = merged(out / "results.json", results)
    results["targets"] = targets(results)
    out.mkdir(parents=True, exist_ok=True)
    dump(out / "results.json", results)
    write_markdown(out / "results.md", results)
    log(f"wrote {out / 'results.md'} and {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
