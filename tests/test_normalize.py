"""Every accepted clip conforms: measured with ffprobe, ebur128 and its frames."""

from __future__ import annotations

import hashlib
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from mediagen import mp4_boxes
from processing.report import Entry
from processing.verify import ALLOWED_TAGS
from tests import measure
from tests.conftest import BATCH_MAX_DURATION, GOOD, HOSTILE_NAME, Batch

GOOD_KEYS = [name for name, _, _ in GOOD]
TARGET_I, TARGET_TP = -16.0, -1.5
LOUDNESS_TOLERANCE_LU = 1.0
ONE_FRAME = 1 / 30
#: Clips generated with no audio at all.
SILENT = {"silent-video.mp4"}


def _input_duration(batch: Batch, key: str) -> float:
    return float(measure.ffprobe_json(batch.uploads / key)["format"]["duration"])


@pytest.mark.parametrize("key", GOOD_KEYS)
def test_accepted_clip_conforms_to_the_output_spec(batch: Batch, key: str) -> None:
    clip = batch.clip(key)
    data = measure.ffprobe_json(clip)
    video = [s for s in data["streams"] if s["codec_type"] == "video"]
    audio = [s for s in data["streams"] if s["codec_type"] == "audio"]
    assert len(video) == 1 and len(audio) == 1, "exactly one video and one audio stream"
    v, a = video[0], audio[0]
    assert (v["codec_name"], v["profile"], v["pix_fmt"]) == ("h264", "High", "yuv420p")
    assert (v["width"], v["height"]) == (1920, 1080)
    assert v.get("sample_aspect_ratio", "1:1") in ("1:1", "0:1")
    assert Fraction(v["avg_frame_rate"]) == 30 and Fraction(v["r_frame_rate"]) == 30
    assert (v.get("color_space"), v.get("color_transfer"), v.get("color_primaries")) == (
        "bt709", "bt709", "bt709",
    )  # fmt: skip
    assert not v.get("side_data_list"), "no display matrix or HDR side data left"
    assert (a["codec_name"], a["profile"]) == ("aac", "LC")
    assert (int(a["sample_rate"]), a["channels"], a["channel_layout"]) == (48000, 2, "stereo")

    expected = min(_input_duration(batch, key), BATCH_MAX_DURATION)
    assert abs(float(data["format"]["duration"]) - expected) <= 2 * ONE_FRAME + 0.03
    video_end, audio_end = measure.stream_end_times(clip)
    assert video_end is not None and audio_end is not None
    assert abs(video_end - audio_end) <= ONE_FRAME, "audio and video end together"
    frames = measure.frame_count(clip)
    assert abs(frames - round(float(v["duration"]) * 30)) <= 1, "constant 30 fps throughout"


@pytest.mark.parametrize("key", GOOD_KEYS)
def test_moov_before_media_data_for_fast_start(batch: Batch, key: str) -> None:
    names = [name for name, _, _ in mp4_boxes(batch.clip(key).read_bytes())]
    assert names.index("moov") < names.index("mdat")


@pytest.mark.parametrize("key", [k for k in GOOD_KEYS if k not in SILENT])
def test_loudness_lands_on_target(batch: Batch, key: str) -> None:
    integrated, true_peak = measure.loudness(batch.clip(key))
    assert abs(integrated - TARGET_I) <= LOUDNESS_TOLERANCE_LU, f"{integrated} LUFS"
    assert true_peak <= TARGET_TP, f"true peak {true_peak} dBTP"
    entry = batch.entries[key]
    assert entry.output_i == pytest.approx(integrated, abs=0.2)
    assert entry.output_tp == pytest.approx(true_peak, abs=0.2)


def test_short_clip_lands_on_target_too(batch: Batch) -> None:
    """loudnorm alone misses on clips under ~3 s; the input here is 12 LU too quiet."""
    integrated, true_peak = measure.loudness(batch.clip("two-seconds.mp4"))
    assert abs(integrated - TARGET_I) <= 0.5
    assert true_peak <= TARGET_TP


