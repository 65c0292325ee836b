"""The Prefect-native scale-out: several ``prefect worker`` processes on one process work pool.

Each worker would run on its own machine; here two worker processes (each
taking one flow run at a time) pull runs of the same ``process-submissions``
deployment from a real Prefect server, and both runs must finish, each on its
own worker, with every clip rendered.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import mediagen as mg

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

PREFECT = str(Path(sys.executable).with_name("prefect"))
CONFIG = '[output]\nwidth = 320\nheight = 180\nx264_preset = "superfast"\n'


def _uploads(folder: Path, first: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(first, first + 2):
        mg.make_clip(folder / f"clip{i}.mp4", duration=1.2, size=(320, 180), lufs=-20 - i)
        (folder / f"clip{i}.json").write_text(json.dumps({"name": f"S {i}", "consent": True}))
    return folder


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[dict[str, str]]:
    """``prefect server start`` on a free port, as an operator runs it; yields the env to use."""
    home = tmp_path / "prefect-server"
    home.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")},
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home}/prefect.db",
        "PREFECT_UI_ENABLED": "false",
    }
    with (home / "server.log").open("wb") as fh:
        proc = subprocess.Popen(
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 300  # a loaded 2-core machine takes minutes
        while True:
            assert proc.poll() is None, (home / "server.log").read_text()[-2000:]
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the Prefect server never answered"
            time.sleep(1)
        yield {**env, "PREFECT_API_URL": api, "PREFECT_WORKER_QUERY_SECONDS": "1"}
    finally:
        _stop(proc)


def test_two_process_workers_share_the_runs_of_one_deployment(
    server: dict[str, str], tmp_path: Path
) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: server["PREFECT_API_URL"]}):
        _two_workers(server, tmp_path)


def _two_workers(env: dict[str, str], tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    from flows.campaign import process_submissions

    pool = "reel-pool"
    prefect = PREFECT
    subprocess.run(
        [prefect, "work-pool", "create", pool, "--type", "process"],
        env=env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    deployment = process_submissions.from_source(  # type: ignore[attr-defined]
        source=str(ROOT), entrypoint="flows/campaign.py:process_submissions"
    ).deploy(name="pool-test", work_pool_name=pool, print_next_steps=False)
    config = tmp_path / "small.toml"
    config.write_text(CONFIG, "utf-8")

    workers, logs = [], []
    try:
        for i in range(2):
            log = tmp_path / f"worker{i}.log"
            logs.append(log)
            with log.open("wb") as fh:
                workers.append(subprocess.Popen(
                    [prefect, "worker", "start", "--pool", pool, "--limit", "1",
                     "--name", f"worker-{i}"],
                    env=env, cwd=tmp_path, stdout=fh, stderr=subprocess.STDOUT,
                    start_new_session=True,
                ))  # fmt: skip
        # Both workers online first, so that neither takes both runs for want of the other.
        with get_client(sync_client=True) as client:
            deadline = time.monotonic() + 180
            while len(client.read_workers_for_work_pool(pool)) < 2:
                assert time.monotonic() < deadline, "the workers never came online"
                time.sleep(1)
        runs = []
        for i in range(2):
            params = {
                "source": str(_uploads(tmp_path / f"up{i}", 2 * i)),
                "out": str(tmp_path / f"out{i}"),
                "config": str(config),
            }
            runs.append(run_deployment(deployment, parameters={"params": params}, timeout=0))
        deadline = time.monotonic() + 600
        with get_client(sync_client=True) as client:
            while time.monotonic() < deadline:
                states = [client.read_flow_run(r.id).state for r in runs]
                if all(s is not None and s.is_final() for s in states):
                    break
                time.sleep(2)
    finally:
        for w in workers:
            _stop(w)
    assert all(s is not None and s.is_completed() for s in states), states
    for i in range(2):
        report = json.loads((tmp_path / f"out{i}" / "report.json").read_text())
        assert sum(e["status"] == "accepted" for e in report["submissions"]) == 2, report
    # Each worker took one run: it submitted it, and did not abort the submission (two
    # workers polling at once both try a run; the one that marks it Pending first has it).
    taken = []
    for path in logs:
        text = path.read_text("utf-8", "replace")
        submitted = set(re.findall(r"submitting flow run '([0-9a-f-]{36})'", text))
        aborted = set(re.findall(r"Aborted submission of flow run '([0-9a-f-]{36})'", text))
        taken.append(sorted(submitted - aborted))
    ids = [str(r.id) for r in runs]
    assert taken in ([[ids[0]], [ids[1]]], [[ids[1]], [ids[0]]]), taken
