"""ffmpeg dies with the worker that started it, and says so when it cannot."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from processing import children, runner
from processing.errors import Unsupervised

#: How long a killed worker's ffmpeg may take to die.
DEATH_WAIT = 5.0

#: A worker that starts a long ffmpeg through the runner and waits for it.
WORKER = """
from processing import runner
runner.run(["-v", "error", "-re", "-f", "lavfi", "-i", "anullsrc=d=60", "-f", "null", "-"],
           timeout=120)
"""


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after its ')'.
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def fresh_prctl() -> Iterator[None]:
    """Let a test change how prctl is found; the next test finds it afresh."""
    children._prctl.cache_clear()
    yield
    children._prctl.cache_clear()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
def test_a_killed_worker_takes_its_ffmpeg_with_it() -> None:
    worker = subprocess.Popen([sys.executable, "-c", WORKER])
    try:
        deadline = time.monotonic() + 30
        while not (spawned := _children_of(worker.pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert spawned, "the worker started no ffmpeg"
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        deadline = time.monotonic() + DEATH_WAIT
        while any(_alive(p) for p in spawned) and time.monotonic() < deadline:
            time.sleep(0.1)
        survivors = [p for p in spawned if _alive(p)]
        assert survivors == [], "ffmpeg outlived the worker that started it"
    finally:
        for pid in _children_of(worker.pid) + locals().get("spawned", []):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        if worker.poll() is None:
            worker.kill()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
def test_a_refused_death_signal_is_an_error_and_nothing_runs(
    monkeypatch: pytest.MonkeyPatch, fresh_prctl: None
) -> None:
    # The real prctl refuses a signal number that does not exist (EINVAL).
    monkeypatch.setattr(children, "DEATH_SIGNAL", 1000)
    with pytest.raises(Unsupervised) as raised:
        runner.run(["-v", "error", "-f", "lavfi", "-i", "anullsrc=d=0.1", "-f", "null", "-"])
    message = str(raised.value)
    assert "PR_SET_PDEATHSIG" in message and "not started" in message
    assert "\n" not in message
    assert isinstance(raised.value, OSError), "a machine problem stops the run, not one clip"
    assert children.kill_all() == 0


def test_no_prctl_at_all_is_a_logged_warning(
    monkeypatch: pytest.MonkeyPatch, fresh_prctl: None, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(children, "LIBC", "libno-such-library.so.9")
    with caplog.at_level(logging.WARNING, logger="processing.children"):
        out, _ = runner.run(["-version"], stdout_capture=True)
        runner.run(["-version"])
    assert out.startswith("ffmpeg version")
    warned = [r for r in caplog.records if "will not die with this worker" in r.getMessage()]
    assert len(warned) == 1, "one warning, not one per ffmpeg"
    assert warned[0].levelno == logging.WARNING
