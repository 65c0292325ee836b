"""The paused campaign run against a real Prefect server: answers, re-pauses, the parent run."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.flow_runs import resume_flow_run

import mediagen as mg
from flows.campaign import remembrance_campaign
from flows.params import CampaignParams
from processing.decisions import VERSION, apply_decisions

from .test_flows import _artifacts

pytestmark = pytest.mark.slow

#: The contributor who asked to stay anonymous: this must never reach the Prefect UI.
SECRET = "Zarema Secretname"
REVIEW_APP = "http://127.0.0.1:8765/"
FILES = "http://127.0.0.1:8765/files/"


def _setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    src = tmp_path / "uploads"
    src.mkdir()
    sidecars = [
        {"name": "Supporter 0", "consent": True},
        {"name": SECRET, "consent": True, "anonymize": True},
        {"name": "Supporter 2", "consent": True},
    ]
    for i, sidecar in enumerate(sidecars):
        mg.make_clip(src / f"clip{i}.mp4", duration=2, size=(640, 360), lufs=-20 - i)
        (src / f"clip{i}.json").write_text(json.dumps(sidecar))
    config = tmp_path / "campaign.toml"
    config.write_text(
        '[output]\nwidth = 640\nheight = 360\nx264_preset = "superfast"\n'
        f'[links]\nreview_app_url = "{REVIEW_APP}"\nfiles_url = "{FILES}"\n'
    )
    return src, tmp_path / "out", config


def _start(src: Path, out: Path, config: Path) -> tuple[threading.Thread, dict[str, Any]]:
    result: dict[str, Any] = {}
    params = CampaignParams(source=str(src), out=str(out), config=str(config))
    runner = threading.Thread(
        target=lambda: result.update(state=remembrance_campaign(params, return_state=True))
    )
    runner.start()
    return runner, result


def _paused(
    out: Path,
    other_than: str | None = None,
    wait: float = 300,
    runner: threading.Thread | None = None,
) -> FlowRun:
    """The campaign run for ``out`` once it is paused under a key other than ``other_than``."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if runner is not None and not runner.is_alive():
            raise AssertionError("the campaign run ended instead of waiting again")
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(limit=200)
        for run in runs:
            state = run.state
            if (
                run.parameters.get("params", {}).get("out") == str(out)
                and state is not None
                and state.is_paused()
                and state.state_details.pause_key != other_than
            ):
                return run
        time.sleep(1)
    raise AssertionError(f"the campaign for {out} did not pause (again)")


def _form(run: FlowRun, part: str) -> str:
    key = f"paused-{run.state.state_details.pause_key}-{part}"  # type: ignore[union-attr]
    with get_client(sync_client=True) as client:
        return client.read_flow_run_input(run.id, key)


def _accepted_ids(out: Path) -> list[str]:
    report = json.loads((out / "report.json").read_text())
    subs = sorted(report["submissions"], key=lambda s: s["source"])
    return [s["id"] for s in subs if s["status"] == "accepted"]


def _logs(run_id: UUID, until: str, wait: float = 30) -> str:
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    deadline = time.monotonic() + wait
    text = ""
    while time.monotonic() < deadline and until not in text:
        with get_client(sync_client=True) as client:
            logs = client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])), limit=200
            )
        text = "\n".join(log.message for log in logs)
        time.sleep(1)
    return text


def _finish(runner: threading.Thread, result: dict[str, Any]) -> None:
    runner.join(timeout=300)
    assert not runner.is_alive(), "the campaign did not finish after its last resume"
    assert result["state"].is_completed(), result["state"]


