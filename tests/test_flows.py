"""Prefect orchestration against a real Prefect server (prefect_test_harness)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from prefect.client.schemas.sorting import DeploymentSort, FlowRunSort

import mediagen as mg
from flows.campaign import process_submissions, remembrance_campaign, with_task_runner
from flows.params import BatchParams, CampaignParams

pytestmark = pytest.mark.slow


def _uploads(folder: Path, count: int, *, start: int = 0, broken: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + count):
        mg.make_clip(folder / f"clip{i}.mp4", duration=2, size=(640, 360), lufs=-20 - i)
        (folder / f"clip{i}.json").write_text(
            json.dumps({"name": f"Supporter {i}", "consent": True})
        )
    if broken:
        mg.make_truncated(folder / "broken.mp4")
    return folder


def _clip_times(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (out / "clips").glob("*.mp4")}


def _artifacts(flow_run_id: object) -> dict[str, dict[str, Any]]:
    """Artifacts of a flow run, by key, straight from the server's REST API.

    (Prefect 3.8's client sends null for the filters it is not given, which this
    server refuses, and empty filters exclude flow-level artifacts.)
    """
    from prefect.client.orchestration import get_client

    body = {
        "artifacts": {"flow_run_id": {"any_": [str(flow_run_id)]}},
        "sort": "CREATED_DESC",
        "limit": 100,
        "offset": 0,
    }

    async def read() -> list[dict[str, Any]]:
        async with get_client() as client:
            response = await client._client.post("/artifacts/filter", json=body)
            response.raise_for_status()
            return response.json()

    return {a["key"]: a for a in asyncio.run(read()) if a["key"]}


def test_campaign_end_to_end_then_incremental_runs(prefect_server: str, tmp_path: Path) -> None:
    src = _uploads(tmp_path / "uploads", 2, broken=True)
    out = tmp_path / "out"
    state = remembrance_campaign(
        CampaignParams(source=str(src), out=str(out), approve_all=True), return_state=True
    )
    assert state.is_completed(), state
    video = Path(state.result())
    assert video.is_file() and video.parent.parent == out / "compilation"
    assert (
        video.relative_to(out).as_posix()
        == json.loads((out / "compilation" / "manifest.json").read_text())["output"]
    )
    report = json.loads((out / "report.json").read_text())
    statuses = sorted(e["status"] for e in report["submissions"])
    assert statuses == ["accepted", "accepted", "rejected"]
    assert report["compilation"]["clips"]

    # Artifacts of the processing subflow: table, summary, links, progress at 100 %.
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["process-submissions"])),
            sort=FlowRunSort.START_TIME_DESC,
            limit=50,
        )
    run = max(runs, key=lambda r: r.created)
    found = _artifacts(run.id)
    assert {"submissions", "run-summary", "review-app"} <= found.keys()
    assert len(json.loads(found["submissions"]["data"])) == 3
    assert float(found["processing-progress"]["data"]) == 100.0

    # A second run on the same inputs encodes nothing.
    before = _clip_times(out)
    process_submissions(BatchParams(source=str(src), out=str(out)))
    assert _clip_times(out) == before

    # One new upload encodes exactly one clip.
    _uploads(src, 1, start=2)
    process_submissions(BatchParams(source=str(src), out=str(out)))
    after = _clip_times(out)
    assert len(after) == len(before) + 1
    assert {k: v for k, v in after.items() if k in before} == before

    # Changing a setting that affects the output re-encodes everything.
    cfg = tmp_path / "campaign.toml"
    cfg.write_text('[campaign]\nhashtag = "#NeverForget"\n')
    process_submissions(BatchParams(source=str(src), out=str(out), config=str(cfg)))
    changed = _clip_times(out)
    assert all(changed[k] != after[k] for k in after)


def test_clips_render_on_a_two_worker_dask_cluster(prefect_server: str, tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    src = _uploads(tmp_path / "uploads", 4)
    out = tmp_path / "out"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
        with Client(cluster) as client:
            pids = set(client.run(os.getpid).values())
        flow = with_task_runner(process_submissions, cluster.scheduler_address)
        entries = flow(
            BatchParams(source=str(src), out=str(out), dask_address=cluster.scheduler_address)
        )
    rendered = {int(e.rendered_by.rsplit(":", 1)[1]) for e in entries if e.rendered_by}
    assert len(pids) == 2 and rendered and rendered <= pids
    assert os.getpid() not in rendered
    assert all(e.status == "accepted" for e in entries)


def _ffmpeg_writing_to(out: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if proc.info["name"] == "ffmpeg" and str(out) in cmd:
            found.append(proc)
    return found


def test_served_deployments_schedules_forms_and_cancellation(
    prefect_server: str, tmp_path: Path
) -> None:
    """`reel serve` registers the deployments; cancelling a run leaves no ffmpeg behind."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.deployments import run_deployment
    from prefect.states import Cancelling

    reel = Path(sys.executable).with_name("reel")
    config = tmp_path / "campaign.toml"
    folders = {"source": str(tmp_path / "uploads"), "out": str(tmp_path / "renders")}
    config.write_text(
        "[schedules]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in folders.items())
    )
    server = subprocess.Popen(
        [str(reel), "serve", "--config", str(config)],
        env={**os.environ, "PREFECT_API_URL": prefect_server},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        deployments = []
        while time.monotonic() < deadline and len(deployments) < 4:
            time.sleep(1)
            with get_client(sync_client=True) as client:
                deployments = client.read_deployments(limit=50, sort=DeploymentSort.CREATED_DESC)
        names = {d.name: d for d in deployments}
        assert {"on-demand", "nightly", "march-29"} <= names.keys()
        nightly = names["nightly"].schedules[0].schedule
        assert nightly.cron == "0 2 * * *" and nightly.timezone == "Europe/Moscow"
        march = names["march-29"].schedules[0].schedule
        assert march.cron == "0 6 27 3 *"
        schema = json.dumps(names["on-demand"].parameter_openapi_schema)
        for field in ("source", "out", "config", "dask_address"):
            assert f'"{field}"' in schema
        assert schema.count('"description"') >= 4, "every form field is described"

        # A run started from the server completes, with its artifacts.
        src = _uploads(tmp_path / "small", 1)
        small_out = tmp_path / "small-out"
        run = run_deployment(
            "process-submissions/on-demand",
            parameters={"params": {"source": str(src), "out": str(small_out)}},
            timeout=300,
        )
        assert run.state and run.state.is_completed(), run.state
        assert {"submissions", "run-summary"} <= _artifacts(run.id).keys()

        # Cancelling a run in the middle of an encode kills its ffmpeg.
        long_src = tmp_path / "long"
        long_src.mkdir()
        mg.make_clip(long_src / "long.mp4", duration=40, size=(1920, 1080), preset="ultrafast")
        long_out = tmp_path / "long-out"
        run = run_deployment(
            "process-submissions/on-demand",
            parameters={"params": {"source": str(long_src), "out": str(long_out)}},
            timeout=0,
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not _ffmpeg_writing_to(long_out):
            time.sleep(0.5)
        assert _ffmpeg_writing_to(long_out), "the encode never started"
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(run.id, Cancelling())
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                time.sleep(1)
                state = client.read_flow_run(run.id).state
                if state and state.type == StateType.CANCELLED:
                    break
        assert state and state.type == StateType.CANCELLED, state
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _ffmpeg_writing_to(long_out):
            time.sleep(0.5)
        assert _ffmpeg_writing_to(long_out) == [], "ffmpeg outlived its cancelled flow run"
        assert not (long_out / "clips").exists() or not list((long_out / "clips").glob("*.mp4"))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def _named_in_publication(out: Path) -> str:
    """The compilation's credits, SRT, VTT, chapters and manifest, as published."""
    folder = out / "compilation"
    return "\n".join(
        p.read_text("utf-8")
        for p in sorted(folder.iterdir())
        if p.suffix in (".txt", ".srt", ".vtt", ".json")
    )


def test_withdrawn_consent_between_cached_runs_unnames_the_person(
    prefect_server: str, tmp_path: Path
) -> None:
    """The task cache must not return the entry made while the person still consented."""
    src = _uploads(tmp_path / "uploads", 2)
    out = tmp_path / "out"
    config = tmp_path / "small.toml"
    config.write_text('[output]\nwidth = 640\nheight = 360\nx264_preset = "superfast"\n')
    params = CampaignParams(source=str(src), out=str(out), config=str(config), approve_all=True)
    for _ in range(2):  # the second run is served from the task cache
        remembrance_campaign(params)
    assert "Supporter 1" in _named_in_publication(out)
    rendered = _clip_times(out)

    (src / "clip1.json").write_text(json.dumps({"name": "Supporter 1", "consent": False}))
    remembrance_campaign(params)
    published = _named_in_publication(out)
    assert "Supporter 1" not in published and "Supporter 0" in published
    entry = {e["source"]: e for e in json.loads((out / "report.json").read_text())["submissions"]}
    withdrawn = entry["clip1.mp4"]
    assert (withdrawn["status"], withdrawn["code"]) == ("excluded", "consent_withdrawn")
    # Her render is deleted; the other clip is reused, not re-encoded.
    assert _clip_times(out) == {k: v for k, v in rendered.items() if withdrawn["id"] not in k}

    (src / "clip1.json").write_text(json.dumps({"name": "Supporter 1", "consent": True}))
    remembrance_campaign(params)
    assert "Supporter 1" in _named_in_publication(out)
    assert len(_clip_times(out)) == 2
