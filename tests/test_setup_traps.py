"""Set-up without traps: config checks that report everything, one-line errors, helpful help."""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import mediagen as mg
from flows.cli import build_parser
from processing.config import load_config
from processing.config_check import check_file
from processing.errors import ConfigError

BIN = Path(sys.executable).parent

#: A campaign file with one of each mistake; every one must be reported, not only the first.
BROKEN = """
[output]
widht = 1280
crf = "20"
x264_preset = "fastish"

[schedule]
nightly_cron = "0 2 * * *"

[schedules]
nightly_cron = "0 25 * * *"
compilation_cron = "0 6 27 3"
timezone = "Europe/Moskow"
source = "uploads"
out = "/srv/renders"

[links]
review_app_url = "file:///srv/review/index.html"
"""


def _reel(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "reel"), *args],
        capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_config_check_reports_every_problem_at_once_with_did_you_mean(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text(BROKEN)
    result = _reel("config", "--check", str(broken))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    expected = [
        "unknown key output.widht (did you mean 'width'?)",
        "output.crf must be a int",
        "output.x264_preset must be one of",
        "unknown section [schedule] (did you mean 'schedules'?)",
        "schedules.nightly_cron '0 25 * * *' is not a valid cron string",
        "schedules.compilation_cron '0 6 27 3' is not a valid cron string: it has 4 fields",
        "schedules.timezone 'Europe/Moskow' is not a time zone (did you mean 'Europe/Moscow'?)",
        "schedules.source 'uploads' is relative",
        "links.review_app_url 'file:///srv/review/index.html' must be an http",
    ]
    for text in expected:
        assert sum(text in line for line in lines) == 1, (text, lines)
    assert len(lines) == len(expected), lines
    assert all(line.startswith(f"reel: error: {broken}: ") for line in lines)


def test_crons_and_time_zones_the_prefect_scheduler_refuses_are_refused() -> None:
    """The checker agrees with the Prefect server's own schedule validation, and is
    stricter only where the schedule would never fire (February 31)."""
    from prefect.server.schemas.schedules import CronSchedule

    cases = [
        ("0 2 * * *", "Europe/Moscow"), ("*/15 6-22 * * 1-5", "UTC"),
        ("0 6 27 3 *", "Asia/Tbilisi"),
        ("0 24 * * *", "UTC"), ("0 6 31 2 *", "UTC"), ("H 2 * * *", "UTC"), ("0 2 * *", "UTC"),
        ("0 2 * * *", "Moscow"), ("0 2 * * *", "Europe/Moskva"),
    ]  # fmt: skip
    for cron, tz in cases:
        try:
            CronSchedule(cron=cron, timezone=tz)
            prefect_ok = True
        except ValueError:
            prefect_ok = False
        overrides = {"schedules": {"nightly_cron": cron, "timezone": tz}}
        try:
            load_config(overrides=overrides)
            ours = True
        except ConfigError:
            ours = False
        never = (cron, tz) == ("0 6 31 2 *", "UTC")
        assert ours == (prefect_ok and not never), (cron, tz, prefect_ok)


def test_the_trial_encode_runs_the_encoder_settings(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[output]\nwidth = 640\nheight = 360\nx264_preset = "veryfast"\ncrf = 23\n')
    assert check_file(good) == []
    without = _reel("config", "--check", str(good), env={"REEL_FFMPEG": "/nonexistent/ffmpeg"})
    assert without.returncode == 2
    assert "ffmpeg is not installed, so the encoder settings were not tried" in without.stderr
    skipped = _reel(
        "config", "--check", str(good), "--no-trial", env={"REEL_FFMPEG": "/nonexistent/ffmpeg"}
    )
    assert skipped.returncode == 0 and f"{good}: valid" in skipped.stdout


def test_serve_refuses_a_broken_schedule_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "campaign.toml"
    config.write_text('[schedules]\nnightly_cron = "every night"\ntimezone = "Mars/Olympus"\n')
    result = _reel("serve", "--config", str(config), "--wait", "0")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "schedules.nightly_cron 'every night'" in line and "'Mars/Olympus'" in line


def test_scheduled_folders_must_be_absolute_and_default_to_off() -> None:
    from flows.serve import deployments, schedule_lines

    cfg = load_config()
    assert (cfg.schedules.source, cfg.schedules.out) == ("", "")
    assert [d.name for d in deployments(cfg, None)] == ["on-demand", "on-demand"]
    assert schedule_lines(cfg)[0].startswith("schedules off: set [schedules] source and out")
    with pytest.raises(ConfigError, match=r"schedules\.out 'renders' is relative"):
        load_config(overrides={"schedules": {"source": "/srv/uploads", "out": "renders"}})
    on = load_config(overrides={"schedules": {"source": "s3://b/up", "out": "/srv/renders"}})
    assert [d.name for d in deployments(on, None)][2:] == ["nightly", "march-29"]


def test_missing_source_and_out_a_file_are_one_line_and_leave_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    for command, extra in (("process", "-q"), ("run", "--approve-all")):
        result = _reel(command, str(tmp_path / "nope"), "--out", str(out), extra)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        [line] = result.stderr.strip().splitlines()
        assert f"source folder {tmp_path / 'nope'} does not exist" in line
        assert not out.exists(), "a missing source left an output folder behind"
    src = tmp_path / "uploads"
    mg.make_clip(src / "a.mp4", duration=1, size=(160, 90))
    a_file = tmp_path / "report.txt"
    a_file.write_text("not a folder")
    for command in ("process", "compile"):
        args = [str(src)] if command == "process" else []
        result = _reel(command, *args, "--out", str(a_file))
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        [line] = result.stderr.strip().splitlines()
        assert f"output {a_file} is a file, not a folder" in line
    assert a_file.read_text() == "not a folder"


def test_a_missing_source_fails_the_flow_at_once_without_retries(
    prefect_server: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterFlowRunId

    from flows.campaign import process_submissions
    from flows.params import BatchParams

    out = tmp_path / "out"
    state = process_submissions(
        BatchParams(source=str(tmp_path / "nope"), out=str(out)), return_state=True
    )
    assert state.is_failed()
    assert "does not exist" in str(state.message) and not out.exists()
    errors = [r.getMessage() for r in caplog.get_records("call") if r.levelno >= logging.ERROR]
    assert errors and all("does not exist: give the folder of uploads" in e for e in errors)
    caplog.clear()  # Prefect's own record of the failed run is expected
    with get_client(sync_client=True) as client:
        tasks = client.read_task_runs(
            task_run_filter=TaskRunFilter(
                flow_run_id=TaskRunFilterFlowRunId(any_=[state.state_details.flow_run_id])
            )
        )
    assert tasks == [], "a missing folder is refused before any task (and retry) runs"


def _subcommands(
    parser: argparse.ArgumentParser, prefix: str = ""
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prefix}{name}", sub
                yield from _subcommands(sub, f"{prefix}{name} ")


def test_every_subcommand_help_has_a_description_and_an_example() -> None:
    seen = []
    for name, sub in _subcommands(build_parser()):
        seen.append(name)
        assert sub.description and len(sub.description) > 40, name
        example = sub.format_help().split("example:\n", 1)[1]
        assert example.strip().startswith(("reel ", "PREFECT_API_URL=")), name
        assert f"reel {name}" in example, name
    assert {"process", "compile", "run", "serve", "config", "review build", "review apply"} <= set(
        seen
    )


def test_make_ui_points_the_ui_at_its_own_port() -> None:
    """The UI asks PREFECT_UI_API_URL where its API is; `make ui` derives it from the port."""
    root = Path(__file__).resolve().parent.parent
    shown = subprocess.run(
        ["make", "-n", "-C", str(root), "ui", "PREFECT_PORT=4321"],
        capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    command = shown.replace("\\\n", " ")
    start = next(line for line in command.splitlines() if "prefect server start" in line)
    assert "PREFECT_UI_API_URL=http://127.0.0.1:4321/api" in start
    assert "--port 4321" in start
