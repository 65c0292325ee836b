"""The ffmpeg and ffprobe processes this worker started: none outlives it.

Each child is started with ``PR_SET_PDEATHSIG`` (prctl(2)): when the worker
that started it dies (a cancelled Prefect flow run, a killed CLI), the kernel
sends it ``SIGKILL`` instead of leaving it to encode on as an orphan. It also
gets its own process group, so a terminal's Ctrl-C reaches the worker, which
stops its children itself (:func:`kill_all`).

If the kernel refuses the request, the child is not started
(:class:`~processing.errors.Unsupervised`): an ffmpeg that could outlive its
worker is what the README promises never happens. Where there is no
``prctl`` at all (not Linux), every child is started without it and a warning
says so once.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from typing import IO, Any

from .errors import Unsupervised

log = logging.getLogger(__name__)

#: prctl(2)'s option number for the parent-death signal (linux/prctl.h).
PR_SET_PDEATHSIG = 1
#: What the kernel sends a child when its worker dies.
DEATH_SIGNAL: int = signal.SIGKILL
#: The library whose ``prctl`` is called; ``None`` is the running program (libc, glibc or musl).
LIBC: str | None = None

_live: set[subprocess.Popen[bytes]] = set()
_live_lock = threading.Lock()


@functools.cache
def _prctl() -> Callable[..., int] | None:
    """libc's ``prctl``, or ``None`` (after one warning) where there is none."""
    try:
        prctl: Callable[..., int] = ctypes.CDLL(LIBC, use_errno=True).prctl
    except (OSError, AttributeError) as exc:
        log.warning(
            "ffmpeg will not die with this worker if the worker is killed: prctl is "
            "not available here (%s); a cancelled run can leave an ffmpeg running",
            exc,
        )
        return None
    return prctl


def _in_child(prctl: Callable[..., int] | None, sig: int) -> None:  # pragma: no cover - child
    """Runs in the child between fork and exec: the death signal, then a process group."""
    if prctl is not None and prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"prctl(PR_SET_PDEATHSIG, {sig}): {os.strerror(code)}")
    # ffmpeg must not receive the terminal's Ctrl-C twice; we stop it ourselves.
    os.setpgrp()


def start(cmd: list[str], *, stdin: int, stdout: int, stderr: IO[Any]) -> subprocess.Popen[bytes]:
    """Start ``cmd`` tied to this worker and registered for :func:`kill_all`.

    Raises:
        Unsupervised: The kernel refused ``PR_SET_PDEATHSIG``; nothing was started.
    """
    setup = functools.partial(_in_child, _prctl(), DEATH_SIGNAL)
    try:
        proc = subprocess.Popen(cmd, stdin=stdin, stdout=stdout, stderr=stderr, preexec_fn=setup)
    except subprocess.SubprocessError as exc:  # what Popen raises when preexec_fn failed
        raise Unsupervised(
            f"{os.path.basename(cmd[0])} was not started: the kernel refused to tie it "
            f"to this worker (prctl PR_SET_PDEATHSIG, signal {DEATH_SIGNAL}), so it could "
            "outlive a cancelled run"
        ) from exc
    with _live_lock:
        _live.add(proc)
    return proc


def forget(proc: subprocess.Popen[bytes]) -> None:
    """``proc`` has ended or been killed: :func:`kill_all` no longer needs it."""
    with _live_lock:
        _live.discard(proc)


def kill(proc: subprocess.Popen[bytes]) -> None:
    """Kill ``proc`` and reap it."""
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    proc.wait()


def kill_all() -> int:
    """Kill every ffmpeg process this Python process started. Returns how many."""
    with _live_lock:
        procs = list(_live)
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    return len(procs)
