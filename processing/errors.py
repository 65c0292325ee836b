"""Errors that carry a reason a staff member can act on."""

from __future__ import annotations


class ReelError(Exception):
    """Base class for every error this project raises on purpose."""


class ConfigError(ReelError):
    """The campaign configuration is invalid; the message names the key and what to do."""


class FFmpegError(ReelError):
    """An ffmpeg or ffprobe process failed.

    Attributes:
        cmd: The argument list that was run.
        returncode: The process exit status (negative for a signal).
        stderr_tail: The last lines ffmpeg wrote to stderr.
    """

    def __init__(self, message: str, cmd: list[str], returncode: int | None, stderr_tail: str):
        super().__init__(message)
        self.cmd = cmd
        self.returncode = returncode
        self.stderr_tail = stderr_tail

    def __str__(self) -> str:
        tail = self.stderr_tail.strip()
        return f"{self.args[0]}" + (f"\n--- ffmpeg said ---\n{tail}" if tail else "")


class FFmpegTimeout(FFmpegError):
    """An ffmpeg process ran past its time limit and was killed."""


class FFmpegInterrupted(ReelError, InterruptedError):
    """An ffmpeg or ffprobe process was killed by a signal this project did not send.

    Someone or something outside stopped it (``kill``, the OOM killer, a
    container shutting down): the upload is not at fault, so this is not a
    :class:`FFmpegError` a stage could read as a bad file. It is an
    ``OSError`` (``InterruptedError``), so the pipeline lets it through like a
    storage failure, the orchestrator retries the task, and the CLI says the
    run was interrupted and can be run again.

    Attributes:
        cmd: The argument list that was run.
        signal_name: The signal that ended it (``SIGKILL`` …).
    """

    def __init__(self, message: str, cmd: list[str], signal_name: str):
        super().__init__(message)
        self.cmd = cmd
        self.signal_name = signal_name

    def __str__(self) -> str:
        return str(self.args[0])


class Rejection(ReelError):
    """A submission cannot be used. ``reason`` is shown to staff as it is.

    Attributes:
        reason: One human-readable sentence saying what is wrong and, where
            it helps, what the contributor could do.
        code: A short stable identifier (``empty``, ``not_media``, ``too_short`` …)
            for filtering in reports and tests.
    """

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason

    @classmethod
    def from_ffmpeg(cls, exc: FFmpegError, log: str) -> Rejection:
        """The rejection for an ffmpeg run that failed on an upload (the one translation).

        Args:
            exc: What the runner raised (a timeout, or ffmpeg's own failure).
            log: Where the full ffmpeg output is, relative to the output folder.
        """
        if isinstance(exc, FFmpegTimeout):
            return cls("timeout", f"Processing took too long and was stopped: {exc.args[0]}.")
        last = exc.stderr_tail.strip().splitlines()[-1:] or ["no output"]
        return cls(
            "encode_failed",
            f"ffmpeg could not process this file ({last[0][:200]}); full log: {log}",
        )


class Unsupervised(ReelError, OSError):
    """An ffmpeg or ffprobe could not be tied to the worker that starts it.

    The kernel refused ``PR_SET_PDEATHSIG``, so the process would run on as an
    orphan if the worker died; it is not started. The machine is at fault, not
    the upload: like a full disk it stops the run (an ``OSError``) with this
    reason instead of rejecting every clip.
    """

    def __str__(self) -> str:
        return str(self.args[0])
