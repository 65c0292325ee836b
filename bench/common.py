"""What every benchmark section shares: statistics, the machine, and measuring tools.

* :func:`summary` and :func:`paired_ratios`: every figure is reported as median,
  min and max over its runs; a comparison is the ratio of A and B measured in
  the same round (A and B interleaved), summarized the same way.
* :class:`FFmpegRecorder`: times every ffmpeg/ffprobe call the pipeline makes
  in this process, by wrapping :func:`processing.runner.run` and
  :func:`processing.runner.stream` (the project's only ways to run ffmpeg).
* :func:`write_ffmpeg_shim`: a ``REEL_FFMPEG`` stand-in that logs every
  command line and then execs the real ffmpeg, to count encodes in other
  processes (Prefect workers, Dask workers).
* :class:`TreeMemory`: peak resident memory of a process and all its
  descendants, sampled every 50 ms.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

#: How often :class:`TreeMemory` samples, in seconds.
MEMORY_INTERVAL = 0.05


def summary(values: Sequence[float], digits: int = 3) -> dict[str, Any]:
    """Median, min, max and every run of ``values``."""
    vals = [float(v) for v in values]
    return {
        "median": round(statistics.median(vals), digits),
        "min": round(min(vals), digits),
        "max": round(max(vals), digits),
        "runs": [round(v, digits) for v in vals],
    }


def paired_ratios(a: Sequence[float], b: Sequence[float], digits: int = 3) -> dict[str, Any]:
    """``a[i] / b[i]`` for each round ``i`` (both measured in that round), summarized."""
    if len(a) != len(b) or not a:
        raise ValueError("paired ratios need the same, non-zero number of runs")
    return summary([x / y for x, y in zip(a, b, strict=True)], digits)


def ffmpeg_binary() -> str:
    """The real ffmpeg the pipeline runs (``REEL_FFMPEG`` aside)."""
    found = shutil.which("ffmpeg")
    if found is None:
        raise RuntimeError("ffmpeg is not on PATH: run `make setup`")
    return os.path.realpath(found)


def machine() -> dict[str, Any]:
    """Cores, memory, CPU, ffmpeg and library versions, date and load: what the figures mean on."""
    ffmpeg_version = subprocess.run(
        [ffmpeg_binary(), "-hide_banner", "-version"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[0]
    cpu = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {}
    for pkg in ("prefect", "moviepy", "distributed", "numpy"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[pkg] = metadata.version(pkg)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "ffmpeg": ffmpeg_version,
        "python": platform.python_version(),
        "os": platform.platform(),
        "packages": versions,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


@dataclass
class Call:
    """One ffmpeg or ffprobe call made through the project runner."""

    kind: str
    seconds: float
    args: list[str]


Classifier = Callable[[str, list[str]], str]


@dataclass
class FFmpegRecorder:
    """Times every :mod:`processing.runner` call made in this process while active.

    ``classify(tool, args)`` names each call (``tool`` is ``"ffmpeg"`` or
    ``"ffprobe"``); the wrappers add two ``time.monotonic()`` calls per ffmpeg
    process, nothing measurable next to starting the process.
    """

    classify: Classifier
    calls: list[Call] = field(default_factory=list)

    @contextlib.contextmanager
    def active(self) -> Iterator[FFmpegRecorder]:
        from processing import runner

        run, stream = runner.run, runner.stream
        lock = threading.Lock()

        def add(tool: str, args: Sequence[str], seconds: float) -> None:
            with lock:
                self.calls.append(Call(self.classify(tool, list(args)), seconds, list(args)))

        def timed_run(args: Sequence[str], **kw: Any) -> tuple[str, str]:
            tool = "ffprobe" if kw.get("tool") == runner.FFPROBE else "ffmpeg"
            start = time.monotonic()
            try:
                return run(args, **kw)
            finally:
                add(tool, args, time.monotonic() - start)

        def timed_stream(args: Sequence[str], chunk_size: int, **kw: Any) -> Iterator[bytes]:
            start = time.monotonic()
            try:
                yield from stream(args, chunk_size, **kw)
            finally:
                add("ffmpeg", args, time.monotonic() - start)

        runner.run, runner.stream = timed_run, timed_stream
        try:
            yield self
        finally:
            runner.run, runner.stream = run, stream

    def take(self) -> list[Call]:
        """The calls recorded so far; the recorder starts empty again."""
        calls, self.calls = self.calls, []
        return calls


def by_kind(calls: Sequence[Call]) -> dict[str, float]:
    """Seconds spent per kind of call, in first-seen order."""
    out: dict[str, float] = {}
    for c in calls:
        out[c.kind] = out.get(c.kind, 0.0) + c.seconds
    return out


SHIM = """#!/bin/sh
# Written by bench/common.py: log the command line, then become the real ffmpeg.
printf '%s\\n' "$$ $*" >> "${{REEL_BENCH_FFMPEG_LOG:-/dev/null}}"
exec {ffmpeg} "$@"
"""


def write_ffmpeg_shim(folder: Path) -> Path:
    """An executable that logs each ffmpeg command line to ``$REEL_BENCH_FFMPEG_LOG``.

    Pointed to by ``REEL_FFMPEG``, it lets a benchmark count the encodes made
    by any process of a run (threads, Dask workers) without touching the code.
    """
    folder.mkdir(parents=True, exist_ok=True)
    shim = folder / "ffmpeg"
    shim.write_text(SHIM.format(ffmpeg=ffmpeg_binary()), "utf-8")
    shim.chmod(0o755)
    return shim


def logged_commands(log: Path) -> list[str]:
    """The command lines a shim logged (empty if it logged none)."""
    try:
        return [line for line in log.read_text("utf-8", "replace").splitlines() if line.strip()]
    except FileNotFoundError:
        return []


def is_encode(command: str) -> bool:
    """A video encode: the one libx264 pass a clip is allowed."""
    return "libx264" in command.split()


class TreeMemory:
    """Peak resident memory (RSS) of a process and all its descendants, sampled.

    The sum over the tree counts pages shared between processes (Python
    libraries mapped by several Dask workers) more than once: an upper bound.
    """

    def __init__(self, pid: int, interval: float = MEMORY_INTERVAL):
        self.pid = pid
        self.interval = interval
        self.peak_total = 0
        self.peak_root = 0
        self.peak_processes = 0
        self.peak_threads = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._stop.is_set():
            total, count = 0, 0
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            for p in procs:
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    rss = p.memory_info().rss
                    total += rss
                    count += 1
                    if p.pid == self.pid:
                        self.peak_root = max(self.peak_root, rss)
                        self.peak_threads = max(self.peak_threads, p.num_threads())
            self.peak_total = max(self.peak_total, total)
            self.peak_processes = max(self.peak_processes, count)
            self._stop.wait(self.interval)


def mib(n: int) -> float:
    return round(n / 2**20, 1)


def dump(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", "utf-8")
