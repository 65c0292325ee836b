"""The remembrance compilation: stream-copy assembly that measures right."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

import mediagen as mg
from bench.common import is_encode, logged_commands, write_ffmpeg_shim
from processing import runner
from processing.assemble import cap_length, compile_remembrance
from processing.compilation_checks import moov_before_mdat
from processing.config import load_config
from processing.pipeline import process_batch
from processing.storage import LocalSource
from processing.timeline import Compilation, Segment, with_starts
from tests import measure
from tests.conftest import Batch

ONE_FRAME = 1 / 30


@pytest.fixture(scope="module")
def compiled(batch: Batch, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The session batch compiled once, in a copy of its output folder."""
    out = tmp_path_factory.mktemp("compiled") / "out"
    shutil.copytree(batch.out, out)
    comp = compile_remembrance(out, batch.cfg)
    manifest = json.loads((out / "compilation" / "manifest.json").read_text("utf-8"))
    # The set lives in its build's folder; the manifest (the pointer) names it.
    assert manifest["output"] == f"compilation/{manifest['build']}/{comp.output.name}"
    return out, manifest


def _video(out: Path, manifest: dict) -> Path:
    return out / manifest["output"]


def test_compilation_is_browser_ready_h264(compiled: tuple[Path, dict]) -> None:
    out, manifest = compiled
    data = measure.ffprobe_json(_video(out, manifest))
    v = next(s for s in data["streams"] if s["codec_type"] == "video")
    a = next(s for s in data["streams"] if s["codec_type"] == "audio")
    assert (v["codec_name"], v["profile"], v["pix_fmt"]) == ("h264", "High", "yuv420p")
    assert (v["width"], v["height"], v["avg_frame_rate"]) == (1920, 1080, "30/1")
    assert (a["codec_name"], int(a["sample_rate"]), a["channels"]) == ("aac", 48000, 2)
    assert moov_before_mdat(_video(out, manifest))
    assert _video(out, manifest).name == f"remembrance-{manifest['year']}.mp4"


def test_duration_is_the_sum_of_segments_and_streams_end_together(
    compiled: tuple[Path, dict],
) -> None:
    out, manifest = compiled
    path = _video(out, manifest)
    total = sum(s["duration"] for s in manifest["segments"])
    assert abs(float(measure.ffprobe_json(path)["format"]["duration"]) - total) <= 0.1
    video_end, audio_end = measure.stream_end_times(path)
    assert video_end is not None and audio_end is not None
    assert abs(video_end - audio_end) <= ONE_FRAME
    assert abs(measure.frame_count(path) - round(total * 30)) <= 2


def test_chapters_line_up_with_the_segments(compiled: tuple[Path, dict]) -> None:
    out, manifest = compiled
    chapters = measure.ffprobe_json(_video(out, manifest))["chapters"]
    segments = manifest["segments"]
    assert [c["tags"]["title"] for c in chapters] == [s["label"] for s in segments]
    for chapter, seg in zip(chapters, segments, strict=True):
        assert abs(float(chapter["start_time"]) - seg["start"]) <= 0.01
    assert segments[0]["kind"] == "title" and segments[-1]["kind"] == "end"
    assert segments[0]["label"] == "Title card"
    listing = (_video(out, manifest).with_suffix(".chapters.txt")).read_text()
    assert listing.splitlines()[0] == "00:00 Title card"
    assert len(listing.splitlines()) == len(segments)


def test_every_clip_segment_is_on_target_loudness(
    compiled: tuple[Path, dict], tmp_path: Path
) -> None:
    out, manifest = compiled
    report = {e["id"]: e for e in json.loads((out / "report.json").read_text())["submissions"]}
    measured = 0
    for seg in manifest["segments"]:
        if seg["kind"] != "clip" or (report[seg["id"]]["output_i"] or -99) <= -70:
            continue
        piece = tmp_path / f"{seg['id']}.m4a"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-ss", str(seg["start"]), "-t", str(seg["duration"]),
             "-i", str(_video(out, manifest)), "-map", "0:a", "-c:a", "pcm_s16le",
             "-f", "wav", str(piece.with_suffix(".wav"))],
            check=True, timeout=60,
        )  # fmt: skip
        integrated, _ = measure.loudness(piece.with_suffix(".wav"))
        assert abs(integrated + 16) <= 1.0, f"{seg['label']}: {integrated} LUFS"
        measured += 1
    assert measured >= 3


