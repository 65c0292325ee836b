"""The targets of issue 8 checked against the figures, and ``results.md`` written from them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import curve, faces, report_rerun, scale, slots, social
from .assembly import CHECKS, JOIN, SIGNATURES, VIDEO_ALONE

#: "In seconds" for the 100-clip compilation: under this many.
SECONDS = 10.0
#: "Flat" peak memory: the biggest batch's peak at most this times the smallest's.
FLAT = 1.25
#: "Seconds" for a re-run with nothing new (the flow itself).
RERUN_SECONDS = 10.0
CAPPED = "PREFECT_TASKS_RUNNER_THREAD_POOL_MAX_WORKERS"


def _ratio(stat: dict[str, Any] | None) -> str:
    if not stat:
        return "—"
    if len(stat["runs"]) == 1:
        return f"{stat['median']:.2f}× (1 run)"
    return f"{stat['median']:.2f}× ({stat['min']:.2f}–{stat['max']:.2f})"


def _sec(stat: dict[str, Any] | None, digits: int = 1) -> str:
    if not stat:
        return "—"
    if len(stat["runs"]) == 1:
        return f"{stat['median']:.{digits}f} s (1 run)"
    return f"{stat['median']:.{digits}f} s ({stat['min']:.{digits}f}–{stat['max']:.{digits}f})"


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target of the issue with the measured value and whether it is met."""
    out: list[dict[str, Any]] = []
    sec = results["sections"]

    def add(name: str, goal: str, measured: str, met: bool | None, why: str = "") -> None:
        entry = {"target": name, "goal": goal, "measured": measured, "met": met}
        if met is False and why:
            entry["why"] = why
        out.append(entry)

    if pc := sec.get("per-clip"):
        r = pc["pipeline_over_bare"]
        stage = {k: v["median"] for k, v in pc["pipeline_stages_seconds"].items()}
        goal = pc["targets"]["pipeline_over_bare_max"]
        enc = next((v for k, v in stage.items() if k.startswith("encode")), 0.0)
        own = {k: v for k, v in stage.items() if not k.startswith("encode")}
        add("pipeline vs one bare ffmpeg pass", f"≤ {goal:.2f}× its wall time", _ratio(r),
            r["median"] <= goal,
            f"missed by {r['median'] / goal - 1:.0%}: the "
            f"pipeline does {sum(own.values()):.1f} s of work the bare commands do not ("
            + ", ".join(f"{k} {v:.1f} s" for k, v in own.items() if v >= 0.05)
            + "), and its encode also writes the checks' taps (the upload's decoded frames "
            "listed, the finished picture at 2 fps small and gray, the sound metered): it "
            f"took {enc:.1f} s against the bare encode's "
            f"{pc['bare_encode_seconds']['median']:.1f} s.")  # fmt: skip
        if m := pc.get("moviepy_over_pipeline"):
            movie = pc["moviepy_seconds"]["median"]
            enc = pc["bare_encode_seconds"]["median"]
            add("pipeline vs plain MoviePy script", "≥ 6× faster", _ratio(m),
                m["median"] >= pc["targets"]["moviepy_over_pipeline_min"],
                f"both sides run x264 with the same preset and CRF, which alone takes "
                f"{enc:.1f} s here; MoviePy adds {movie - enc:.1f} s of its own (frames piped "
                f"through Python as RGB and composited) for {movie:.1f} s in all, "
                f"{movie / enc:.1f}× one bare ffmpeg encode. 6× faster would mean finishing in "
                f"{movie / 6:.1f} s, less than the encode itself; it would take a faster x264 "
                "preset on our side only, which is not the same output.")  # fmt: skip
    if asm := sec.get("assembly"):
        for n, fig in asm["sizes"].items():
            r = fig["reencode_over_build"]
            est = " (re-encode estimated)" if fig["reencode_estimated"] else ""
            c = {k: v["median"] for k, v in fig["copy_seconds"].items()}
            join, video = c.get(JOIN, 0.0), c.get(VIDEO_ALONE, 0.0)
            add(f"compilation of {n} clips: stream copy vs re-encode", "≥ 50× faster",
                _ratio(r) + est, None if r is None else r["median"] >= 50,
                f"the build takes {c['build']:.1f} s: the join {join:.1f} s, of which copying "
                f"the pictures of all segments is {video:.1f} s and the rest is the sound: "
                f"the {fig['compilation_seconds']:.0f} s soundtrack rebuilt sample-exact from "
                "the clips' lossless masters and encoded to AAC once, so that no seam can "
                "shift sound against picture (copying each clip's AAC instead leaves up to "
                "1024 samples of gap or overlap at every seam). The re-encode and the sound "
                "both grow with the programme's length, so longer clips would not change "
                "the ratio much.")  # fmt: skip
        big = max(asm["sizes"].values(), key=lambda f: f["clips"])
        build = big["copy_seconds"]["build"]
        add(f"compilation of {big['clips']} clips in seconds", f"< {SECONDS:g} s (build)",
            _sec(build), build["median"] < SECONDS)  # fmt: skip
    if b := sec.get("batch"):
        runs = b["scaling"]
        exact = all(r["encodes"] == r["accepted"] == r["clips"] for r in runs)
        add("one ffmpeg encode per clip", "encodes = clips",
            ", ".join(f"{r['encodes']}/{r['clips']}" for r in runs), exact)  # fmt: skip
        lo, hi = runs[0], runs[-1]
        growth = hi["peak_tree_mib"] / lo["peak_tree_mib"]
        add("peak memory flat as the batch grows", f"{hi['clips']} clips ≤ {FLAT}× {lo['clips']}",
            f"{lo['peak_tree_mib']:.0f} → {hi['peak_tree_mib']:.0f} MiB ({growth:.2f}×)",
            growth <= FLAT)  # fmt: skip
        inc = b["incremental"]
        for key, when in (("nothing_new", "first re-run"), ("nothing_new_again", "next re-runs")):
            r = inc[key]
            add(
                f"re-run with nothing new ({when})",
                f"0 encodes, flow < {RERUN_SECONDS:g} s",
                f"{r['encodes']} encodes, {r['flow_seconds']:.1f} s",
                r["encodes"] == 0 and r["flow_seconds"] < RERUN_SECONDS,
            )
        one = inc["one_new"]
        add(
            "re-run with one new upload",
            "1 encode",
            f"{one['encodes']} encode(s), {one['flow_seconds']:.1f} s",
            one["encodes"] == 1,
        )
        so = b["scale_out"]
        add(
            f"{so['clips']} clips on a 2-worker Dask cluster vs threads",
            "(reported, no target)",
            f"{_ratio(so['dask_over_threads'])} the threads' flow time",
            None,
        )
    # Judged on the phone clips; section 3's tiny clips are quoted beside them.
    out += slots.targets(sec.get("slots"), sec.get("batch"))
    if c := sec.get("curve"):
        out += curve.targets(c)
    if sc := sec.get("scale"):
        out += scale.targets(sc)
    if soc := sec.get("social"):
        out += social.targets(soc)
    return out