def test_missing_audio_becomes_digital_silence(batch: Batch) -> None:
    integrated, _ = measure.loudness(batch.clip("silent-video.mp4"))
    assert integrated <= -70
    assert "silence added" in " ".join(batch.entries["silent-video.mp4"].warnings)


@pytest.mark.parametrize("key", GOOD_KEYS)
def test_no_identifying_metadata_survives(batch: Batch, key: str) -> None:
    found = {_bare(k): v for k, v in measure.tags(batch.clip(key)).items()}
    unexpected = {
        k: v for k, v in found.items()
        if k not in ALLOWED_TAGS or (ALLOWED_TAGS[k] is not None and v not in ALLOWED_TAGS[k])
    }  # fmt: skip
    assert unexpected == {}
    assert data_has_no_chapters(batch, key)


def _bare(key: str) -> str:
    """``"0:handler_name"`` → ``"handler_name"`` (measure.tags prefixes stream tags)."""
    head, sep, rest = key.partition(":")
    return rest if sep and head.isdigit() else key


def data_has_no_chapters(batch: Batch, key: str) -> bool:
    return measure.ffprobe_json(batch.clip(key)).get("chapters", []) == []


def test_location_and_device_tags_were_really_in_the_input(batch: Batch) -> None:
    """Guards the scrub test above: the input must carry what the output must not."""
    found = measure.tags(batch.uploads / "located.mov")
    joined = " ".join(f"{k}={v}" for k, v in found.items()).lower()
    assert "iso6709" in joined and "+48.8577" in joined
    assert "iphone" in joined and "apple" in joined
    out = " ".join(f"{k}={v}" for k, v in measure.tags(batch.clip("located.mov")).items())
    assert "48.8577" not in out and "iPhone" not in out and "Apple" not in out


def test_vfr_input_keeps_audio_and_video_in_sync(batch: Batch) -> None:
    assert abs(measure.av_offset(batch.uploads / "vfr.mp4")) <= ONE_FRAME, "fixture is in sync"
    assert abs(measure.av_offset(batch.clip("vfr.mp4"))) <= ONE_FRAME


def test_sync_survives_normalisation_of_a_constant_rate_clip(batch: Batch) -> None:
    assert abs(measure.av_offset(batch.clip("landscape.mp4"))) <= ONE_FRAME


def _colour_mask(frame: np.ndarray, channel: int) -> np.ndarray:
    f = frame.astype(np.int16)
    others = [c for c in range(3) if c != channel]
    return (f[..., channel] > 150) & (f[..., others[0]] < 90) & (f[..., others[1]] < 90)


def _run_length(row: np.ndarray, at: int) -> int:
    """Length of the run of True values in ``row`` that contains index ``at``."""
    left = at
    while left > 0 and row[left - 1]:
        left -= 1
    right = at
    while right < row.size - 1 and row[right + 1]:
        right += 1
    return right - left + 1


def _luma(frame: np.ndarray) -> np.ndarray:
    f = frame.astype(np.float32)
    return 0.2126 * f[..., 0] + 0.7152 * f[..., 1] + 0.0722 * f[..., 2]


