"""Schedules fire on a real Prefect server, and the Prefect CLI staff type works.

The test harness's server runs no scheduler service, so this module starts
``prefect server start`` itself, as an operator would, with its own database
and its log captured: a traceback anywhere in that log fails the test that
caused it. ``reel serve`` runs against it with an every-minute nightly cron.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

import mediagen as mg
from flows.serve import next_run

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
TZ = "Europe/Moscow"
MARCH_CRON = "0 6 27 3 *"


@dataclass(frozen=True)
class Server:
    api: str
    log: Path
    env: dict[str, str]

    def tracebacks(self) -> list[str]:
        text = self.log.read_text("utf-8", "replace")
        return [part[:400] for part in text.split("Traceback (most recent call last)")[1:]]

    def get(self, path: str, body: dict | None = None) -> list[dict]:
        response = httpx.post(f"{self.api}{path}", json=body or {}, timeout=30)
        response.raise_for_status()
        return response.json()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(what: str, check: Callable[[], object], timeout: float, every: float = 1) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``prefect server start`` with its scheduler, on a free port, log to a file."""
    home = tmp_path_factory.mktemp("prefect-server")
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")},
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home}/prefect.db",
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5",
        # Far enough ahead that the March 29 run exists as a scheduled run today.
        "PREFECT_SERVER_SERVICES_SCHEDULER_MAX_SCHEDULED_TIME": "P400D",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
    }
    log = home / "server.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:

        def healthy() -> bool:
            if proc.poll() is not None:
                pytest.fail("the Prefect server stopped:\n" + log.read_text()[-3000:])
            try:
                return httpx.get(f"{api}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        _wait_for("the Prefect server to answer", healthy, 120)
        yield Server(api, log, {**env, "PREFECT_API_URL": api})
    finally:
        _stop(proc)


@dataclass(frozen=True)
class Served:
    out: Path
    stdout: Path
    started: datetime


@pytest.fixture(scope="module")
def served(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``reel serve`` with the nightly batch every minute over one tiny upload."""
    root = tmp_path_factory.mktemp("scheduled")
    uploads = root / "uploads"
    uploads.mkdir()
    mg.make_clip(uploads / "nightly.mp4", duration=2, size=(320, 180), lufs=-20)
    (uploads / "nightly.json").write_text(json.dumps({"name": "Nightly", "consent": True}))
    out = root / "out"
    cfg = root / "campaign.toml"
    cfg.write_text(
        "[schedules]\n"
        f"source = {json.dumps(str(uploads))}\nout = {json.dumps(str(out))}\n"
        f'nightly_cron = "* * * * *"\ncompilation_cron = "{MARCH_CRON}"\ntimezone = "{TZ}"\n'
    )
    stdout = root / "serve.log"
    started = datetime.now(UTC)
    with stdout.open("wb") as fh:
        proc = subprocess.Popen(
            [str(BIN / "reel"), "serve", "--config", str(cfg)],
            env=server.env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        yield Served(out, stdout, started)
    finally:
        _stop(proc)


def _deployment_runs(server: Server, name: str, **state: object) -> list[dict]:
    deployments = server.get("/deployments/filter", {"deployments": {"name": {"any_": [name]}}})
    if not deployments:  # `reel serve` has not registered it yet
        return []
    body: dict = {
        "flow_runs": {"deployment_id": {"any_": [d["id"] for d in deployments]}, **state},
        "sort": "EXPECTED_START_TIME_ASC",
    }
    return server.get("/flow_runs/filter", body)


def test_serve_without_a_server_says_what_to_do_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {
        "PREFECT_HOME": str(tmp_path),
        "PREFECT_API_URL": f"http://127.0.0.1:{_free_port()}/api",
    }
    done = subprocess.run(
        [str(BIN / "reel"), "serve", "--wait", "2"], env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "does not answer" in line and "make ui" in line, line


def test_march_29_next_run_is_in_the_campaign_timezone() -> None:
    after = datetime(2027, 3, 1, tzinfo=ZoneInfo(TZ))
    when = next_run(MARCH_CRON, TZ, after)
    assert when == datetime(2027, 3, 27, 6, 0, tzinfo=ZoneInfo(TZ))
    assert when.astimezone(UTC) == datetime(2027, 3, 27, 3, 0, tzinfo=UTC)


def test_nightly_schedule_fires_and_writes_its_report(server: Server, served: Served) -> None:
    def completed() -> list[dict]:
        runs = _deployment_runs(server, "nightly", state={"type": {"any_": ["COMPLETED"]}})
        return [r for r in runs if r["auto_scheduled"]]

    runs = _wait_for("a scheduled nightly run to complete", completed, 240, every=2)
    assert isinstance(runs, list)
    report = json.loads((served.out / "report.json").read_text())
    [entry] = report["submissions"]
    assert entry["status"] == "accepted" and entry["name"] == "Nightly"
    assert (served.out / entry["output"]).stat().st_size > 1000
    assert server.tracebacks() == []


def test_march_29_run_is_scheduled_by_the_server_in_its_timezone(
    server: Server, served: Served
) -> None:
    def scheduled() -> list[dict]:
        return _deployment_runs(server, "march-29", state={"type": {"any_": ["SCHEDULED"]}})

    runs = _wait_for("the server to schedule the March 29 run", scheduled, 120)
    assert isinstance(runs, list)
    first = datetime.fromisoformat(runs[0]["expected_start_time"])
    assert first == next_run(MARCH_CRON, TZ, served.started)
    assert first.astimezone(ZoneInfo(TZ)).strftime("%m-%d %H:%M") == "03-27 06:00"
    # `reel serve` said the same when it started.
    printed = served.stdout.read_text("utf-8", "replace")
    local = first.astimezone(ZoneInfo(TZ))
    assert f"remembrance-campaign/march-29: next run {local:%Y-%m-%d %H:%M} MSK" in printed
    assert "process-submissions/nightly: next run" in printed
    assert server.tracebacks() == []


def _prefect(server: Server, *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "prefect"), *args], env={**server.env, "COLUMNS": "200"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, f"prefect {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_prefect_cli_staff_type(server: Server, served: Served, tmp_path: Path) -> None:
    _wait_for(
        "reel serve to register its deployments",
        lambda: len(server.get("/deployments/filter", {"limit": 50})) >= 4,
        120,
    )
    listed = _prefect(server, "deployment", "ls")
    for name in ("process-submissions/nightly", "remembrance-campaign/march-29"):
        assert name in listed
    assert "process-submissions" in _prefect(server, "flow-run", "ls")
    assert "0 6 27 3 *" in _prefect(
        server, "deployment", "inspect", "remembrance-campaign/march-29"
    )
    upcoming = _prefect(server, "flow-run", "ls", "--state-type", "SCHEDULED", "--limit", "5")
    assert "SCHEDULED" in upcoming.upper()

    uploads = tmp_path / "uploads"
    uploads.mkdir()
    mg.make_clip(uploads / "cli.mp4", duration=2, size=(320, 180), lufs=-20)
    (uploads / "cli.json").write_text(json.dumps({"name": "From the CLI", "consent": True}))
    out = tmp_path / "out"
    params = {"source": str(uploads), "out": str(out), "approve_all": True}
    said = _prefect(
        server, "deployment", "run", "remembrance-campaign/on-demand",
        "--param", f"params={json.dumps(params)}",
    )  # fmt: skip
    assert "Created flow run" in said

    def finished() -> list[dict]:
        runs = _deployment_runs(server, "on-demand")
        campaign = [r for r in runs if r["parameters"].get("params", {}).get("out") == str(out)]
        return [r for r in campaign if r["state_type"] in ("COMPLETED", "FAILED", "CRASHED")]

    [run] = _wait_for("the CLI-started campaign run to finish", finished, 300, every=2)
    assert run["state_type"] == "COMPLETED", run["state"]
    manifest = json.loads((out / "compilation" / "manifest.json").read_text())
    assert "From the CLI" in json.dumps(manifest, ensure_ascii=False)
    assert server.tracebacks() == []