def write_markdown(path: Path, results: dict[str, Any]) -> None:
    m = results["machine"]
    sec = results["sections"]
    lines = [
        "# Benchmark results",
        "",
        f"Written by `make bench` (`bench/run.py`, plan **{results['plan']}**) on "
        f"{m['date']}. Every figure is the median with (min–max) over its runs; every "
        "ratio is computed round by round from A and B measured in the same round "
        "(interleaved), then summarized. Re-run with `make bench`; see the README's "
        "Performance section for what the figures mean.",
        "",
        "| machine | |",
        "| --- | --- |",
        f"| cores | {m['cores']} ({m['cpu']}) |",
        f"| memory | {m['memory_gib']} GiB |",
        f"| ffmpeg | {m['ffmpeg']} |",
        f"| Python, packages | {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in m["packages"].items())
        + " |",
        f"| load average (1/5/15 min) | at start {m['load_average_at_start']}, "
        f"at end {m.get('load_average_at_end')} |",
        f"| bench wall time | {results['bench_seconds']:.0f} s ("
        + ", ".join(f"{k} {v:.0f} s" for k, v in results["section_seconds"].items())
        + ") |",
        *(
            f"| re-run later: {', '.join(r['sections'])} | {r['date']}, load average at start "
            f"{r['load_average_at_start']}, at end {r['load_average_at_end']} |"
            for r in results.get("merged", [])
        ),
        "",
        "## Targets",
        "",
        "| target | goal | measured | met |",
        "| --- | --- | --- | --- |",
    ]
    for t in results["targets"]:
        met = {True: "yes", False: "**no**", None: "—"}[t["met"]]
        lines.append(f"| {t['target']} | {t['goal']} | {t['measured']} | {met} |")
    if missed := [t for t in results["targets"] if t.get("why")]:
        lines += ["", "Why the missed targets are missed:", ""]
        lines += [f"- **{t['target']}**: {t['why']}" for t in missed]
    if pc := sec.get("per-clip"):
        lines += _per_clip(pc)
    if asm := sec.get("assembly"):
        lines += _assembly(asm)
    if b := sec.get("batch"):
        lines += _batch(b)
    if f := sec.get("faces"):
        lines += faces.markdown(f)
    if c := sec.get("curve"):
        lines += curve.markdown(c)
    if sc := sec.get("scale"):
        lines += scale.markdown(sc)
    if soc := sec.get("social"):
        lines += social.markdown(soc)
    if sl := sec.get("slots"):
        lines += slots.markdown(sl)
    path.write_text("\n".join(lines) + "\n", "utf-8")


