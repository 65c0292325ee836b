"""The campaign's state under re-runs and concurrent runs, as users meet them.

Real ``reel`` processes run at once on one output folder; encodes are counted
by an ffmpeg shim (``REEL_FFMPEG``, as the benchmark does); the published
files are read back. Clips are tiny: 2 s at 320x180, rendered at 640x360.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import mediagen as mg
from bench.common import is_encode, logged_commands, write_ffmpeg_shim
from flows.cli import main as reel
from processing import state
from processing.config import load_config
from processing.pipeline import process_batch
from processing.storage import LocalOutput, LocalSource
from tests import measure
from tests.test_captions import needs_tesseract, ocr

pytestmark = pytest.mark.slow

REEL = Path(sys.executable).with_name("reel")
SMALL_TOML = '[output]\nwidth = 640\nheight = 360\nx264_preset = "superfast"\n'
SMALL = {"output": {"width": 640, "height": 360, "x264_preset": "superfast"}}
#: testsrc (not testsrc2): no shape the face detector could take for a face.
NO_FACE = "testsrc=s={w}x{h}:r={fps}:d={d}"


def _clip(path: Path, sidecar: dict | None = None, *, lufs: float = -20, **kw: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    mg.make_clip(path, duration=2, size=(320, 180), lufs=lufs, **kw)  # type: ignore[arg-type]
    if sidecar is not None:
        path.with_suffix(".json").write_text(json.dumps(sidecar), "utf-8")
    return path


def _env(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """The environment of a ``reel`` child whose ffmpeg calls are logged, and the log."""
    log = tmp_path / "ffmpeg-calls.log"
    shim = write_ffmpeg_shim(tmp_path / "shim")
    return {**os.environ, "REEL_FFMPEG": str(shim), "REEL_BENCH_FFMPEG_LOG": str(log)}, log


def _start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(REEL), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _finish(proc: subprocess.Popen[str]) -> tuple[str, str]:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return out, err


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text("utf-8"))


def _wait_for_holder(out: Path, command: str, timeout: float = 120) -> None:
    """Wait until ``command`` holds ``out`` (its lock file names the holder)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if command in (out / ".work" / "lock").read_text("utf-8"):
                return
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{command} never took {out}")


def _detail(path: Path) -> float:
    """The steepest steps between neighbouring pixels above the captions (bar edges)."""
    frame = measure.frame_at(path, 1.0, size=(640, 360)).astype(np.float32)
    return float(np.percentile(np.abs(np.diff(frame[60:260, 40:600, 1], axis=1)), 99.5))


# ------------------------------------------------------------------ concurrent runs


def test_two_concurrent_process_runs_encode_each_clip_once(tmp_path: Path) -> None:
    src, out = tmp_path / "uploads", tmp_path / "out"
    for i in range(4):
        _clip(src / f"clip{i}.mp4", {"name": f"Supporter {i}", "consent": True}, lufs=-20 - i)
    config = tmp_path / "small.toml"
    config.write_text(SMALL_TOML, "utf-8")
    env, calls = _env(tmp_path)
    args = ("process", str(src), "--out", str(out), "--config", str(config), "-q")
    first, second = _start(*args, env=env), _start(*args, env=env)
    (_, err1), (_, err2) = _finish(first), _finish(second)
    encodes = [c for c in logged_commands(calls) if is_encode(c)]
    assert len(encodes) == 4, f"{len(encodes)} encodes for 4 clips"
    subs = _report(out)["submissions"]
    assert sorted(s["status"] for s in subs) == ["accepted"] * 4
    assert len({s["id"] for s in subs}) == 4
    # The run that waited said whom it waited for.
    waited = err1 + err2
    assert "is in use by" in waited and "reel process" in waited, waited


