"""Every ffmpeg and ffprobe call made for a submission reaches ``logs/<id>.log``, without tags.

Issue 14, item 4: the probe of the upload and of the clip, the face scan, the
second face check and the quality analysis used to run unlogged. A tagged,
anonymized upload goes through ``process_batch`` while the runner's process
starter is wrapped to list every command it starts; the log must show each
of them, and none of the upload's tags.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import mediagen as mg
from processing import runner
from processing.config import load_config
from processing.pipeline import process_batch
from processing.storage import LocalSource

#: What the upload carries and its log must not.
NEEDLES = [mg.LOCATION_TAGS["location"].rstrip("/"), mg.LOCATION_TAGS["make"],
           mg.LOCATION_TAGS["model"]]  # fmt: skip


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[list[str]]]:
    """The log of one anonymized, GPS-tagged upload, and every command the runner started."""
    folder = tmp_path_factory.mktemp("logged")
    up = folder / "uploads"
    up.mkdir()
    mg.make_with_location_tags(up / "located.mov")
    (up / "located.json").write_text(json.dumps({"consent": True, "anonymize": True}), "utf-8")
    cfg = load_config(
        overrides={"output": {"width": 640, "height": 360, "x264_preset": "veryfast"}}
    )
    started: list[list[str]] = []
    real = runner._spawned

    @contextlib.contextmanager
    def recording(cmd: list[str], **kw: Any) -> Iterator[Any]:
        started.append(list(cmd))
        with real(cmd, **kw) as child:
            yield child

    mp = pytest.MonkeyPatch()
    mp.setattr(runner, "_spawned", recording)
    try:
        (entry,) = process_batch(LocalSource(up), folder / "out", cfg)
    finally:
        mp.undo()
    assert entry.status == "accepted", entry.reason
    return (folder / "out" / "logs" / f"{entry.id}.log").read_text("utf-8"), started


def test_every_command_of_the_submission_is_in_its_log(logged: tuple[str, list[list[str]]]) -> None:
    log, started = logged
    logged_lines = [line[2:] for line in log.splitlines() if line.startswith("$ ")]
    assert logged_lines == [runner.shown_command(cmd) for cmd in started]
    # The calls that used to be missing, each recognisable by what it does.
    tools = [Path(cmd[0]).name for cmd in started]
    assert tools.count(Path(runner.FFPROBE).name) == 2  # the upload and the rendered clip
    # The face scan, the second face check and the review page's contact sheet.
    assert sum("rgb24" in cmd for cmd in started) == 3
    assert sum(any("silencedetect" in a for a in cmd) for cmd in started) == 1  # analysis


def test_the_log_holds_no_tag(logged: tuple[str, list[list[str]]]) -> None:
    log, _ = logged
    assert "Metadata:" in log  # ffmpeg did describe the tagged input …
    assert [n for n in NEEDLES if n in log] == []  # … and its tags were left out
