"""Full encode slots: the next clip is prepared while one encodes, and a slot holds an encode only.

Read from what ran, not from timing thresholds: every ffmpeg process the flow
started (its thread, command line, start and end) and every time a clip's task
held an encode slot, with one slot for a batch of three tiny clips.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import mediagen as mg
from flows import campaign, scale
from flows.params import BatchParams
from processing import runner

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Span:
    """Something a thread did between two instants (``time.time()``)."""

    thread: int
    start: float
    end: float
    what: str

    def within(self, other: Span) -> bool:
        return other.start <= self.start and self.end <= other.end

    @property
    def encode(self) -> bool:
        return "libx264" in self.what.split()


@contextlib.contextmanager
def _recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[list[Span], list[Span]]]:
    """Every ffmpeg/ffprobe process and every encode slot held while the block runs."""
    processes: list[Span] = []
    slots: list[Span] = []
    spawned, encode_slot = runner._spawned, scale.encode_slot

    @contextlib.contextmanager
    def recorded_process(cmd: list[str], **kw: Any) -> Iterator[Any]:
        start = time.time()
        try:
            with spawned(cmd, **kw) as child:
                yield child
        finally:
            processes.append(Span(threading.get_ident(), start, time.time(), " ".join(cmd)))

    def recorded_slot(*args: Any) -> Callable[[], contextlib.AbstractContextManager[None]]:
        real = encode_slot(*args)

        @contextlib.contextmanager
        def held() -> Iterator[None]:
            with real():
                start = time.time()
                try:
                    yield
                finally:
                    slots.append(Span(threading.get_ident(), start, time.time(), "slot"))

        return held

    monkeypatch.setattr(runner, "_spawned", recorded_process)
    monkeypatch.setattr(scale, "encode_slot", recorded_slot)
    yield processes, slots


def test_next_clip_is_prepared_while_one_encodes_and_the_slot_holds_only_the_encode(
    prefect_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "uploads"
    src.mkdir()
    for i in range(3):
        mg.make_clip(src / f"clip{i}.mp4", duration=1.5 + 0.1 * i, size=(320, 180))
        (src / f"clip{i}.json").write_text(json.dumps({"name": f"S {i}", "consent": True}))
    config = tmp_path / "one-slot.toml"
    config.write_text(
        "[output]\nwidth = 320\nheight = 180\n[orchestration]\nmax_parallel_encodes = 1\n"
    )
    params = BatchParams(source=str(src), out=str(tmp_path / "out"), config=str(config))
    with _recorded(monkeypatch) as (processes, slots):
        entries = campaign.process_submissions(params)
    assert [e.status for e in entries] == ["accepted"] * 3

    encodes = sorted((p for p in processes if p.encode), key=lambda p: p.start)
    assert len(encodes) == len(slots) == 3
    # One slot: the encodes never overlap.
    assert all(a.end <= b.start for a, b in itertools.pairwise(encodes))
    # Each slot held exactly one process of its clip's thread, and that is its encode.
    for slot in slots:
        inside = [p for p in processes if p.thread == slot.thread and p.within(slot)]
        assert [p.encode for p in inside] == [True], inside
    # Clip 2 (and 3) started preparing (probe, health check, loudness) before the
    # encode of the clip ahead of it ended.
    for ahead, nxt in itertools.pairwise(encodes):
        first = min(p.start for p in processes if p.thread == nxt.thread)
        assert first < ahead.end, "the next clip waited for the encode ahead of it"

    # The entries say the same: prepared before the clip ahead finished encoding.
    times = sorted((e.stage_times or {} for e in entries), key=lambda t: t["slot_taken"])
    assert all(
        t["started"] <= t["prepared"] <= t["slot_taken"] <= t["encoded"] <= t["slot_given"]
        for t in times
    )
    assert all(b["started"] < a["encoded"] for a, b in itertools.pairwise(times))


@contextlib.contextmanager
def _flow_events(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """In the flow's order: each clip task submitted, each finished clip the flow took in."""
    from flows import artifacts

    events: list[str] = []
    task_type = type(campaign.process_task)
    submit, advance = task_type.submit, artifacts.ProgressArtifact.advance

    def recorded_submit(self: Any, *args: Any, **kw: Any) -> Any:
        if self.name == campaign.process_task.name:
            events.append("submitted")
        return submit(self, *args, **kw)

    def recorded_advance(self: Any) -> None:
        events.append("finished")
        advance(self)

    monkeypatch.setattr(task_type, "submit", recorded_submit)
    monkeypatch.setattr(artifacts.ProgressArtifact, "advance", recorded_advance)
    yield events


def test_a_rerun_decides_every_reused_clip_at_once_without_a_slot_or_ffmpeg(
    prefect_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "uploads"
    src.mkdir()
    for i in range(5):
        mg.make_clip(src / f"clip{i}.mp4", duration=1.0 + 0.1 * i, size=(160, 90))
        (src / f"clip{i}.json").write_text(json.dumps({"name": f"S {i}", "consent": True}))
    late = tmp_path / "clip4"
    for ext in (".mp4", ".json"):  # the upload that comes after the first run
        (src / f"clip4{ext}").rename(late.with_suffix(ext))
    config = tmp_path / "window-of-one.toml"
    config.write_text(
        "[output]\nwidth = 160\nheight = 90\n"
        "[orchestration]\nmax_parallel_encodes = 1\nprepare_ahead = 0\n"
    )
    params = BatchParams(source=str(src), out=str(tmp_path / "out"), config=str(config))
    campaign.process_submissions(params)

    # Nothing new: all four are submitted before the flow takes in the first
    # one finished (a window of one clip would alternate), and none takes a
    # slot or runs ffmpeg.
    with _recorded(monkeypatch) as (processes, slots), _flow_events(monkeypatch) as events:
        entries = campaign.process_submissions(params)
    assert [e.cached for e in entries] == [True] * 4
    assert events == ["submitted"] * 4 + ["finished"] * 4
    assert (processes, slots) == ([], [])

    # One new upload: it is submitted (first) together with the four reused ones,
    # and it alone is encoded, in the one slot.
    for ext in (".mp4", ".json"):
        late.with_suffix(ext).rename(src / f"clip4{ext}")
    with _recorded(monkeypatch) as (processes, slots), _flow_events(monkeypatch) as events:
        entries = campaign.process_submissions(params)
    assert sorted(e.cached for e in entries) == [False] + [True] * 4
    assert events == ["submitted"] * 5 + ["finished"] * 5
    assert len(slots) == 1 and sum(p.encode for p in processes) == 1


def test_the_run_log_names_only_the_flags_raised() -> None:
    """The clip's line in the Prefect log names the raised flags, not every one measured."""
    from flows.campaign import _clip_line
    from processing.report import Entry

    entry = Entry.from_dict(
        {
            "id": "abc", "source": "a.mp4", "status": "accepted", "output": "clips/abc.mp4",
            "output_i": -16.0, "seconds": 1.0,
            "flags": {
                "dark": {"raised": True, "value": 0.1},
                "silent": {"raised": False, "value": 0.0},
                "blurry": {"raised": False, "value": 300.0},
            },
        }
    )  # fmt: skip
    line = _clip_line(entry)
    assert "flags: dark;" in line and "silent" not in line and "blurry" not in line, line