def test_only_consenting_clips_are_included_and_the_report_says_so(
    batch: Batch, compiled: tuple[Path, dict]
) -> None:
    out, manifest = compiled
    included = {s["id"] for s in manifest["segments"] if s["kind"] == "clip"}
    consenting = {e.id for e in batch.entries.values() if e.status == "accepted"}
    assert included == consenting
    report = json.loads((out / "report.json").read_text("utf-8"))
    left = {item["id"]: item["reason"] for item in report["compilation"]["left_out"]}
    for e in batch.entries.values():
        if e.status == "excluded":
            assert "consent" in left[e.id]


def test_subtitles_and_credits_follow_the_clips(batch: Batch, compiled: tuple[Path, dict]) -> None:
    out, manifest = compiled
    folder = _video(out, manifest).parent
    stem = f"remembrance-{manifest['year']}"
    clips = [s for s in manifest["segments"] if s["kind"] == "clip"]
    srt = (folder / f"{stem}.srt").read_text("utf-8")
    assert srt.count(" --> ") == len(clips)
    first = clips[0]
    start = f"00:00:{int(first['start']):02d},{round(first['start'] % 1 * 1000):03d}"
    assert start in srt
    vtt = (folder / f"{stem}.vtt").read_text("utf-8")
    assert vtt.startswith("WEBVTT") and vtt.count(" --> ") == len(clips)
    assert "Айшат из Грозного" in srt and "Айшат из Грозного" in vtt
    credits = (folder / f"{stem}.credits.txt").read_text("utf-8")
    assert "Айшат из Грозного" in credits and "Maria" in credits
    unconsented = [e.name for e in batch.entries.values() if e.name and e.consent is not True]
    assert unconsented and not any(name in credits for name in unconsented)


def test_sync_holds_at_the_end_of_a_long_sequence(batch: Batch, tmp_path: Path) -> None:
    """A/V drift would accumulate over the segments: put the sync clip last."""
    out = tmp_path / "out"
    shutil.copytree(batch.out, out)
    usable = [e.id for e in batch.entries.values() if e.status == "accepted"]
    sync = batch.entries["landscape.mp4"].id
    order = [i for i in usable if i != sync] * 3 + [sync]  # repeats make it longer
    comp = compile_remembrance(out, batch.cfg, order=order)
    seg = next(s for s in comp.segments if s.id == sync)
    assert seg.start > 20
    assert abs(measure.av_offset(comp.output)) <= ONE_FRAME


def test_editor_order_and_length_cap(batch: Batch, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(batch.out, out)
    ids = [e.id for e in batch.entries.values() if e.status == "accepted"]
    order = list(reversed(ids))
    durations = {e.id: e.duration for e in batch.entries.values()}
    cap = 6 + 8 + durations[order[0]] + durations[order[1]] + 0.5
    cfg = load_config(overrides={"compilation": {"max_total_seconds": cap}})
    comp = compile_remembrance(out, cfg, order=order)
    assert [s.id for s in comp.segments if s.kind == "clip"] == order[:2]
    left = {item["id"]: item["reason"] for item in comp.left_out}
    assert all("length cap" in left[i] for i in order[2:])
    assert comp.duration <= cap


def test_a_mismatched_segment_is_re_normalized_not_glued(batch: Batch, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(batch.out, out)
    victim = next(e for e in batch.entries.values() if e.status == "accepted")
    clip = out / victim.output
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(batch.out / victim.output), "-r", "25",
         "-s", "1280x720", "-c:v", "libx264", "-profile:v", "main", "-c:a", "aac",
         "-ar", "44100", str(clip)],
        check=True, timeout=120,
    )  # fmt: skip
    comp = compile_remembrance(out, batch.cfg)
    assert any(clip.name in c and "r_frame_rate" in c for c in comp.conformed)
    data = measure.ffprobe_json(comp.output)
    v = next(s for s in data["streams"] if s["codec_type"] == "video")
    assert (v["avg_frame_rate"], v["profile"], v["width"]) == ("30/1", "High", 1920)
    # The checks measured the published file: its length, and the re-normalized clip's level.
    measured = float(data["format"]["duration"])
    assert comp.checks["duration"] == pytest.approx(measured, abs=1e-3)
    assert abs(measured - comp.duration) <= ONE_FRAME
    levels = {item["id"]: item["integrated"] for item in comp.checks["segment_loudness"]}
    assert abs(levels[victim.id] - batch.cfg.loudness.target_i) <= 1.0