def _per_clip(pc: dict[str, Any]) -> list[str]:
    s = pc["setup"]
    lines = [
        "",
        "## 1. One clip: pipeline, bare ffmpeg, MoviePy",
        "",
        f"Upload: {s['clip']} (lavfi: gradients blended with testsrc2). x264 preset "
        f"`{s['x264_preset']}`, CRF {s['crf']} on every side. {s['runs']} interleaved rounds "
        f"(MoviePy in {s['moviepy_runs']} of them). Gain {s['gain_db']} dB, limiter "
        f"{'on' if s['limiter'] else 'off'}. The bare encode's video is "
        f"{'bit-identical' if pc['bare_video_identical_to_pipeline'] else '**not** identical'}"
        " to the pipeline's.",
        "",
        "| side | what it runs | wall time |",
        "| --- | --- | --- |",
        "| pipeline | hash + probe + loudness pass (sound only) + the one encode, which also "
        "checks the upload's decode and taps the finished picture and sound for the quality "
        "flags and loudness + output probe/checks + quality maths on the tapped frames | "
        f"{_sec(pc['pipeline_seconds'])} |",
        "| bare ffmpeg | audio-only loudness analysis pass + the pipeline's exact encode command "
        f"| {_sec(pc['bare_seconds'])} |",
        f"| … of which the encode | | {_sec(pc['bare_encode_seconds'])} |",
        "| MoviePy 2 script | decode, composite two TextClips, encode (same preset/CRF); "
        f"no loudness, no checks | {_sec(pc['moviepy_seconds'])} |",
        "",
        f"- pipeline / bare ffmpeg (both passes): **{_ratio(pc['pipeline_over_bare'])}**",
        f"- pipeline / bare encode alone: {_ratio(pc['pipeline_over_bare_encode_only'])}",
        "- ffmpeg runs that decode the upload's picture, per pipeline round: "
        + ", ".join(str(n) for n in pc.get("pipeline_decodes_of_upload", [])),
        f"- MoviePy / pipeline: **{_ratio(pc['moviepy_over_pipeline'])}**",
        "",
        "Where the pipeline's time goes:",
        "",
        "| stage | wall time |",
        "| --- | --- |",
    ]
    lines += [f"| {k} | {_sec(v, 2)} |" for k, v in pc["pipeline_stages_seconds"].items()]
    outs = pc["outputs"]
    lines += [
        "",
        "Outputs: "
        + "; ".join(
            f"{k}: {v['video']}, {v['audio']}, {v['duration']} s" for k, v in outs.items() if v
        ),
    ]
    return lines


