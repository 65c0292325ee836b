"""``make bench`` in miniature: every section runs and writes the results it promises.

The smoke plan (tiny frames, one run each) exercises exactly the code the full
benchmark runs; this test checks the structure of ``results.json`` and
``results.md`` and the invariants a real run must also show: the bare command
is the pipeline's own encode, one encode per clip, nothing re-encoded on a
re-run. Speed targets are not asserted here: at these sizes process start-up
dominates and the ratios mean nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow

STAT = {"median", "min", "max", "runs"}


def _is_stat(value: object) -> bool:
    return isinstance(value, dict) and value.keys() >= STAT and bool(value["runs"])


def test_smoke_bench_writes_both_results(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--out", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text("utf-8"))

    m = results["machine"]
    assert m["cores"] >= 1 and m["memory_gib"] > 0 and m["ffmpeg"].startswith("ffmpeg version")
    assert m["date"] and results["plan"] == "smoke" and results["bench_seconds"] > 0

    pc = results["sections"]["per-clip"]
    for key in ("pipeline_seconds", "bare_seconds", "moviepy_seconds", "pipeline_over_bare",
                "moviepy_over_pipeline"):  # fmt: skip
        assert _is_stat(pc[key]), key
    assert pc["bare_video_identical_to_pipeline"], "the bare command is not the pipeline's encode"
    encodes = [v for k, v in pc["pipeline_stages_seconds"].items() if k.startswith("encode")]
    assert len(encodes) == 1 and encodes[0]["median"] > 0, pc["pipeline_stages_seconds"]
    for side in ("pipeline", "bare", "moviepy"):
        assert pc["outputs"][side]["video"].startswith("h264 High 256x144 30 fps"), side
        assert pc["outputs"][side]["audio"] == "aac 48000 Hz 2 ch", side

    asm = results["sections"]["assembly"]
    for n, fig in asm["sizes"].items():
        assert fig["clips"] == int(n)
        assert _is_stat(fig["copy_seconds"]["build"]) and _is_stat(fig["reencode_seconds"])
        assert _is_stat(fig["reencode_over_build"])
        assert fig["copy_seconds"]["join (video copy + sound from masters)"]["median"] > 0
    assert [f["reencode_estimated"] for f in asm["sizes"].values()] == [False, True]

    b = results["sections"]["batch"]
    for run in b["scaling"]:
        assert run["encodes"] == run["accepted"] == run["clips"], run
        assert run["peak_tree_mib"] >= run["peak_python_mib"] > 0
        assert run["flow_seconds"] > 0 and "per_clip_seconds" in run
    inc = b["incremental"]
    for key in ("nothing_new", "nothing_new_capped_pool", "nothing_new_again"):
        assert inc[key]["encodes"] == 0, key
    assert inc["one_new"]["encodes"] == 1
    so = b["scale_out"]
    assert _is_stat(so["dask_over_threads"])
    assert all(r["encodes"] == so["clips"] for r in so["threads_runs"] + so["dask_runs"])

    fa = results["sections"]["faces"]
    assert set(fa["pipelines"]) == {"haar", "blazeface", "deface"}
    for name, p in fa["pipelines"].items():
        assert p["frames_sampled"] >= 2 and p["seconds_per_clip"] > 0, name
        assert 0 <= p["frames_with_a_visible_face"] <= p["frames_sampled"], name
        assert all(name not in c["counted_by"] for c in p["per_clip"].values()), name

    cu = results["sections"]["curve"]
    for row in cu["candidates"]:
        for kind in cu["setup"]["kinds"]:
            fig = row["clips"][kind]
            assert fig["cpu_seconds"] > 0 and fig["bytes"] > 0 and fig["ssim_db"] > 0, row
    qualified = [
        {"preset": r["preset"], "crf": r["crf"]} for r in cu["candidates"] if r["qualifies"]
    ]
    assert cu["chosen"] in qualified

    sc = results["sections"]["scale"]
    for name, runs in sc["runs"].items():
        assert all(r["encodes"] == r["accepted"] == sc["setup"]["clips"] for r in runs), name
    assert _is_stat(sc["two_over_one"]) and _is_stat(sc["dask_over_threads"])

    names = {t["target"] for t in results["targets"]}
    assert {"pipeline vs one bare ffmpeg pass", "one ffmpeg encode per clip"} <= names
    md = (tmp_path / "results.md").read_text("utf-8")
    for heading in ("## Targets", "## 1. One clip", "## 2. The compilation",
                    "## 3. Batches", "## 4. Incremental", "## 5. Scale out",
                    "## 6. Anonymization", "## 7. x264 presets", "## 8. Scale-out"):  # fmt: skip
        assert heading in md, heading
    assert m["ffmpeg"] in md
    _check_slots(results, md)


def _check_slots(results: dict, md: str) -> None:
    """The phone-clip slot section: its runs, its slot figures and issue 16's target row."""
    sl = results["sections"]["slots"]
    s = sl["setup"]
    assert s["rendered_frame"] == "256x144", s  # the smoke plan's override reached the flow
    assert len(sl["runs"]) == s["rounds"] == len(sl["slot_use"]["runs"])
    for r in sl["runs"]:
        assert r["encodes"] == r["accepted"] == r["clips"] == s["clips"], r
        assert 0 < r["slot_use"] <= r["slot_use_encoding"] <= 1.001, r
        assert 0 < r["encode_seconds"] <= r["slot_held_seconds"], r
        # The flow's time: before the first slot, the slots' span, after the last.
        parts = r["first_slot_after_seconds"] + r["encode_span_seconds"]
        assert abs(parts + r["after_last_slot_seconds"] - r["flow_seconds"]) < 0.5, r
        assert f"| {r['round']} | {r['flow_seconds']:.1f} s | {r['encodes']}/" in md
    rows = [t for t in results["targets"] if "phone clips" in t["target"]]
    assert len(rows) == 1, results["targets"]
    row = rows[0]
    assert row["met"] is (sl["slot_use"]["median"] >= 0.9), row
    assert f"{sl['slot_use']['median']:.0%}" in row["measured"], row
    for r in results["sections"]["batch"]["scaling"]:  # the tiny clips quoted, not judged
        assert f"{r['clips']} clips {r['slot_use']:.0%}" in row["measured"], row
    if row["met"] is False:
        assert "before the first slot" in row["why"] and "between the first" in row["why"]
    assert "## Full slots on phone clips" in md