def test_wrong_answers_pause_again_and_saved_decisions_complete_the_run(
    prefect_server: str, tmp_path: Path
) -> None:
    src, out, config = _setup(tmp_path)
    runner, result = _start(src, out, config)
    run = _paused(out)
    first_key = run.state.state_details.pause_key  # type: ignore[union-attr]
    labels = json.loads(_form(run, "schema"))["properties"]["clips"]["items"]["enum"]
    assert labels == ["1. Supporter 0", "2. Anonymous supporter", "3. Supporter 2"]
    description = _form(run, "description")
    assert REVIEW_APP in description and SECRET not in description

    # A mistyped name: the server checks it against the form's choices and the run stays paused.
    with pytest.raises(RuntimeError, match="Suporter 0"):
        resume_flow_run(run.id, run_input={"use_saved": False, "clips": ["1. Suporter 0"]})
    assert _paused(out, wait=5).state.state_details.pause_key == first_key  # type: ignore[union-attr]

    # A name listed twice passes the form but not the run: it waits again and says why.
    resume_flow_run(run.id, run_input={"use_saved": False, "clips": [labels[0], labels[0]]})
    run = _paused(out, other_than=first_key, runner=runner)
    assert "listed more than once" in _form(run, "description")

    # The default (what the review app sends) with nothing saved yet: waits again, saying so.
    second_key = run.state.state_details.pause_key  # type: ignore[union-attr]
    resume_flow_run(run.id, run_input={})
    run = _paused(out, other_than=second_key, runner=runner)
    assert "no decisions are saved in the review app" in _form(run, "description")

    # Decisions saved as the review app saves them; the default then compiles them.
    ids = _accepted_ids(out)
    order = [ids[2], ids[0]]
    apply_decisions(
        {
            "version": VERSION,
            "editor": "Lena",
            "decided_at": "2027-03-20T18:04:00+00:00",
            "order": order,
            "decisions": {ids[2]: "approved", ids[0]: "approved", ids[1]: "rejected"},
        },
        out,
    )
    resume_flow_run(run.id, run_input={})
    _finish(runner, result)
    manifest = json.loads((out / "compilation" / "manifest.json").read_text())
    assert [s["id"] for s in manifest["segments"] if s["kind"] == "clip"] == order

    # The run staff launched carries the artifacts, with http links only.
    found = _artifacts(run.id)
    expected = {"processing-progress", "submissions", "run-summary", "review-app"}
    assert expected | {"compilation", "compilation-summary"} <= found.keys()
    assert float(found["processing-progress"]["data"]) == 100.0
    table = json.loads(found["submissions"]["data"])
    assert len(table) == 3 and all("flags" in row for row in table)
    everything = json.dumps(found)
    assert "file://" not in everything and SECRET not in everything
    assert "clip1.mp4" not in everything and "clip1.mp4" not in description
    assert f"]({REVIEW_APP})" in found["review-app"]["data"]
    published = manifest["output"]
    assert f"]({FILES}{published})" in found["compilation"]["data"]

    # Its log names every clip's result and where the compilation is.
    logs = _logs(run.id, until="compilation:")
    for sid in ids:
        assert re.search(rf"accepted \S+ \({sid}\)|\(anonymous upload\) {sid}", logs), sid
    assert f"compilation: {out / published} ({FILES}{published})" in logs
    assert SECRET not in logs and "clip1.mp4" not in logs


def test_editors_choose_clips_by_name_and_a_second_run_logs_them_as_reused(
    prefect_server: str, tmp_path: Path
) -> None:
    src, out, config = _setup(tmp_path)
    (tmp_path / "campaign.toml").write_text(
        '[output]\nwidth = 640\nheight = 360\nx264_preset = "superfast"\n'
    )
    for attempt in range(2):
        runner, result = _start(src, out, config)
        run = _paused(out)
        if attempt == 0:
            labels = json.loads(_form(run, "schema"))["properties"]["clips"]["items"]["enum"]
            assert not any(re.search(r"[0-9a-f]{16}", label) for label in labels)
        assert "No review app address is configured" in _form(run, "description")
        chosen = {"use_saved": False, "clips": [labels[2], labels[0]], "editor": "Lena"}
        resume_flow_run(run.id, run_input=chosen)
        _finish(runner, result)
    ids = _accepted_ids(out)
    manifest = json.loads((out / "compilation" / "manifest.json").read_text())
    assert [s["id"] for s in manifest["segments"] if s["kind"] == "clip"] == [ids[2], ids[0]]
    decisions = json.loads((out / "decisions.json").read_text())["current"]
    assert decisions["applied_by"] == "Lena" and decisions["decisions"][ids[1]] == "rejected"

    # The second run rendered nothing: its log says so rather than "rendered in N s".
    logs = _logs(run.id, until="compilation:")
    assert logs.count("reused from an earlier run") == 3 and "rendered in" not in logs
    found = _artifacts(run.id)
    assert "set `[links] files_url`" in found["compilation"]["data"]
    assert "file://" not in json.dumps(found)