def test_rotation_flag_is_honoured_and_portrait_fills_with_blur(batch: Batch) -> None:
    frame = measure.frame_at(batch.clip("portrait.mp4"), 1.0)
    h, w, _ = frame.shape
    # A portrait 9:16 clip in a 16:9 frame is 1080 high and ~608 wide, centred.
    red_rows = np.where(_colour_mask(frame, 0)[:, w // 2])[0]
    blue_rows = np.where(_colour_mask(frame, 2)[:, w // 2])[0]
    assert red_rows.size and blue_rows.size
    assert red_rows.mean() < h * 0.2, "red band on top: the picture was turned upright"
    assert blue_rows.mean() > h * 0.8, "blue band at the bottom"
    # The sides are a blurred copy of the clip, not black bars.
    side = frame[:, : w // 5].astype(np.float32)
    assert side.mean() > 20, "sides are filled, not black"
    fg_width = _run_length(_colour_mask(frame, 0)[int(red_rows.mean())], w // 2)
    assert 560 <= fg_width <= 640, f"foreground is portrait-shaped ({fg_width} px wide)"
    # Blurred means smooth: far less local detail than the sharp foreground.
    detail_side = np.abs(np.diff(side[..., 1], axis=1)).mean()
    fg = frame[:, w // 2 - 250 : w // 2 + 250].astype(np.float32)
    detail_fg = np.abs(np.diff(fg[..., 1], axis=1)).mean()
    assert detail_side < detail_fg / 2.5


def test_anamorphic_pixels_become_square(batch: Batch) -> None:
    src = measure.ffprobe_json(batch.uploads / "anamorphic.mp4")["streams"][0]
    sar = Fraction(src["sample_aspect_ratio"].replace(":", "/"))
    assert sar != 1, "fixture has non-square pixels"
    dar = Fraction(src["width"], src["height"]) * sar
    frame = measure.frame_at(batch.clip("anamorphic.mp4"), 1.0)
    # The foreground is centred; its left edge against the blurred fill is the
    # first strong horizontal gradient (middle rows: captions are top and bottom).
    middle = frame[300:780].astype(np.float32).mean(axis=2)
    gradient = np.abs(np.diff(middle, axis=1)).mean(axis=0)
    left = int(np.argmax(gradient > 8))
    width = 2 * (frame.shape[1] // 2 - left)
    assert abs(width / 1080 - float(dar)) < 0.03


@pytest.mark.parametrize("key", ["hdr-pq.mp4", "hdr-hlg.mp4"])
def test_hdr_is_tonemapped_to_sdr_bt709(batch: Batch, key: str) -> None:
    src = measure.ffprobe_json(batch.uploads / key)["streams"][0]
    assert src["color_transfer"] in ("smpte2084", "arib-std-b67"), "fixture is HDR"
    frame = measure.frame_at(batch.clip(key), 1.0)
    luma = _luma(frame)
    # Tonemapped, not clipped or washed out: mid-level average, few crushed or
    # blown pixels, and colours that stay saturated (HDR read as SDR looks grey).
    assert 40 < luma.mean() < 200
    assert (luma >= 250).mean() < 0.05 and (luma <= 5).mean() < 0.05
    chroma = frame.astype(np.float32).max(axis=2) - frame.astype(np.float32).min(axis=2)
    assert chroma.mean() > 80, f"mean saturation {chroma.mean():.0f}"


def test_trimmed_to_maximum_and_said_so(batch: Batch) -> None:
    entry = batch.entries["long.mp4"]
    assert entry.duration == pytest.approx(BATCH_MAX_DURATION, abs=ONE_FRAME)
    assert any("trimmed" in w for w in entry.warnings)


def test_hostile_file_name_is_processed_as_a_file(batch: Batch) -> None:
    """A name starting with ``-y`` and holding quotes and a newline is that file's name."""
    entry = batch.entries[HOSTILE_NAME]
    assert_processed_as_the_file(entry, batch.uploads / HOSTILE_NAME, batch.out)


def assert_processed_as_the_file(entry: Entry, upload: Path, out: Path) -> None:
    """``entry`` is ``upload`` rendered: its id, its length, a clip that plays it."""
    assert entry.status in ("accepted", "excluded"), entry.reason
    assert entry.id == hashlib.sha256(upload.read_bytes()).hexdigest()[:16]
    length = float(measure.ffprobe_json(upload)["format"]["duration"])
    clip = out / str(entry.output)
    assert clip.parent == out / "clips"
    assert abs(float(measure.ffprobe_json(clip)["format"]["duration"]) - length) <= 2 * ONE_FRAME
    assert abs(measure.frame_count(clip) - round(length * 30)) <= 1
