"""The fixture generators produce what they claim (mediagen/__init__.py, tests/measure.py)."""

from __future__ import annotations

import random
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest

import mediagen as gen
from processing import runner
from processing.errors import FFmpegError

from . import measure

FRAME = 1 / 30


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mediagen")


@pytest.fixture(scope="session")
def sync_clip(media: Path) -> Path:
    return gen.make_clip(media / "sync.mp4", size=(640, 360), sync_marker=True)


@pytest.fixture(scope="session")
def faststart_clip(media: Path) -> Path:
    return gen.make_clip(media / "fast.mp4", size=(640, 360), faststart=True)


def _video(path: Path) -> dict[str, Any]:
    data = measure.ffprobe_json(path)
    return next(s for s in data["streams"] if s["codec_type"] == "video")


def _decode_errors(path: Path) -> str:
    _, err = runner.run(
        ["-v", "error", "-i", runner.input_path(path), "-f", "null", "-"], timeout=120
    )
    return err.strip()


def test_sync_clip_is_in_sync_and_at_requested_loudness(sync_clip: Path) -> None:
    assert measure.flash_time(sync_clip) == pytest.approx(gen.SYNC_AT, abs=1e-3)
    assert measure.beep_onset(sync_clip) == pytest.approx(gen.SYNC_AT, abs=2e-3)
    assert abs(measure.av_offset(sync_clip)) < FRAME
    integrated, peak = measure.loudness(sync_clip)
    assert integrated == pytest.approx(-24, abs=2)
    assert peak < -1
    assert measure.stream_end_times(sync_clip) == (pytest.approx(4, abs=0.05),) * 2
    assert measure.frame_count(sync_clip) == 120


def test_av_offset_sees_a_shifted_audio_track(media: Path, sync_clip: Path) -> None:
    late = media / "late.mp4"
    runner.run(
        [
            "-y", "-v", "error", "-i", runner.input_path(sync_clip),
            "-itsoffset", "0.1", "-i", runner.input_path(sync_clip),
            "-map", "0:v", "-map", "1:a", "-c", "copy", runner.input_path(late),
        ],
        timeout=120,
    )  # fmt: skip
    assert measure.av_offset(late) == pytest.approx(0.1, abs=0.005)


@pytest.mark.parametrize(("audio", "lufs"), [("mono", -30.0), ("5.1", -20.0)])
def test_loudness_follows_the_parameter(media: Path, audio: gen.AudioLayout, lufs: float) -> None:
    clip = gen.make_clip(
        media / f"loud-{audio}.mkv", duration=3, size=(160, 120), audio=audio, lufs=lufs
    )
    assert measure.loudness(clip)[0] == pytest.approx(lufs, abs=2)
    stream = next(s for s in measure.ffprobe_json(clip)["streams"] if s["codec_type"] == "audio")
    assert stream["channels"] == {"mono": 1, "5.1": 6}[audio]


def test_portrait_clip_is_stored_landscape_and_shown_portrait_red_on_top(media: Path) -> None:
    clip = gen.make_portrait_rotated(media / "portrait.mp4", duration=2)
    v = _video(clip)
    assert (v["width"], v["height"]) == (1280, 720)
    rotations = [sd["rotation"] for sd in v.get("side_data_list", []) if "rotation" in sd]
    assert rotations == [-90]  # ffprobe counts anticlockwise: 90° clockwise, like an iPhone
    shown = measure.frame_at(clip, 1.0)
    assert shown.shape == (1280, 720, 3)
    top = shown[:100].reshape(-1, 3).mean(axis=0)
    bottom = shown[-100:].reshape(-1, 3).mean(axis=0)
    assert top[0] > 200 and top[1] < 60 and top[2] < 60, top
    assert bottom[2] > 200 and bottom[0] < 60 and bottom[1] < 60, bottom


def test_vfr_clip_really_has_variable_frame_intervals(media: Path) -> None:
    clip = gen.make_vfr(media / "vfr.mp4")
    v = _video(clip)
    assert Fraction(v["r_frame_rate"]) != Fraction(v["avg_frame_rate"])
    out, _ = runner.run(
        [
            "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time",
            "-of", "csv=p=0", runner.input_path(clip),
        ],
        tool=runner.FFPROBE, stdout_capture=True, timeout=120,
    )  # fmt: skip
    pts = np.sort([float(x) for x in out.split()])
    intervals = set(np.round(np.diff(pts) * 60).astype(int))
    assert len(intervals) >= 4, intervals
    assert abs(measure.av_offset(clip)) < FRAME