def _assembly(asm: dict[str, Any]) -> list[str]:
    s = asm["setup"]
    lines = [
        "",
        "## 2. The compilation: stream copy against re-encoding",
        "",
        f"Segments: {s['clip']}; title and end cards of {s['cards_seconds'][0]:g} s and "
        f"{s['cards_seconds'][1]:g} s (rendered once in {s['cards_render_seconds']:.1f} s, "
        f"then reused). {s['runs']} rounds of the stream-copy build; the re-encode "
        f"(concat demuxer, `encoder_args`, preset `{s['x264_preset']}`) was run "
        f"{s['reencode_runs']}× for {', '.join(map(str, s['reencode_measured_sizes']))} clips"
        " and is estimated by length for the other sizes (same frame size, preset and "
        "content: x264 costs the same per frame).",
        "",
        "| clips | length | build by stream copy | … signatures | … join | (video copy alone) "
        "| checks (not in build) | re-encode | re-encode / build | re-encode / join alone |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for fig in asm["sizes"].values():
        c = fig["copy_seconds"]
        est = " (estimated)" if fig["reencode_estimated"] else ""
        lines.append(
            f"| {fig['clips']} | {fig['compilation_seconds']:.0f} s | {_sec(c['build'])} "
            f"| {_sec(c.get(SIGNATURES))} | {_sec(c.get(JOIN))} | {_sec(c.get(VIDEO_ALONE))} "
            f"| {_sec(c.get(CHECKS))} | {_sec(fig['reencode_seconds'])}{est} "
            f"| {_ratio(fig['reencode_over_build'])} | {_ratio(fig['reencode_over_join'])} |"
        )
    return lines


def _batch(b: dict[str, Any]) -> list[str]:
    s = b["setup"]
    lines = [
        "",
        "## 3. Batches through the Prefect flow",
        "",
        f"Uploads: {s['upload']}, rendered into a {s['rendered_frame']}; "
        f"`max_parallel_encodes` = {s['max_parallel_encodes']}; default thread task runner. "
        f'Each run is a fresh process (Python + Prefect import included in "process"); '
        f"one Prefect server for all runs, started in {s['prefect_server_start_seconds']:.1f} s "
        "(not included). Encodes and ffmpeg commands are counted by a logging ffmpeg shim "
        "(`REEL_FFMPEG`). Memory: peak RSS summed over the run's process tree "
        "(Python, ffmpeg children, Dask workers), sampled every 50 ms. One run per size.",
        "",
        "| clips | flow | process | hashing uploads | report + review page | encodes "
        "| ffmpeg commands | Σ clip processing | overhead / clip | Σ slot held | slot use "
        "| slot use, first to last encode | before first slot | after last slot "
        "| peak memory (tree) | peak memory (Python) | peak threads (Python) |",
        "| --- " * 17 + "|",
    ]
    for r in b["scaling"]:
        lines.append(
            f"| {r['clips']} | {r['flow_seconds']:.1f} s | {r['process_seconds']:.1f} s "
            f"| {r['identify_seconds']:.1f} s | {r['finish_seconds']:.1f} s "
            f"| {r['encodes']} | {r['ffmpeg_commands']} | {r['clip_seconds_sum']:.1f} s "
            f"| {r['per_clip_seconds']:.2f} s | {r['slot_held_seconds']:.1f} s "
            f"| {r['slot_use']:.0%} | {r['slot_use_encoding']:.0%} "
            f"| {r['first_slot_after_seconds']:.1f} s | {r['after_last_slot_seconds']:.1f} s "
            f"| {r['peak_tree_mib']:.0f} MiB "
            f"| {r['peak_python_mib']:.0f} MiB | {r['peak_threads']} |"
        )
    inc = b["incremental"]
    lines += [
        "",
        "Overhead per clip = (flow wall time − hashing − report and review page − Σ slot "
        "held / encode slots) / clips: what a clip costs the batch besides its encode. A clip "
        "holds an encode slot around its encode only (taking the slot, the encode, giving it "
        "back); Σ slot held adds up those times from the entries' `stage_times` (slot taken → "
        "given back). Slot use = Σ slot held / (encode slots × the whole flow's time: start-up, "
        'hashing, report and review page included); "first to last encode" divides by the '
        "time from the first slot taken to the last given back instead. A clip's processing "
        "time is the pipeline's own clock (its entry's `seconds`). These encodes take well under "
        "a second, so slot use here measures orchestration overhead; issue 16's slot target "
        "is judged on phone clips (section Full slots on phone clips).",
        "",
        "## 4. Incremental re-runs",
        "",
        f"The {inc['clips']}-clip batch again, into the same output folder:",
        "",
        "| run | flow | process | encodes | ffmpeg commands | peak memory (Python) "
        "| peak threads |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, key in (
        ("nothing new (first re-run)", "nothing_new"),
        ("nothing new (first re-run, thread pool capped at the encode slots)",
         "nothing_new_capped_pool"),
        ("nothing new (again)", "nothing_new_again"),
        ("one new upload", "one_new"),
    ):  # fmt: skip
        r = inc[key]
        lines.append(
            f"| {label} | {r['flow_seconds']:.1f} s | {r['process_seconds']:.1f} s "
            f"| {r['encodes']} | {r['ffmpeg_commands']} | {r['peak_python_mib']:.0f} MiB "
            f"| {r['peak_threads']} |"
        )
    so = b["scale_out"]
    lines += [
        "",
        "The capped run is the same first re-run on a copy of the output folder, with "
        f"`{CAPPED}` set to the encode limit (a Prefect setting; no code change).",
        *report_rerun.lines(b.get("rerun_ab", {})),
        "",
        "## 5. Scale out: a local two-worker Dask cluster against threads",
        "",
        f"The same {so['clips']}-clip batch, {so['rounds']} round(s) of threads and Dask "
        "back to back (round 1's threads run is the scaling run above), fresh output folders. "
        "Dask: `LocalCluster(n_workers=2, threads_per_worker=1)` started in the run's process "
        "(its start-up is not in the flow time).",
        "",
        "| runner | flow | overhead / clip | slot use | peak memory (tree) | processes |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for kind, runs, flow in (
        ("threads (default)", so["threads_runs"], so["threads_flow_seconds"]),
        ("Dask, 2 workers", so["dask_runs"], so["dask_flow_seconds"]),
    ):
        lines.append(
            f"| {kind} | {_sec(flow)} | {max(r['per_clip_seconds'] for r in runs):.2f} s "
            f"| {min(r['slot_use'] for r in runs):.0%} "
            f"| {max(r['peak_tree_mib'] for r in runs):.0f} MiB "
            f"| {max(r['peak_processes'] for r in runs)} |"
        )
    lines += [
        "",
        f"Dask / threads: {_ratio(so['dask_over_threads'])}; cluster start-up "
        f"{_sec(so['dask_cluster_start_seconds'])}.",
    ]
    return lines