def test_a_run_that_cannot_get_the_output_refuses_with_one_line(tmp_path: Path) -> None:
    src, out = tmp_path / "uploads", tmp_path / "out"
    _clip(src / "clip.mp4")
    config = tmp_path / "impatient.toml"
    config.write_text(SMALL_TOML + "[orchestration]\nlock_wait_seconds = 1.0\n", "utf-8")
    with state.campaign_lock(LocalOutput(out), "the editors' test run"):
        result = subprocess.run(
            [str(REEL), "process", str(src), "--out", str(out), "--config", str(config), "-q"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("reel: error: ") and "Traceback" not in result.stderr
    assert f":{os.getpid()} (the editors' test run, since " in last, last
    assert not (out / "report.json").exists() and not (out / "clips").exists()


def test_a_clip_added_while_compile_runs_stays_in_the_report(tmp_path: Path) -> None:
    src, out = tmp_path / "uploads", tmp_path / "out"
    cfg = load_config(overrides=SMALL)
    for i in range(2):
        _clip(src / f"clip{i}.mp4", {"name": f"Supporter {i}", "consent": True}, lufs=-20 - i)
    process_batch(LocalSource(src), out, cfg)
    _clip(src / "late.mp4", {"name": "Late Supporter", "consent": True}, lufs=-26)
    config = tmp_path / "small.toml"
    config.write_text(SMALL_TOML, "utf-8")
    compiling = _start("compile", "--out", str(out), "--config", str(config))
    _wait_for_holder(out, "reel compile")
    adding = _start("process", str(src), "--out", str(out), "--config", str(config), "-q")
    _, added_err = _finish(adding)
    _finish(compiling)
    report = _report(out)
    sources = sorted(s["source"] for s in report["submissions"])
    assert sources == ["clip0.mp4", "clip1.mp4", "late.mp4"], sources
    assert "reel compile" in added_err, added_err  # it waited for the compilation
    page = (out / "review" / "index.html").read_text("utf-8")
    assert "Late Supporter" in page


def test_racing_runs_never_leave_anonymized_over_an_unblurred_clip(tmp_path: Path) -> None:
    """The same bytes, once plain and once with ``anonymize: true``, in two runs at once."""
    plain, hidden, out = tmp_path / "plain", tmp_path / "hidden", tmp_path / "out"
    person = {"name": "Plain Person", "consent": True}
    _clip(plain / "video.mp4", person, content=NO_FACE)
    hidden.mkdir()
    shutil.copyfile(plain / "video.mp4", hidden / "again.mp4")
    (hidden / "again.json").write_text(json.dumps({**person, "anonymize": True}), "utf-8")
    config = tmp_path / "small.toml"
    config.write_text(SMALL_TOML, "utf-8")
    runs = [
        _start("process", str(s), "--out", str(out), "--config", str(config), "-q")
        for s in (plain, hidden)
    ]
    for run in runs:
        _finish(run)
    (record_path,) = (out / "clips").glob("*.json")
    record = json.loads(record_path.read_text("utf-8"))
    clip = record_path.with_suffix(".mp4")
    assert state.record_matches_file(record, clip), "the record describes another file"
    sharp = _detail(plain / "video.mp4")
    assert sharp > 50, sharp
    if record["anonymize"]:
        assert _detail(clip) < 10, "a record says anonymized over a sharp clip"
    else:
        assert _detail(clip) > 25

    # A plain clip put in place under the anonymized record is never reused.
    cfg = load_config(overrides=SMALL)
    process_batch(LocalSource(hidden), out, cfg)
    anon_clip = clip.read_bytes()
    assert _detail(clip) < 10
    process_batch(LocalSource(plain), tmp_path / "plain-out", cfg)
    shutil.copyfile(next((tmp_path / "plain-out" / "clips").glob("*.mp4")), clip)
    (entry,) = process_batch(LocalSource(hidden), out, cfg)
    assert entry.anonymize and not entry.cached
    assert _detail(clip) < 10 and clip.read_bytes() != b""
    assert len(anon_clip) > 0


# ------------------------------------------------------------------ duplicates


@needs_tesseract
def test_same_bytes_twice_the_most_protective_request_wins(tmp_path: Path) -> None:
    src, out = tmp_path / "uploads", tmp_path / "out"
    _clip(src / "mine.mp4", {"name": "Zarema Real", "consent": True}, content=NO_FACE)
    shutil.copyfile(src / "mine.mp4", src / "please-hide-me.mp4")
    os.utime(src / "please-hide-me.mp4", (time.time() + 60, time.time() + 60))  # uploaded later
    (src / "please-hide-me.json").write_text(json.dumps({"anonymize": True}), "utf-8")
    cfg = load_config(overrides=SMALL)
    (entry,) = process_batch(LocalSource(src), out, cfg)
    assert entry.anonymize is True and entry.status == "accepted"
    report = _report(out)["submissions"][0]
    asked = {c["source"]: (c["name"], c["consent"], c["anonymize"]) for c in report["copies"]}
    assert asked == {
        "mine.mp4": ("Zarema Real", True, False),
        "please-hide-me.mp4": (None, None, True),
    }
    assert any("please-hide-me.mp4" in w for w in report["warnings"])
    frame = measure.frame_at(out / entry.output, 1.0, size=(1920, 1080))
    text = ocr(frame, (0, 870, 390, 1000), "eng", tmp_path)
    assert "Anonymous" in text and "Zarema" not in text, text
    reel(["compile", "--out", str(out)])
    published = _published_text(out)
    assert "Zarema" not in published and "Anonymous" in published
    page = (out / "review" / "index.html").read_text("utf-8")
    assert "Zarema" not in page and "please-hide-me" not in page and "Anonymous" in page

    # A later withdrawal by either copy takes the clip out of the next compilation.
    (src / "please-hide-me.json").write_text(json.dumps({"consent": False}), "utf-8")
    (entry,) = process_batch(LocalSource(src), out, cfg)
    assert (entry.status, entry.code) == ("excluded", "consent_withdrawn")
    assert entry.output is None and not list((out / "clips").glob(f"{entry.id}.*"))


def _published_text(out: Path) -> str:
    """Every text file of the compilation set (chapters, credits, SRT, VTT, manifest)."""
    folder = out / "compilation"
    files = [p for p in folder.rglob("*") if p.suffix in (".txt", ".srt", ".vtt", ".json")]
    assert any(p.suffix == ".srt" for p in files), "no subtitles published"
    assert files, "nothing published"
    return "\n".join(p.read_text("utf-8") for p in files)


# ------------------------------------------------------------------ editors' decisions


def test_a_rejection_survives_approve_all(
    prefect_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, out = tmp_path / "uploads", tmp_path / "out"
    for i in range(3):
        _clip(src / f"clip{i}.mp4", {"name": f"Supporter {i}", "consent": True}, lufs=-20 - i)
    _clip(src / "unsure.mp4", {"name": "Not Sure Yet"}, lufs=-25)  # no consent
    config = tmp_path / "small.toml"
    config.write_text(SMALL_TOML, "utf-8")
    entries = process_batch(LocalSource(src), out, load_config(config))
    ids = {e.source: e.id for e in entries}
    decisions = tmp_path / "decisions.json"
    decisions.write_text(
        json.dumps({
            "version": 1, "editor": "Sam", "decided_at": "2027-03-20T18:04:00+00:00",
            "order": [ids["clip1.mp4"], ids["unsure.mp4"]],
            "decisions": {
                ids["clip0.mp4"]: "rejected", ids["clip1.mp4"]: "approved",
                ids["unsure.mp4"]: "approved",
            },
        }),
        "utf-8",
    )  # fmt: skip
    applying = ["review", "apply", str(decisions), "--out", str(out), "--config", str(config)]
    assert reel(applying) == 0
    applied = capsys.readouterr()
    assert f"warning: {ids['unsure.mp4']} (unsure.mp4) is approved" in applied.err
    assert "no consent" in applied.err

    code = reel(["run", str(src), "--out", str(out), "--config", str(config), "--approve-all"])
    assert code == 0
    manifest = json.loads((out / "compilation" / "manifest.json").read_text("utf-8"))
    clips = [s["id"] for s in manifest["segments"] if s.get("kind") == "clip"]
    assert clips == [ids["clip1.mp4"], ids["clip2.mp4"]]  # editors' order, then the undecided
    published = _published_text(out)
    assert "Supporter 0" not in published and "Not Sure Yet" not in published
    assert "Supporter 1" in published and "Supporter 2" in published
    said = capsys.readouterr().out
    assert f"{ids['clip0.mp4']} (clip0.mp4) stays rejected by Sam" in said, said
