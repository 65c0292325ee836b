"""One decode of the upload, none of the clip (issue 16 item 2), with every check kept.

The encode is the health check's decode and the quality analysis's: these
tests count, through the ffmpeg shim the benchmark uses, which ffmpeg runs
read the upload's picture or the finished clip, and check that a damaged
upload is still refused with the reason checking it first gave, with nothing
left at the clip's final path.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

import mediagen as mg
from bench.common import logged_commands, write_ffmpeg_shim
from processing import runner
from processing.clip import driver
from processing.config import load_config
from processing.pipeline import process_batch
from processing.report import Entry
from processing.storage import LocalSource
from tests import measure

SMALL = {"output": {"width": 320, "height": 180}}
#: How far the loudness the encode's tap metered (before AAC) may be from the clip's.
TAP_TOLERANCE_LU = 0.2


def _batch(tmp_path: Path, make: object, cfg_overrides: dict | None = None) -> tuple[Entry, Path]:
    """Process one upload built by ``make(path)`` through the counting shim."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    upload = src / "upload.mp4"
    make(upload)  # type: ignore[operator]
    upload.with_suffix(".json").write_text(json.dumps({"consent": True}), "utf-8")
    (entry,) = process_batch(LocalSource(src), out, load_config(overrides=cfg_overrides or SMALL))
    return entry, out


@pytest.fixture
def shim_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    calls = tmp_path / "ffmpeg-calls.log"
    monkeypatch.setattr(runner, "FFMPEG", str(write_ffmpeg_shim(tmp_path / "shim")))
    monkeypatch.setenv("REEL_BENCH_FFMPEG_LOG", str(calls))
    return calls


def _encodes_of_upload(tmp_path: Path, shim_log: Path) -> list[str]:
    return [
        c for c in logged_commands(shim_log)
        if f"-i file:{tmp_path}/in/upload.mp4" in c and "libx264" in c.split()
    ]  # fmt: skip


def test_the_upload_is_decoded_once_and_the_clips_picture_never(
    tmp_path: Path, shim_log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made_before_page: list[str] = []
    finish = driver.finish_batch

    def finish_seen(out: Path, *args: Any, **kw: Any) -> Path:
        made_before_page.extend(p.name for p in (out / "review" / "media").glob("*.jpg"))
        return finish(out, *args, **kw)

    monkeypatch.setattr(driver, "finish_batch", finish_seen)
    entry, out = _batch(tmp_path, lambda p: mg.make_clip(p, duration=2, size=(320, 180)))
    assert entry.status == "accepted", entry.reason
    commands = logged_commands(shim_log)
    upload = [c for c in commands if f"-i file:{tmp_path}/in/upload.mp4" in c]
    picture = [c for c in upload if " -vn " not in f" {c} "]
    assert len(picture) == 1, f"{len(picture)} ffmpeg runs decode the upload's picture: {picture}"
    assert "libx264" in picture[0].split(), "the one that does is the encode"
    assert any("ebur128" in c for c in upload if " -vn " in f" {c} "), "loudness: sound only"
    reads = [c for c in commands if f"-i file:{out}/clips/{entry.id}.mp4" in c]
    # The review page's contact sheet (8 thumbnails) is the one reader left, and not a measure.
    measuring = [c for c in reads if "ebur128" in c or "silencedetect" in c or " gray " in c]
    # The flags come from the taps; the record's loudness from the encoded sound alone.
    picture_read = [c for c in measuring if " -vn " not in f" {c} "]
    assert picture_read == [], "the quality flags come from the encode's taps"
    assert len(measuring) == 1 and "ebur128" in measuring[0], measuring
    # The poster and sheet: made once, in the clip's task; the page built after finds them.
    pictures = [c for c in reads if c not in measuring]
    assert len(pictures) == 1, pictures
    assert len([n for n in made_before_page if n.startswith(entry.id)]) == 2, made_before_page


def test_flags_and_loudness_tapped_from_the_encode_match_the_clip(tmp_path: Path) -> None:
    def make(p: Path) -> None:
        mg.make_clip(p, duration=3, size=(320, 180), lufs=-30)

    entry, out = _batch(tmp_path, make)
    assert entry.status == "accepted", entry.reason
    clip = out / str(entry.output)
    integrated, true_peak = measure.loudness(clip)
    assert entry.output_i is not None and entry.output_tp is not None
    assert abs(entry.output_i - integrated) <= TAP_TOLERANCE_LU, (entry.output_i, integrated)
    assert abs(entry.output_tp - true_peak) <= TAP_TOLERANCE_LU, (entry.output_tp, true_peak)
    assert entry.flags is not None
    assert entry.flags["silent"]["value"] == 0.0 and not entry.flags["frozen"]["raised"]
    assert entry.quality is not None and len(entry.quality["fingerprint"]) > 0


@pytest.mark.parametrize(("audio", "encodes"), [("stereo", 0), (None, 1)])
def test_a_cut_upload_whose_index_survived_is_refused_and_leaves_nothing(
    tmp_path: Path, shim_log: Path, audio: str | None, encodes: int
) -> None:
    """With sound the loudness pass finds the damage; without, the encode's own decode does."""

    def make(p: Path) -> None:
        whole = tmp_path / "whole.mp4"
        mg.make_clip(whole, duration=4, size=(320, 180), audio=audio)  # type: ignore[arg-type]
        mg.make_truncated_faststart(p, whole, fraction=0.5)

    entry, out = _batch(tmp_path, make)
    assert (entry.status, entry.code) == ("rejected", "corrupt"), entry.reason
    assert entry.reason and entry.reason.startswith("The file is damaged: ")
    assert sorted(p.name for p in (out / "clips").glob("*") if not p.name.endswith(".log")) == []
    assert len(_encodes_of_upload(tmp_path, shim_log)) == encodes


def _stretch_header(path: Path, factor: int) -> None:
    """Make the MP4's movie header claim ``factor`` times its real length (streams unchanged)."""
    data = bytearray(path.read_bytes())
    at = data.index(b"mvhd") + 4
    version = data[at]
    if version == 0:  # version, flags, created, modified, timescale, duration (32-bit)
        (duration,) = struct.unpack_from(">I", data, at + 16)
        struct.pack_into(">I", data, at + 16, duration * factor)
    else:
        (duration,) = struct.unpack_from(">Q", data, at + 28)
        struct.pack_into(">Q", data, at + 28, duration * factor)
    path.write_bytes(bytes(data))


def test_a_header_claiming_more_than_there_is_renders_what_there_is(
    tmp_path: Path, shim_log: Path
) -> None:
    def make(p: Path) -> None:
        mg.make_clip(p, duration=2, size=(320, 180))
        _stretch_header(p, 2)

    make(tmp_path / "claimed.mp4")
    assert float(measure.ffprobe_json(tmp_path / "claimed.mp4")["format"]["duration"]) > 3.5
    entry, out = _batch(tmp_path, make)
    assert entry.status == "accepted", entry.reason
    assert entry.duration is not None and abs(entry.duration - 2.0) <= 0.05, entry.duration
    clip = out / str(entry.output)
    assert abs(float(measure.ffprobe_json(clip)["format"]["duration"]) - 2.0) <= 0.05
    log = next((out / "logs").glob("*.log")).read_text("utf-8")
    assert "planned again" in log
    encodes = _encodes_of_upload(tmp_path, shim_log)
    assert len(encodes) == 2, "the lying header costs one encode more, never a wrong clip"
