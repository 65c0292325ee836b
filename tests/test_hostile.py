"""Hostile and broken uploads the main batch (tests/conftest.py) does not already hold.

A folder of them, mixed with good clips, is processed once: every good clip is
accepted and conforms, every bad one has its reason, no upload changes. Then a
Hypothesis fuzz test damages valid files at random and shows the batch never
crashes and never accepts a clip that fails the output checks.
"""

from __future__ import annotations

import json
import os
import random
import struct
import tempfile
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mediagen as mg
from processing import runner
from processing.config import Config, load_config
from processing.pipeline import process_batch
from processing.probe import probe
from processing.report import Entry
from processing.storage import LocalSource
from processing.verify import scrub_problems
from tests import measure
from tests.conftest import tree_hashes

#: Inputs are 16:9 too: below ~384x216, a background fill fails (boxblur's chroma
#: radius 6 is too big for the 1/8-size plane), a limit of tiny outputs only.
OUTPUT = {"width": 320, "height": 180}
#: Undecodable bytes in a file name (Latin-1 "é" and a lone 0xFF), as a Windows zip leaves them.
NON_UTF8 = os.fsdecode(b"caf\xe9 \xff clip.mp4")
#: If this name were read as options, ffmpeg would render an endless test pattern instead.
DASHED = "-f lavfi -i testsrc.mp4"
TEN_HOURS = 10 * 3600.0
#: Every rejection code the pipeline gives (a fuzzed file must get one of them).
KNOWN_CODES = {
    "empty", "not_media", "not_video", "truncated", "corrupt", "no_video", "bad_frame_size",
    "too_short", "too_long", "too_large", "timeout", "encode_failed", "output_check_failed",
}  # fmt: skip


def claim_duration(src: Path, dst: Path, seconds: float) -> Path:
    """Copy an MP4, rewriting its movie header (``mvhd``) to claim ``seconds``.

    The media data is untouched: the file really lasts as long as before.
    """
    data = bytearray(src.read_bytes())
    at = data.find(b"mvhd")
    if at < 0 or data[at + 4] != 0:
        raise ValueError("needs an MP4 with a version-0 mvhd box")
    timescale = struct.unpack(">I", data[at + 16 : at + 20])[0]
    data[at + 20 : at + 24] = struct.pack(">I", round(seconds * timescale))
    dst.write_bytes(bytes(data))
    return dst


@dataclass(frozen=True)
class Hostile:
    uploads: Path
    out: Path
    cfg: Config
    entries: dict[str, Entry]
    hashes_before: dict[str, str]
    seconds: dict[str, float]
    """Real length of each good upload."""


#: Good uploads: name → (seconds, sidecar or None).
GOOD = {
    "plain.mp4": (2.0, {"consent": True}),
    NON_UTF8: (2.2, {"consent": True, "name": "Zoë"}),
    DASHED: (2.5, {"consent": True}),
    "big-sidecar.mp4": (1.5, None),  # sidecar written below: valid JSON, over the size limit
}
BAD = {"ten-hours.mp4": "too_long", "too-big.mp4": "too_large"}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Hostile:
    src = tmp_path_factory.mktemp("hostile")
    for n, (name, (seconds, sidecar)) in enumerate(GOOD.items()):
        mg.make_clip(src / name, duration=seconds, size=(320, 180), lufs=-20 - n)
        if sidecar is not None:
            (src / name).with_suffix(".json").write_text(json.dumps(sidecar), "utf-8")
    huge = {"consent": True, "name": "Should Not Show", "message": "x" * 70_000}
    (src / "big-sidecar.json").write_text(json.dumps(huge), "utf-8")
    claim_duration(src / "plain.mp4", src / "ten-hours.mp4", TEN_HOURS)
    limit = max((src / name).stat().st_size for name in [*GOOD, "ten-hours.mp4"]) + 1
    mg.make_clip(src / "too-big.mp4", duration=3, size=(640, 480), crf=4)
    assert (src / "too-big.mp4").stat().st_size > limit
    cfg = load_config(overrides={"output": OUTPUT, "limits": {"max_file_bytes": limit}})
    before = tree_hashes(src)
    out = tmp_path_factory.mktemp("out")
    entries = process_batch(LocalSource(src, cfg.ingest.ignore), out, cfg)
    seconds = {name: s for name, (s, _) in GOOD.items()}
    return Hostile(src, out, cfg, {e.source: e for e in entries}, before, seconds)


