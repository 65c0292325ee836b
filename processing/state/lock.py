"""One writer at a time per output folder: an ``fcntl`` lock on ``OUT/.work/lock``.

The lock file holds who has it (``host:pid``, the command, since when), so a
second run can say whom it waits for. The kernel drops the lock when its
holder dies, however it dies: a crash never leaves a folder locked.

The lock is re-entrant within a process (a flow that holds it may call a
library function that takes it again); threads of one process share it,
because the threads of one run are one writer.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from ..errors import ReelError

log = logging.getLogger(__name__)

#: Where the lock lives inside an output folder.
LOCK_FILE = ".work/lock"
#: How often a waiting run tries again.
POLL_SECONDS = 0.5


class StateLocked(ReelError):
    """Another run holds the output and did not let go in time."""


def holder_info(command: str) -> dict[str, str]:
    """What a lock or lease records about its holder."""
    return {
        "holder": f"{socket.gethostname()}:{os.getpid()}",
        "command": command,
        "since": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def describe(info: dict[str, Any] | None) -> str:
    """``host:pid (reel process, since …)`` for messages; ``another run`` when unknown."""
    if not info:
        return "another run"
    return f"{info.get('holder', '?')} ({info.get('command', '?')}, since {info.get('since', '?')})"


_held: dict[Path, tuple[TextIO, int]] = {}
_held_guard = threading.Lock()


@contextlib.contextmanager
def folder_lock(out: Path, command: str, wait_seconds: float) -> Iterator[None]:
    """Hold the output folder ``out`` for this process while the block runs.

    Args:
        out: The output folder (the staging folder of a bucket output).
        command: What this run is (``reel process``), shown to a run that waits.
        wait_seconds: How long to wait for another holder before refusing.

    Raises:
        StateLocked: Another process held the folder for all of ``wait_seconds``.
    """
    path = (Path(out) / LOCK_FILE).absolute()
    with _held_guard:
        if path in _held:
            fh, depth = _held[path]
            _held[path] = (fh, depth + 1)
            acquired = False
        else:
            acquired = True
    if acquired:
        fh = _acquire(path, command, wait_seconds)
        with _held_guard:
            _held[path] = (fh, 1)
    try:
        yield
    finally:
        with _held_guard:
            fh, depth = _held[path]
            if depth > 1:
                _held[path] = (fh, depth - 1)
            else:
                del _held[path]
                fh.close()  # closing the file releases the lock


def _acquire(path: Path, command: str, wait_seconds: float) -> TextIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = path.open("a+", encoding="utf-8")
    started = time.monotonic()
    deadline = started + max(wait_seconds, 0.0)
    told = False
    while True:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            info = _read_info(path)
            who = describe(info)
            if time.monotonic() >= deadline:
                fh.close()
                raise StateLocked(
                    f"{path.parent.parent} is in use by {who}; waited {wait_seconds:g} s "
                    "(orchestration.lock_wait_seconds): run again when it has finished"
                ) from None
            # A holder writes who it is just after it takes the lock: give it a moment.
            if not told and (info or time.monotonic() - started > 2 * POLL_SECONDS):
                log.warning(
                    "%s is in use by %s: waiting up to %g s for it",
                    path.parent.parent,
                    who,
                    wait_seconds,
                )
                told = True
            time.sleep(POLL_SECONDS)
    fh.seek(0)
    fh.truncate()
    fh.write(json.dumps(holder_info(command)) + "\n")
    fh.flush()
    return fh


def _read_info(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text("utf-8")[:4096])
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
