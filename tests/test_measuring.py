"""The one-pass measurements the compilation's checks rely on, against ffmpeg's own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from processing import runner
from processing.compilation_checks import segment_loudness
from processing.conform import recorded_signature, signature
from processing.loudness import ABSOLUTE_GATE, windows_loudness

#: (seconds, source) of each part of the programme: a tone, louder noise, silence, speech-like.
PARTS = [
    (3.0, "sine=f=440:r=48000,volume=-30dB"),
    (4.0, "anoisesrc=c=pink:r=48000:a=0.2"),
    (2.0, "anullsrc=r=48000:cl=mono"),
    (3.5, "aevalsrc='0.3*sin(2*PI*(150+40*sin(2*PI*0.3*t))*t)*(0.6+0.4*sin(2*PI*3.5*t))':s=48000"),
]


@pytest.fixture(scope="module")
def programme(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[float, float]]]:
    path = tmp_path_factory.mktemp("loud") / "programme.m4a"
    args: list[str] = ["-v", "error"]
    for seconds, src in PARTS:
        args += ["-f", "lavfi", "-t", f"{seconds}", "-i", src]
    chain = "".join(f"[{i}:a]" for i in range(len(PARTS)))
    args += ["-filter_complex", f"{chain}concat=n={len(PARTS)}:v=0:a=1,pan=stereo|c0=c0|c1=c0"]
    args += ["-c:a", "aac", "-b:a", "192k", "-y", runner.input_path(path)]
    runner.run(args, timeout=120)
    windows, start = [], 0.0
    for seconds, _ in PARTS:
        windows.append((start, seconds))
        start += seconds
    return path, windows


def test_window_loudness_in_one_pass_matches_measuring_each_window(
    programme: tuple[Path, list[tuple[float, float]]],
) -> None:
    path, windows = programme
    one_pass = windows_loudness(path, windows)
    each = [segment_loudness(path, start, seconds) for start, seconds in windows]
    assert one_pass[2] == ABSOLUTE_GATE and each[2] <= ABSOLUTE_GATE  # the silence
    for got, want in zip(one_pass, each, strict=True):
        assert abs(got - want) <= 0.3, (one_pass, each)
    # The parts really differ, so matching is not luck.
    assert max(one_pass) - min(v for v in one_pass if v > ABSOLUTE_GATE) > 6


def test_a_recorded_signature_is_trusted_only_while_the_file_is_unchanged(
    tmp_path: Path,
) -> None:
    clip = tmp_path / "clip.mp4"
    runner.run(
        ["-v", "error", "-f", "lavfi", "-i", "testsrc2=s=320x180:r=30:d=1",
         "-f", "lavfi", "-i", "sine=d=1:r=48000", "-c:v", "libx264", "-preset", "ultrafast",
         "-c:a", "aac", "-shortest", "-y", runner.input_path(clip)],
        timeout=60,
    )  # fmt: skip
    probed = signature(clip)
    assert probed["video"]["width"] == 320 and probed["audio"]["sample_rate"] == "48000"
    st = clip.stat()
    marker = {**probed, "video": {**probed["video"], "width": 4096}}
    record = {"signature": marker, "file": [st.st_size, st.st_mtime_ns]}
    assert recorded_signature(clip, record) == marker  # unchanged: no ffprobe needed
    os.utime(clip, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert recorded_signature(clip, record) == probed  # touched since: probed again
    assert recorded_signature(clip, None) == probed