def test_one_new_upload_re_encodes_only_that_clip(tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(2):
        mg.make_clip(src / f"c{i}.mp4", duration=2, size=(640, 360), lufs=-20 - i)
        (src / f"c{i}.json").write_text(json.dumps({"name": f"N{i}", "consent": True}))
    cfg = load_config()
    process_batch(LocalSource(src), out, cfg)
    first = compile_remembrance(out, cfg)
    cards = {p: p.stat().st_mtime_ns for p in (out / "compilation" / "cards").iterdir()}
    mg.make_clip(src / "c2.mp4", duration=2, size=(640, 360), lufs=-25)
    (src / "c2.json").write_text(json.dumps({"name": "N2", "consent": True}))
    entries = process_batch(LocalSource(src), out, cfg)
    assert sorted(e.cached for e in entries) == [False, True, True]
    started = time.monotonic()
    second = compile_remembrance(out, cfg)
    elapsed = time.monotonic() - started
    assert {p: p.stat().st_mtime_ns for p in cards} == cards, "cards are reused"
    assert second.conformed == [] and len(second.segments) == len(first.segments) + 1
    assert elapsed < 30, f"assembly took {elapsed:.1f} s"


def test_crossfades_re_encode_once_and_shorten_by_the_overlaps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(2):  # different loudness, so different bytes: two clips, not duplicates
        mg.make_clip(src / f"c{i}.mp4", duration=2, size=(640, 360), lufs=-20 - i)
        (src / f"c{i}.json").write_text(json.dumps({"consent": True}))
    cfg = load_config(overrides={"compilation": {"crossfade_seconds": 0.5}})
    process_batch(LocalSource(src), out, cfg)
    # Every ffmpeg call of the compile step goes through the counting shim.
    calls = tmp_path / "ffmpeg-calls.log"
    monkeypatch.setattr(runner, "FFMPEG", str(write_ffmpeg_shim(tmp_path / "shim")))
    monkeypatch.setenv("REEL_BENCH_FFMPEG_LOG", str(calls))
    comp = compile_remembrance(out, cfg)
    ids = [str(s.id) for s in comp.segments if s.kind == "clip"]
    assert len(ids) == 2
    encodes = [c for c in logged_commands(calls) if is_encode(c)]
    joined = [c for c in encodes if any(sid in c for sid in ids)]
    assert len(joined) == 1, f"{len(joined)} encodes of the clips' pictures"
    assert all(sid in joined[0] for sid in ids), "one encode reads every clip"
    # 4 segments, 3 overlaps of 0.5 s: the file, the value, the manifest and the report agree.
    measured = float(measure.ffprobe_json(comp.output)["format"]["duration"])
    overlapped = sum(s.duration for s in comp.segments) - 0.5 * (len(comp.segments) - 1)
    assert abs(measured - overlapped) <= ONE_FRAME
    assert abs(comp.duration - measured) <= ONE_FRAME
    manifest = json.loads((out / "compilation" / "manifest.json").read_text("utf-8"))
    assert abs(manifest["duration"] - measured) <= ONE_FRAME
    report = json.loads((out / "report.json").read_text("utf-8"))
    assert abs(report["compilation"]["duration"] - measured) <= ONE_FRAME
    assert comp.checks["duration"] == pytest.approx(measured, abs=1e-3)
    assert comp.checks["expected_duration"] == pytest.approx(comp.duration, abs=1e-3)


def test_cards_in_russian(tmp_path: Path, batch: Batch) -> None:
    out = tmp_path / "out"
    shutil.copytree(batch.out, out)
    cfg = load_config(overrides={"compilation": {"language": "ru"}})
    comp = compile_remembrance(out, cfg)
    assert comp.segments[0].label == "Заставка" and comp.segments[-1].label == "Призыв к действию"
    chapters = measure.ffprobe_json(comp.output)["chapters"]
    assert chapters[0]["tags"]["title"] == "Заставка"


def test_the_length_cap_counts_the_crossfade_overlaps() -> None:
    """Title 6 s + two 5 s clips + end 8 s, three 1 s crossfades: 21 s, which fits a 21 s cap."""
    cfg = load_config(
        overrides={"compilation": {"max_total_seconds": 21.0, "crossfade_seconds": 1.0}}
    )
    clips = [Segment("clip", Path(f"{i}.mp4"), 5.0, f"c{i}", id=f"c{i}") for i in range(3)]
    kept, left = cap_length(clips, 6.0 + 8.0, cfg)
    assert [s.id for s in kept] == ["c0", "c1"]
    assert [item["id"] for item in left] == ["c2"]
    cards = [Segment("title", Path("t.mp4"), 6.0, "t"), Segment("end", Path("e.mp4"), 8.0, "e")]
    timed = with_starts([cards[0], *kept, cards[1]], 1.0)
    comp = Compilation(Path("c.mp4"), 2027, timed, crossfade=1.0)
    assert comp.duration == pytest.approx(21.0)
    assert timed[-1].start + timed[-1].duration == pytest.approx(comp.duration)
