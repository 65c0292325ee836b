"""Quiet is not silent: a clip above BS.1770's -70 LUFS gate is raised to the target.

A supporter filming from across a room gives a clip at about -62 LUFS, a clear
voice that only needs gain. It must reach the target (ffmpeg-normalize lands it
there), or, when ``loudness.max_gain_db`` is set lower than it needs, be raised
by that much, flagged, and still measured by the compilation's check.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

import mediagen as mg
from processing.assemble import compile_remembrance
from processing.config import Config, load_config
from processing.loudness import Measurement
from processing.pipeline import process_batch
from processing.report import Entry
from processing.storage import LocalSource
from tests import measure

#: The quiet upload's loudness: under the old -60 "silence" line, above the -70 gate.
QUIET_LUFS = -62.0
#: How close to the target (or the capped level) the independent meter must read.
TOLERANCE_LU = 1.0
SMALL = {"output": {"width": 640, "height": 360}}


@dataclass(frozen=True)
class Processed:
    out: Path
    cfg: Config
    entries: dict[str, Entry]


@pytest.fixture(scope="module")
def uploads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("quiet-uploads")
    for name, lufs in (("quiet.mp4", QUIET_LUFS), ("normal.mp4", -20.0)):
        mg.make_clip(src / name, duration=2, size=(320, 180), lufs=lufs)
        (src / name).with_suffix(".json").write_text(json.dumps({"consent": True}), "utf-8")
    return src


def _process(uploads: Path, out: Path, cfg: Config) -> Processed:
    entries = process_batch(LocalSource(uploads), out, cfg)
    return Processed(out, cfg, {e.source: e for e in entries})


@pytest.fixture(scope="module")
def default(uploads: Path, tmp_path_factory: pytest.TempPathFactory) -> Processed:
    return _process(uploads, tmp_path_factory.mktemp("quiet-out"), load_config(overrides=SMALL))


@pytest.fixture(scope="module")
def capped(uploads: Path, tmp_path_factory: pytest.TempPathFactory) -> Processed:
    cfg = load_config(overrides={**SMALL, "loudness": {"max_gain_db": 30.0}})
    return _process(uploads, tmp_path_factory.mktemp("capped-out"), cfg)


def test_the_upload_is_quiet_but_above_the_gate(uploads: Path) -> None:
    """Guards the tests below: the fixture is what they say it is."""
    integrated, _ = measure.loudness(uploads / "quiet.mp4")
    assert -70 < integrated < -60.5
    assert not Measurement(integrated, -40.0, 5.0).silent
    assert Measurement(-70.0, -80.0, 0.0).silent  # what ebur128 prints for digital silence


def test_a_quiet_clip_reaches_the_target_with_the_default_settings(default: Processed) -> None:
    entry = default.entries["quiet.mp4"]
    assert entry.status == "accepted", entry.reason
    integrated, true_peak = measure.loudness(default.out / str(entry.output))
    target = default.cfg.loudness.target_i
    assert abs(integrated - target) <= TOLERANCE_LU, f"{integrated} LUFS"
    assert true_peak <= default.cfg.loudness.target_tp + 0.5
    assert entry.gain_db is not None and entry.gain_db > 40
    # Such a gain raises the background as much: the editors are told.
    assert any("raised by" in w and "noise" in w for w in entry.warnings), entry.warnings


def test_a_clip_the_cap_holds_back_is_raised_by_the_cap_and_flagged(capped: Processed) -> None:
    entry = capped.entries["quiet.mp4"]
    assert entry.status == "accepted", entry.reason
    integrated, _ = measure.loudness(capped.out / str(entry.output))
    assert entry.input_i is not None
    assert abs(integrated - (entry.input_i + 30.0)) <= TOLERANCE_LU, f"{integrated} LUFS"
    assert any("maximum 30 dB" in w for w in entry.warnings), entry.warnings


def _segment_loudness(video: Path, start: float, duration: float, tmp: Path) -> float:
    piece = tmp / "piece.wav"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-ss", str(start), "-t", str(duration), "-i", str(video),
         "-map", "0:a", "-c:a", "pcm_s16le", str(piece)],
        check=True, timeout=60,
    )  # fmt: skip
    return measure.loudness(piece)[0]


@pytest.mark.parametrize("which", ["default", "capped"])
def test_the_compilation_check_measures_a_quiet_clip(
    which: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Quiet clips are not exempt: the check measures them and the cut plays them at level."""
    done: Processed = request.getfixturevalue(which)
    out = tmp_path / "out"
    shutil.copytree(done.out, out)
    comp = compile_remembrance(out, done.cfg)
    quiet = done.entries["quiet.mp4"]
    (seg,) = [s for s in comp.segments if s.id == quiet.id]
    checked = {item["id"]: item["integrated"] for item in comp.checks["segment_loudness"]}
    assert quiet.id in checked, "the quiet clip was exempted from the loudness check"
    heard = _segment_loudness(comp.output, seg.start, seg.duration, tmp_path)
    expected = done.cfg.loudness.target_i if which == "default" else quiet.input_i + 30.0
    assert abs(heard - expected) <= TOLERANCE_LU, f"{heard} LUFS in the cut"
    assert abs(checked[quiet.id] - heard) <= TOLERANCE_LU