def _key(name: str) -> str:
    """The report's key for an upload: its name as valid UTF-8 (U+FFFD for bad bytes)."""
    return os.fsencode(name).decode("utf-8", "replace")


@pytest.mark.parametrize("name", list(GOOD))
def test_good_uploads_are_rendered_and_conform(hostile: Hostile, name: str) -> None:
    entry = hostile.entries[_key(name)]
    assert entry.output, f"{entry.status} {entry.code}: {entry.reason}"
    clip = hostile.out / entry.output
    data = measure.ffprobe_json(clip)
    v, a = data["streams"]
    assert (v["codec_name"], v["profile"], v["pix_fmt"]) == ("h264", "High", "yuv420p")
    assert (v["width"], v["height"], Fraction(v["avg_frame_rate"])) == (320, 180, 30)
    assert (a["codec_name"], int(a["sample_rate"]), a["channels"]) == ("aac", 48000, 2)
    # The clip is the file's own content: read as options, the name would have
    # produced an endless test pattern, trimmed to limits.max_duration.
    assert abs(float(data["format"]["duration"]) - hostile.seconds[name]) < 0.1
    integrated, _ = measure.loudness(clip)
    assert abs(integrated + 16) <= 1.0
    assert scrub_problems(probe(clip)) == []


def test_a_non_utf8_name_is_reported_readably(hostile: Hostile) -> None:
    raw = (hostile.out / "report.json").read_bytes()
    report = json.loads(raw.decode("utf-8"))  # strict: the report is valid UTF-8
    sources = [s["source"] for s in report["submissions"]]
    assert "caf\ufffd \ufffd clip.mp4" in sources
    entry = hostile.entries[_key(NON_UTF8)]
    assert (entry.status, entry.name) == ("accepted", "Zoë"), "its sidecar was paired"


def test_an_oversized_sidecar_is_ignored_with_a_warning(hostile: Hostile) -> None:
    entry = hostile.entries["big-sidecar.mp4"]
    assert entry.output and any("over the 65536-byte limit" in w for w in entry.warnings)
    assert entry.name is None and entry.consent is None


def test_a_file_claiming_ten_hours_is_refused_before_decoding(hostile: Hostile) -> None:
    assert probe(hostile.uploads / "ten-hours.mp4").duration == TEN_HOURS
    entry = hostile.entries["ten-hours.mp4"]
    assert (entry.status, entry.code) == ("rejected", "too_long")
    assert "10:00:00" in (entry.reason or "") and "without decoding" in (entry.reason or "")
    log = (hostile.out / "logs" / f"{entry.id}.log").read_text("utf-8")
    assert "$ ffmpeg" not in log, "nothing was decoded"


def test_a_file_over_the_size_limit_is_refused_unread(hostile: Hostile) -> None:
    entry = hostile.entries["too-big.mp4"]
    assert (entry.status, entry.code) == ("rejected", "too_large")
    assert "limits.max_file_bytes" in (entry.reason or "")


@pytest.mark.parametrize(("name", "code"), list(BAD.items()))
def test_bad_uploads_leave_nothing_behind(hostile: Hostile, name: str, code: str) -> None:
    entry = hostile.entries[name]
    assert entry.code == code and entry.output is None
    assert not list((hostile.out / "clips").glob(f"{entry.id}.*"))


