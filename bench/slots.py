"""Section: full slots (issue 16) on a batch of phone-like clips, default settings.

Issue 16 wants the encode slots busy at least 90 % of a batch flow's time.
Section 3's uploads are tiny (320x180, 1.6 s, into a 320x180 frame): their
encodes take a fraction of a second, so per-clip preparation and Prefect's
bookkeeping outweigh them and that batch measures orchestration overhead, not
slot use. Here the uploads are what the campaign gets: short phone clips
(1280x720, 30 fps, H.264 + AAC, distinct content each) rendered with the
default settings into the campaign's 1920x1080 frame, ``max_parallel_encodes``
at its default. The runs go through the real ``process-submissions`` flow as
section 3's do (:class:`bench.batch.FlowRunner`: a fresh process per run, one
Prefect server for all, encodes counted by the ffmpeg shim), each round into a
fresh output folder, and slot use is read from the clips' ``stage_times``.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .batch import FlowRunner, link_uploads, make_uploads, overhead
from .common import summary

#: Issue 16: the encode slots busy at least this share of a batch flow's time.
SLOT_USE = 0.90


def config_text(overrides: dict[str, Any] | None) -> str:
    """A config file holding ``overrides`` (tables of scalars) on top of the defaults."""
    lines = ["# bench/slots.py: the default settings" + (", with:" if overrides else ".")]
    for table, values in (overrides or {}).items():
        lines += ["", f"[{table}]"]
        # JSON's numbers, booleans and double-quoted strings are valid TOML values.
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def bench(
    work: Path,
    *,
    clips: int,
    size: tuple[int, int],
    seconds: float,
    rounds: int,
    overrides: dict[str, Any] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """``rounds`` runs of the flow over ``clips`` uploads of ``size`` and ``seconds``."""
    from prefect.testing.utilities import prefect_test_harness

    from processing.config import load_config

    folder = work / "slots"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    config = folder / "slots.toml"
    config.write_text(config_text(overrides), "utf-8")
    cfg = load_config(config)
    slots = cfg.orchestration.max_parallel_encodes

    t = time.monotonic()
    uploads = make_uploads(folder / "pool", clips, size, seconds)
    generate = time.monotonic() - t
    log(f"  {clips} uploads of {seconds:g} s {size[0]}x{size[1]} generated in {generate:.1f} s")
    src = link_uploads(uploads, folder / "src")
    runs: list[dict[str, Any]] = []
    t = time.monotonic()
    with prefect_test_harness(server_startup_timeout=120):
        from prefect.settings import PREFECT_API_URL

        server_seconds = time.monotonic() - t
        log(f"  Prefect server started in {server_seconds:.1f} s")
        runner = FlowRunner(folder, str(PREFECT_API_URL.value()), config)
        for i in range(rounds):
            r = runner.run(src, folder / f"out-{i}")
            r.update(overhead(r, slots))
            # Slot-seconds left idle between the first slot taken and the last given back.
            r["idle_between_seconds"] = round(
                slots * r["encode_span_seconds"] - r["slot_held_seconds"], 3
            )
            runs.append({"round": i + 1, "clips": clips, **r})
            log(f"  round {i + 1}: flow {r['flow_seconds']:.1f} s, {r['encodes']} encodes, "
                f"slot use {r['slot_use']:.0%} ({r['slot_use_encoding']:.0%} first to last "
                f"encode), load {r['load_average_at_start']:.1f}")  # fmt: skip
    setup = {
        "upload": f"{seconds:g} s {size[0]}x{size[1]} 30 fps H.264 + AAC",
        "clips": clips,
        "rounds": rounds,
        "rendered_frame": f"{cfg.output.width}x{cfg.output.height}",
        "x264": f"{cfg.output.x264_preset}/CRF {cfg.output.crf}",
        "max_parallel_encodes": slots,
        "prepare_ahead": cfg.orchestration.prepare_ahead,
        "overrides": overrides or {},
        "generate_seconds": round(generate, 2),
        "prefect_server_start_seconds": round(server_seconds, 2),
    }
    return _section(setup, runs)


def _section(setup: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The section's results: the setup, every run, and the slot figures summarized."""
    return {
        "setup": setup,
        "runs": runs,
        "slot_use": summary([r["slot_use"] for r in runs]),
        "slot_use_encoding": summary([r["slot_use_encoding"] for r in runs]),
        "flow_seconds": summary([r["flow_seconds"] for r in runs]),
        "targets": {"slot_use_min": SLOT_USE},
    }


def _pct(stat: dict[str, Any]) -> str:
    if len(stat["runs"]) == 1:
        return f"{stat['median']:.0%} (1 run)"
    return f"{stat['median']:.0%} ({stat['min']:.0%}–{stat['max']:.0%})"


