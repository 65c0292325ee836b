"""The one way this project runs ffmpeg and ffprobe.

Every call builds an argument list (never a shell string), adds ``-hide_banner
-nostdin``, logs the command with :func:`shlex.join`, keeps stderr, enforces a
timeout on the process itself and raises :class:`~processing.errors.FFmpegError`
with the command, exit status and the end of stderr when it fails.

Nothing this module writes or raises carries an input's tags: ffmpeg prints
every container, stream and chapter tag of every input (GPS location, device,
owner, dates) in its ``Metadata:`` blocks, so :func:`redact_tags` removes them
from the log file and from the stderr kept in errors, and ``-metadata`` values
are left out of the logged command (:func:`shown_command`). Callers that parse
stderr (loudness, decode errors) still get it whole, in memory only.

The child dies with the worker that started it (a cancelled Prefect flow
run, a killed CLI) instead of encoding on as an orphan: see
:mod:`processing.children`.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO

from . import children
from .errors import FFmpegError, FFmpegInterrupted, FFmpegTimeout, ReelError
from .redact import NOT_LOGGED as NOT_LOGGED
from .redact import redact_tags as redact_tags
from .redact import shown_command as shown_command

log = logging.getLogger(__name__)

FFMPEG = os.environ.get("REEL_FFMPEG", "ffmpeg")
FFPROBE = os.environ.get("REEL_FFPROBE", "ffprobe")

#: How much of stderr an error keeps.
STDERR_TAIL_LINES = 25

ProgressCallback = Callable[[float], None]
"""Called with the seconds of output written so far."""


def input_path(path: str | os.PathLike[str]) -> str:
    """Return ``path`` in a form ffmpeg never reads as an option or a protocol.

    A user's file called ``-y.mp4`` or ``http:foo.mp4`` is still just a file.
    """
    return "file:" + os.fspath(Path(path).absolute())


def require_tools() -> None:
    """Raise a :class:`ReelError` that says how to install ffmpeg if it is missing."""
    for tool in (FFMPEG, FFPROBE):
        if shutil.which(tool) is None:
            raise ReelError(
                f"'{tool}' was not found on PATH. Install Debian's ffmpeg "
                "(`sudo apt-get install ffmpeg`, or just run `make setup`)."
            )


def kill_all_children() -> int:
    """Kill every ffmpeg process this Python process started. Returns how many."""
    return children.kill_all()


class _Child:
    """A started ffmpeg/ffprobe process; ``stderr`` is filled in when it has ended."""

    def __init__(self, proc: subprocess.Popen[bytes]):
        self.proc = proc
        self.stderr = ""


@contextlib.contextmanager
def _spawned(
    cmd: list[str],
    *,
    stdin: int,
    stdout: int,
    timeout: float | None,
    log_file: Path | None,
) -> Iterator[_Child]:
    """Start ``cmd`` and hand it to the block; then wait, log, and raise on failure.

    The process dies with this worker and is registered for
    :func:`kill_all_children` (:mod:`processing.children`); it is killed when
    ``timeout`` passes or when the block raises (a consumer that stops early
    included), and its stderr goes to a temporary file so a chatty ffmpeg
    never blocks on a full pipe.

    Raises:
        Unsupervised: The process could not be tied to this worker; not started.
        FFmpegTimeout: The process ran longer than ``timeout``.
        FFmpegInterrupted: A signal from outside ended the process.
        OSError: The disk, a quota or a file-size limit was full (``ENOSPC``,
            ``EDQUOT``, ``EFBIG``).
        FFmpegError: The process exited with a non-zero status.
    """
    line = shown_command(cmd)
    log.debug("running %s", line)
    with tempfile.TemporaryFile() as err_file:
        proc = children.start(cmd, stdin=stdin, stdout=stdout, stderr=err_file)
        child = _Child(proc)
        with _deadline(proc, timeout) as expired:
            try:
                yield child
                if proc.stdin is not None:
                    # A dead ffmpeg closes the pipe; its exit status says why.
                    with contextlib.suppress(BrokenPipeError):
                        proc.stdin.close()
                proc.wait()
            except BaseException:
                children.kill(proc)
                # A reader that stopped early (a face scan has its frames) still logs the command.
                _log(log_file, line, _read_all(err_file), "stopped by the caller")
                raise
            finally:
                children.forget(proc)
        child.stderr = _read_all(err_file)

    logged = _log(log_file, line, child.stderr, f"exit {proc.returncode}")
    _raise_for_exit(cmd, line, proc.returncode, child.stderr, logged, expired.is_set(), timeout)


def _read_all(err_file: IO[bytes]) -> str:
    """Everything the process wrote to its stderr file so far, as text."""
    err_file.seek(0)
    return err_file.read().decode("utf-8", "replace")


@contextlib.contextmanager
def _deadline(proc: subprocess.Popen[bytes], timeout: float | None) -> Iterator[threading.Event]:
    """Kill ``proc`` once ``timeout`` seconds pass inside the block; the event says it did."""
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        with contextlib.suppress(ProcessLookupError):
            proc.kill()

    timer = threading.Timer(timeout, expire) if timeout is not None else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        yield expired
    finally:
        if timer is not None:
            timer.cancel()


def _raise_for_exit(
    cmd: list[str],
    line: str,
    returncode: int,
    stderr: str,
    logged: str,
    expired: bool,
    timeout: float | None,
) -> None:
    """Raise what a finished process's exit means (see :func:`_spawned`); nothing on success."""
    name = Path(cmd[0]).name
    tail = "\n".join(deque(logged.splitlines(), maxlen=STDERR_TAIL_LINES))
    if expired:
        raise FFmpegTimeout(
            f"{name} ran longer than its {timeout:.0f} s limit and was stopped",
            cmd,
            returncode,
            tail,
        )
    if (full := _out_of_space(returncode, stderr, cmd)) is not None:
        raise OSError(full, f"{os.strerror(full)}, said {name}")
    if returncode < 0:
        # Killed from outside (a timeout kill is ours and was raised above).
        sig = _signal_name(returncode)
        raise FFmpegInterrupted(
            f"{name} was stopped from outside ({sig}) before it finished: the run was "
            "interrupted, the upload is not at fault; run again to continue",
            cmd,
            sig,
        )
    if returncode != 0:
        raise FFmpegError(
            f"{name} failed with exit status {returncode}: {line}", cmd, returncode, tail
        )


