"""Quality flags, measured on real rendered clips whose problems are known."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from processing import quality
from processing.config import load_config
from processing.pipeline import process_batch
from processing.storage import LocalSource
from tests import reviewgen as rg

#: The sample step: a stretch measured at 2 frames a second is off by at most this.
STEP = 1 / quality.SAMPLE_FPS


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> rg.ReviewBatch:
    return rg.review_batch(tmp_path_factory)


def _raised(batch: rg.ReviewBatch, name: str) -> set[str]:
    return set(quality.raised(batch.entries[name].flags))


def _value(batch: rg.ReviewBatch, name: str, flag: str) -> float:
    flags = batch.entries[name].flags
    assert flags is not None, f"{name} has no flags"
    return float(flags[flag]["value"])


@pytest.mark.parametrize(("name", "expected"), [(n, b[2]) for n, b in rg.BAD.items()])
def test_a_problem_clip_raises_its_flag_and_no_other(
    batch: rg.ReviewBatch, name: str, expected: set[str]
) -> None:
    # None of these has a face, so no_face is expected too.
    assert _raised(batch, name) == expected | {"no_face"}, batch.entries[name].flags


@pytest.mark.parametrize(("name", "expected"), [(n, c[2]) for n, c in rg.CLEAN.items()])
def test_a_clean_clip_raises_nothing_but_no_face(
    batch: rg.ReviewBatch, name: str, expected: set[str]
) -> None:
    # testsrc2 and the fractal have no face; clean-bars.mp4 also has a copy in the batch.
    assert _raised(batch, name) == expected | {"no_face"}, batch.entries[name].flags


def test_the_face_clip_raises_no_flag_at_all(batch: rg.ReviewBatch) -> None:
    assert _raised(batch, "face.mp4") == set(), batch.entries["face.mp4"].flags
    assert _value(batch, "face.mp4", "no_face") >= 0.75  # a face in 3 of 4 looks or more


def test_measured_values_match_the_ground_truth(batch: rg.ReviewBatch) -> None:
    q = batch.cfg.quality
    black = _value(batch, "black.mp4", "black")
    assert abs(black - (rg.BLACK_TO - rg.BLACK_FROM)) <= STEP + 0.01
    # A held frame: every pair of samples is unchanged, so the whole clip less one step.
    assert abs(_value(batch, "frozen.mp4", "frozen") - (rg.DURATION - STEP)) <= 0.01
    assert _value(batch, "silent.mp4", "silent") == pytest.approx(1.0, abs=0.01)
    assert _value(batch, "dark.mp4", "dark") < q.dark_luma * 0.75
    assert _value(batch, "blurry.mp4", "blurry") < q.blurry_sharpness / 4
    for name in rg.CLEAN:
        # testsrc2 and the fractal average mid-grey; their edges are hard.
        assert 0.35 < _value(batch, name, "dark") < 0.65
        assert _value(batch, name, "blurry") > q.blurry_sharpness * 4
        assert _value(batch, name, "silent") == 0.0
        assert _value(batch, name, "frozen") <= STEP
        assert _value(batch, name, "black") == 0.0


def test_captions_do_not_hide_a_black_or_dark_picture(batch: rg.ReviewBatch) -> None:
    """The clips carry a white-on-crimson hashtag and a name box over the black and dark
    picture; measured over the whole frame they would lift it out of "black"."""
    for name in ("black.mp4", "dark.mp4"):
        assert batch.entries[name].name  # a name caption is burned in
    rows, cols = quality.analysis_region((1920, 1080), None, (640, 360))
    assert rows.start >= quality.CAPTION_TOP * 360 and rows.stop <= quality.CAPTION_BOTTOM * 360
    # Portrait: only the clip's own picture, not the blurred fill beside it.
    rows, cols = quality.analysis_region((1920, 1080), (608, 1080), (640, 360))
    assert cols.start >= (1920 - 608) / 2 / 3 and cols.stop <= (1920 + 608) / 2 / 3


def test_only_the_copy_and_its_original_are_duplicates(batch: rg.ReviewBatch) -> None:
    original, copy = batch.id("clean-bars.mp4"), batch.id(rg.COPY)
    flags = {n: e.flags for n, e in batch.entries.items() if e.flags}
    dupes = {n for n, f in flags.items() if f["duplicate"]["raised"]}
    assert dupes == {"clean-bars.mp4", rg.COPY}
    assert flags["clean-bars.mp4"]["duplicate"]["of"] == [copy]
    assert flags[rg.COPY]["duplicate"]["of"] == [original]
    assert flags[rg.COPY]["duplicate"]["value"] >= 0.8


def test_flags_are_in_the_report_and_the_cached_record(batch: rg.ReviewBatch) -> None:
    report = json.loads((batch.out / "report.json").read_text("utf-8"))
    for sub in report["submissions"]:
        if sub["status"] == "rejected":
            assert sub["flags"] is None
            continue
        assert set(sub["flags"]) == set(quality.RULES)
        for f in sub["flags"].values():
            assert set(f) >= {"raised", "value", "threshold"}
        record = json.loads((batch.out / "clips" / f"{sub['id']}.json").read_text("utf-8"))
        # One hash per non-black sample (black frames look alike in every clip).
        expected = 2 if sub["source"] == "black.mp4" else int(rg.DURATION * quality.SAMPLE_FPS)
        assert len(record["quality"]["fingerprint"]) == expected
        assert record["flags"]["dark"] == sub["flags"]["dark"]


def test_measuring_takes_well_under_the_clip_length(batch: rg.ReviewBatch) -> None:
    """About 0.3 s of CPU per second of clip; the bound leaves room for a loaded machine."""
    seconds = [e.quality["seconds"] for e in batch.entries.values() if e.quality]
    per_clip_second = np.array(seconds) / rg.DURATION
    assert per_clip_second.max() < 1.5, seconds


def test_a_new_threshold_reflags_cached_clips_without_decoding(
    batch: rg.ReviewBatch, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    shutil.copytree(batch.out, out)
    strict = load_config(
        overrides={"output": {"x264_preset": "superfast"}, "quality": {"dark_luma": 0.9}}
    )
    entries = process_batch(LocalSource(batch.uploads, strict.ingest.ignore), out, strict)
    for e in entries:
        if e.status == "rejected":
            continue
        assert e.cached
        assert e.flags is not None and e.flags["dark"]["raised"]
        assert e.flags["dark"]["threshold"] == 0.9
        # Same measurement (not taken again): same value, same time it took.
        before = batch.entries[e.source]
        assert before.flags is not None and before.quality is not None
        assert e.flags["dark"]["value"] == before.flags["dark"]["value"]
        assert e.quality == before.quality


def test_a_trimmed_copy_matches_and_unrelated_hashes_do_not() -> None:
    rng = np.random.default_rng(3)
    original = [int(x) for x in rng.integers(0, 2**63, 20)]
    trimmed = [h ^ (1 << 5) ^ (1 << 40) for h in original[5:12]]  # 2 bits off, 7 frames
    unrelated = [int(x) for x in rng.integers(0, 2**63, 20)]
    found = quality.duplicates(
        {"a": original, "b": trimmed, "c": unrelated, "d": []}, load_config().quality
    )
    assert found["a"] == (1.0, ["b"]) and found["b"] == (1.0, ["a"])
    assert found["c"][1] == [] and found["c"][0] < 0.2
    assert found["d"] == (0.0, [])


def test_phash_survives_scaling_and_brightness_but_not_mirroring() -> None:
    rng = np.random.default_rng(1)
    img = (rng.random((18, 32)) * 255).astype(np.uint8)
    big = np.kron(img, np.ones((20, 20), np.uint8))  # 360x640, blocky but the same picture
    h = quality.phash(big)
    brighter = np.clip(big.astype(int) + 30, 0, 255).astype(np.uint8)
    assert bin(h ^ quality.phash(brighter)).count("1") <= 4
    assert bin(h ^ quality.phash(big[:, ::-1].copy())).count("1") >= 20