def slot_why(runs: list[dict[str, Any]], slots: int) -> str:
    """Where the slots' idle time is, run by run: before the first, between, after the last."""
    parts = [
        f"{r.get('label', str(r['clips']) + ' clips')}: flow {r['flow_seconds']:.1f} s, "
        f"{r['first_slot_after_seconds']:.1f} s before the first slot (flow start, hashing, "
        f"first clip's preparation), {r['after_last_slot_seconds']:.1f} s after the last "
        f"(last clip's checks, report and review page {r['finish_seconds']:.1f} s), "
        f"{slots * r['encode_span_seconds'] - r['slot_held_seconds']:.1f} slot-seconds idle "
        f"between the first and the last encode (slots held "
        f"{r['slot_use_encoding']:.0%} of that span; Σ held {r['slot_held_seconds']:.1f} s of "
        f"which encoding {r['encode_seconds']:.1f} s)"
        for r in runs
    ]
    return "; ".join(parts) + "."


def targets(
    section: dict[str, Any] | None, tiny: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Issue 16's slot target, met or not on the phone clips; ``tiny``: section 3's batch.

    Section 3's tiny-clip figures are quoted beside the phone clips' (they
    measure orchestration overhead, not slot use), never judged against the target.
    """
    tiny_runs = [r for r in (tiny or {}).get("scaling", []) if "slot_use" in r]
    tiny_text = ", ".join(f"{r['clips']} clips {r['slot_use']:.0%}" for r in tiny_runs)
    tiny_text = f"tiny 320x180 clips (overhead test): {tiny_text or 'not measured'}"
    if section is None:
        if not tiny_runs:
            return []
        measured, met, why = f"phone clips: not measured; {tiny_text}", None, ""
    else:
        s, use = section["setup"], section["slot_use"]
        measured = (
            f"phone clips ({s['clips']} × {s['upload']} into {s['rendered_frame']}): "
            f"{_pct(use)} of the flow's time, {_pct(section['slot_use_encoding'])} from first "
            f"to last encode; {tiny_text}"
        )
        met = use["median"] >= section["targets"]["slot_use_min"]
        labelled = [{**r, "label": f"round {r['round']}"} for r in section["runs"]]
        why = slot_why(labelled, s["max_parallel_encodes"])
    entry: dict[str, Any] = {
        "target": "encode slots busy on a batch of phone clips (issue 16)",
        "goal": f"≥ {SLOT_USE:.0%} of the flow's time",
        "measured": measured,
        "met": met,
    }
    if met is False:
        entry["why"] = why
    return [entry]


def markdown(section: dict[str, Any]) -> list[str]:
    """The section of ``results.md``."""
    s = section["setup"]
    lines = [
        "",
        "## Full slots on phone clips (issue 16)",
        "",
        f"{s['clips']} uploads of {s['upload']} (distinct content each), rendered with the "
        f"default settings into the {s['rendered_frame']} frame (x264 {s['x264']}"
        + (f"; overrides {s['overrides']}" if s["overrides"] else "")
        + f"), `max_parallel_encodes` = {s['max_parallel_encodes']}, `prepare_ahead` = "
        f"{s['prepare_ahead']}, default thread task runner; {s['rounds']} round(s), each a "
        "fresh process into a fresh output folder, one Prefect server (started in "
        f"{s['prefect_server_start_seconds']:.1f} s, not included). Slot use as in section 3: "
        "Σ slot held / (slots × the flow's time); idle between = slots × (last slot given "
        "back − first taken) − Σ held.",
        "",
        "| round | flow | encodes | Σ encode | Σ slot held | slot use "
        "| slot use, first to last encode | before first slot | after last slot "
        "| idle slot-seconds between | report + review page | peak memory (tree) "
        "| load average at start |",
        "| --- " * 13 + "|",
    ]
    for r in section["runs"]:
        lines.append(
            f"| {r['round']} | {r['flow_seconds']:.1f} s | {r['encodes']}/{r['clips']} "
            f"| {r['encode_seconds']:.1f} s | {r['slot_held_seconds']:.1f} s "
            f"| {r['slot_use']:.0%} | {r['slot_use_encoding']:.0%} "
            f"| {r['first_slot_after_seconds']:.1f} s | {r['after_last_slot_seconds']:.1f} s "
            f"| {r['idle_between_seconds']:.1f} s | {r['finish_seconds']:.1f} s "
            f"| {r['peak_tree_mib']:.0f} MiB | {r['load_average_at_start']:.2f} |"
        )
    return lines