@pytest.mark.parametrize(("transfer", "trc"), [("pq", "smpte2084"), ("hlg", "arib-std-b67")])
def test_hdr_clips_are_tagged_10_bit_bt2020(
    media: Path, transfer: Literal["pq", "hlg"], trc: str
) -> None:
    v = _video(gen.make_hdr(media / f"hdr-{transfer}.mp4", transfer, duration=1))
    assert (v["codec_name"], v["codec_tag_string"], v["pix_fmt"]) == (
        "hevc",
        "hvc1",
        "yuv420p10le",
    )
    assert (v["color_primaries"], v["color_space"], v["color_transfer"]) == (
        "bt2020",
        "bt2020nc",
        trc,
    )


def test_hevc_10bit_is_not_hdr(media: Path) -> None:
    v = _video(gen.make_hevc_10bit(media / "hevc10.mp4", duration=1))
    assert v["pix_fmt"] == "yuv420p10le"
    assert v["color_transfer"] == "bt709"


def test_webm_anamorphic_and_extreme_sizes(media: Path) -> None:
    webm = measure.ffprobe_json(gen.make_webm(media / "cam.webm", duration=1))
    assert [s["codec_name"] for s in webm["streams"]] == ["vp9", "opus"]
    assert _video(gen.make_anamorphic(media / "pal.mp4", duration=1))["sample_aspect_ratio"] == (
        "16:15"
    )
    for w, h in [(160, 120), (3840, 2160)]:
        v = _video(gen.make_clip(media / f"{w}.mp4", duration=1, size=(w, h), audio=None))
        assert (v["width"], v["height"]) == (w, h)


@pytest.mark.parametrize("suffix", [".mov", ".mp4", ".mkv"])
def test_location_tags_are_really_in_the_file(media: Path, suffix: str) -> None:
    found = measure.tags(gen.make_with_location_tags(media / f"gps{suffix}", duration=1))
    for key, value in gen.LOCATION_TAGS.items():
        assert key.lower() in found
        if key != "creation_time":  # normalized to microseconds by some muxers
            assert found[key.lower()] == value
    assert any("location" in k and k[0].isdigit() for k in found) or suffix != ".mkv"


def test_huge_y4m_claims_100000_pixels_wide(media: Path) -> None:
    path = gen.make_huge_dimensions(media / "huge.y4m")
    assert path.stat().st_size < 1000
    v = _video(path)
    assert (v["width"], v["height"]) == (100_000, 2_000)


def test_unreadable_inputs_fail_ffprobe(media: Path, sync_clip: Path) -> None:
    for path in [
        gen.make_empty(media / "empty.mp4"),
        gen.make_text_as_mp4(media / "text.mp4"),
        gen.make_truncated(media / "truncated.mp4", sync_clip),
    ]:
        with pytest.raises(FFmpegError):
            measure.ffprobe_json(path)


def test_damaged_inputs_probe_but_fail_to_decode(
    media: Path, sync_clip: Path, faststart_clip: Path
) -> None:
    cut = gen.make_truncated_faststart(media / "cut.mp4", faststart_clip)
    assert float(measure.ffprobe_json(cut)["format"]["duration"]) == pytest.approx(4, abs=0.1)
    assert _decode_errors(cut)
    flipped = gen.make_bitflipped(media / "flipped.mp4", sync_clip, seed=3)
    assert flipped.stat().st_size == sync_clip.stat().st_size
    assert _decode_errors(flipped)
    assert not _decode_errors(sync_clip)


def test_odd_but_readable_inputs(media: Path) -> None:
    image = measure.ffprobe_json(gen.make_image_as_mp4(media / "still.mp4"))
    assert image["format"]["format_name"] == "png_pipe"
    audio = measure.ffprobe_json(gen.make_audio_only(media / "voice.m4a", duration=2))
    assert [s["codec_type"] for s in audio["streams"]] == ["audio"]
    short = measure.ffprobe_json(gen.make_too_short(media / "short.mp4"))
    assert float(short["format"]["duration"]) == pytest.approx(0.5, abs=0.05)


def test_fuzz_helpers_change_or_shorten() -> None:
    data = bytes(range(256)) * 40
    for seed in range(50):
        rng = random.Random(seed)
        bad = gen.corrupt_bytes(data, rng)
        assert len(bad) == len(data) and bad != data
        assert sum(a != b for a, b in zip(bad, data, strict=True)) <= len(data) // 100
        cut = gen.truncate_bytes(data, rng)
        assert len(cut) < len(data) and data.startswith(cut)
    assert gen.corrupt_bytes(b"", random.Random(0)) == b""
    assert gen.truncate_bytes(b"", random.Random(0)) == b""