def _log(log_file: Path | None, line: str, stderr: str, status: str) -> str:
    """Append the command and its stderr, tags removed, to ``log_file``; return that stderr."""
    logged = redact_tags(stderr)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        # A file name with undecodable bytes must not stop the batch (surrogates).
        with log_file.open("a", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write(f"$ {line}\n{logged}\n[{status}]\n\n")
    return logged


def run(
    args: Sequence[str],
    *,
    tool: str | None = None,
    timeout: float | None = None,
    progress: ProgressCallback | None = None,
    log_file: Path | None = None,
    stdout_capture: bool = False,
) -> tuple[str, str]:
    """Run ffmpeg (or ffprobe) and wait for it.

    Args:
        args: Arguments after the program name; ``-hide_banner -nostdin`` are added.
        tool: Program to run; ffmpeg by default.
        timeout: Seconds before the process is killed and :class:`FFmpegTimeout` raised.
        progress: If given, ``-progress pipe:1 -nostats`` is added and this is
            called with the output time in seconds as ffmpeg reports it.
        log_file: Where to append the command and ffmpeg's stderr, without
            the inputs' tags (:func:`redact_tags`).
        stdout_capture: Return stdout (for ffprobe's JSON). Not with ``progress``.

    Returns:
        ``(stdout, stderr)`` decoded as UTF-8 with replacement.

    Raises:
        FFmpegTimeout: The process ran longer than ``timeout``.
        FFmpegError: The process exited with a non-zero status.
    """
    program = tool or FFMPEG
    cmd = [program, "-hide_banner"]
    if program == FFMPEG:
        cmd.append("-nostdin")
        if progress is not None:
            cmd += ["-progress", "pipe:1", "-nostats"]
    cmd += list(args)
    piped = progress is not None or stdout_capture
    stdout = ""
    with _spawned(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if piped else subprocess.DEVNULL,
        timeout=timeout,
        log_file=log_file,
    ) as child:
        assert child.proc.stdout is not None or not piped
        if progress is not None and child.proc.stdout is not None:
            for raw in iter(child.proc.stdout.readline, b""):
                key, _, value = raw.decode("ascii", "replace").strip().partition("=")
                if key == "out_time_us" and value.lstrip("-").isdigit():
                    progress(max(0.0, int(value) / 1_000_000))
        elif child.proc.stdout is not None:
            stdout = child.proc.stdout.read().decode("utf-8", "replace")
    return stdout, child.stderr


def stream(
    args: Sequence[str],
    chunk_size: int,
    *,
    timeout: float | None = None,
    log_file: Path | None = None,
    on_exit: Callable[[str], None] | None = None,
) -> Iterator[bytes]:
    """Run ffmpeg writing raw data to ``pipe:1`` and yield it ``chunk_size`` bytes at a time.

    For analysis on decoded frames (one frame per chunk); memory stays at one
    chunk however long the input. The process is killed if the consumer stops
    early or ``timeout`` passes. ``on_exit`` gets the whole stderr once the
    process has ended well (what audio filters in the same run printed).

    Raises:
        FFmpegTimeout: The process ran longer than ``timeout``.
        FFmpegError: The process exited with a non-zero status.
    """
    cmd = [FFMPEG, "-hide_banner", "-nostdin", *args]
    with _spawned(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, timeout=timeout, log_file=log_file
    ) as child:
        assert child.proc.stdout is not None
        while len(data := child.proc.stdout.read(chunk_size)) == chunk_size:
            yield data
    if on_exit is not None:
        on_exit(child.stderr)


def feed(
    args: Sequence[str],
    chunks: Iterable[bytes],
    *,
    timeout: float | None = None,
    log_file: Path | None = None,
) -> None:
    """Run ffmpeg reading raw data from ``pipe:0``, written one chunk at a time.

    The counterpart of :func:`stream`, for pictures made in Python (an
    anonymization mask): each chunk is handed over as it is produced, so
    memory stays at one chunk however long the output.

    Raises:
        FFmpegTimeout: The process ran longer than ``timeout``.
        FFmpegError: The process exited with a non-zero status.
    """
    cmd = [FFMPEG, "-hide_banner", "-nostdin", *args]
    with _spawned(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, timeout=timeout, log_file=log_file
    ) as child:
        assert child.proc.stdin is not None
        # A dead ffmpeg closes the pipe; its exit status says why.
        with contextlib.suppress(BrokenPipeError):
            for chunk in chunks:
                child.proc.stdin.write(chunk)


#: How ffmpeg reports a write refused for lack of room (av_strerror's texts).
_NO_ROOM = {
    errno.ENOSPC: "No space left on device",
    errno.EDQUOT: "Disk quota exceeded",
    errno.EFBIG: "File too large",
}


#: How ffmpeg's own messages about a failed write begin.
_WRITE_ERRORS = (
    "av_interleaved_write_frame(): ", "Error writing trailer of ", "Error closing file ", "[",
)  # fmt: skip


def _out_of_space(returncode: int, stderr: str, cmd: list[str]) -> int | None:
    """The errno when ffmpeg failed because the disk, a quota or a file-size limit is full.

    That is the machine's problem, not the upload's: it must stop the run with
    a reason (an ``OSError``), not reject every clip as unreadable. A process
    whose SIGXFSZ is not ignored is killed by it instead of seeing EFBIG.

    Only ffmpeg's own error lines count (``av_interleaved_write_frame(): …``,
    ``Error writing trailer of …``, ``[muxer @ 0x…] …``), with the command's
    arguments cut out first: an upload named ``No space left on device.mp4``
    or tagged so must not stop the batch.
    """
    if returncode == -signal.SIGXFSZ:
        return errno.EFBIG
    # Not only on failure: ffmpeg 5.1 exits 0 when writing the MP4 trailer hits a
    # full disk, leaving a truncated file.
    for line in stderr.splitlines()[-4 * STDERR_TAIL_LINES :]:
        if not line.startswith(_WRITE_ERRORS):
            continue
        for arg in cmd:
            line = line.replace(arg, "").replace(arg.removeprefix("file:"), "")
        for code, text in _NO_ROOM.items():
            if line.endswith(": " + text):
                return code
    return None


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"