def test_no_upload_changed_and_no_partial_file_is_left(hostile: Hostile) -> None:
    assert tree_hashes(hostile.uploads) == hostile.hashes_before
    assert [p for p in hostile.out.rglob("*") if p.name.endswith(".part")] == []
    report = json.loads((hostile.out / "report.json").read_text("utf-8"))
    assert len(report["submissions"]) == len(GOOD) + len(BAD)


# --------------------------------------------------------------------------- fuzz

FUZZ_CFG = {"output": OUTPUT, "limits": {"max_duration": 3.0}}


@pytest.fixture(scope="module")
def fuzz_seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small valid uploads to damage: MP4 (H.264/AAC, index first) and WebM (VP9/Opus)."""
    root = tmp_path_factory.mktemp("seeds")
    return {
        "mp4": mg.make_clip(root / "s.mp4", duration=1.5, size=(320, 180), faststart=True),
        "webm": mg.make_webm(root / "s.webm", duration=1.5, size=(320, 180)),
    }


def _decode_errors(path: Path) -> str:
    _, err = runner.run(["-v", "error", "-i", runner.input_path(path), "-f", "null", "-"])
    return err.strip()


def _assert_conforms(clip: Path, entry: Entry, cfg: Config) -> None:
    """The output checks, made here independently of the pipeline's own."""
    data = measure.ffprobe_json(clip)
    kinds = [(s["codec_type"], s["codec_name"]) for s in data["streams"]]
    assert kinds == [("video", "h264"), ("audio", "aac")]
    v = data["streams"][0]
    assert (v["width"], v["height"], v["pix_fmt"]) == (320, 180, "yuv420p")
    assert Fraction(v["avg_frame_rate"]) == cfg.output.fps
    assert entry.duration is not None
    assert abs(float(data["format"]["duration"]) - entry.duration) <= 2 / cfg.output.fps + 0.03
    frames = measure.frame_count(clip)
    assert abs(frames - round(entry.duration * cfg.output.fps)) <= 1
    assert _decode_errors(clip) == ""
    assert scrub_problems(probe(clip)) == []


@pytest.mark.slow
@settings(
    max_examples=15,
    deadline=None,
    database=None,
    derandomize=True,  # the same files every run; raise max_examples to explore more
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    kind=st.sampled_from(["mp4", "webm"]),
    damage=st.sampled_from(["corrupt", "truncate", "append"]),
    rng=st.randoms(use_true_random=False),
)
def test_damaged_uploads_never_crash_the_batch_or_pass_unchecked(
    fuzz_seeds: dict[str, Path], kind: str, damage: str, rng: random.Random
) -> None:
    original = fuzz_seeds[kind].read_bytes()
    if damage == "corrupt":
        data = mg.corrupt_bytes(original, rng, max_count=rng.choice([1, 8, 64, 512]))
    elif damage == "truncate":
        data = mg.truncate_bytes(original, rng)
    else:  # a resumed upload that wrote junk after the end
        data = original + rng.randbytes(rng.randrange(1, 65536))
    cfg = load_config(overrides=FUZZ_CFG)
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        src, out = Path(tmp) / "in", Path(tmp) / "out"
        src.mkdir()
        (src / f"upload.{kind}").write_bytes(data)
        started = time.monotonic()
        entries = process_batch(LocalSource(src), out, cfg)
        assert time.monotonic() - started < 120
        (entry,) = entries
        report = json.loads((out / "report.json").read_text("utf-8"))
        assert [s["id"] for s in report["submissions"]] == [entry.id]
        assert [p for p in out.rglob("*") if p.name.endswith(".part")] == []
        if entry.status == "rejected":
            assert entry.code in KNOWN_CODES, entry.code
            assert entry.reason and entry.reason[0].isupper()
            assert not list((out / "clips").glob("*.mp4"))
        else:
            assert entry.output and entry.scrub_check == "passed"
            _assert_conforms(out / entry.output, entry, cfg)
