"""Nothing stale stays published (issue 12, item 5).

A contributor who withdraws consent, asks to be anonymous or is rejected by an
editor must vanish from every published file in the run that learns of it: the
compilation set (video chapters, chapters list, credits, SRT, VTT, manifest),
the review page and its posters. The compilation and its companion files are
switched as one set, so a ``reel compile`` killed at any moment leaves the old
set or the new one, and the next run leaves no partial file.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import mediagen as mg
from flows.cli import main as reel
from processing.sheets import SHEET_FRAMES
from tests import measure

NAMES = {"a.mp4": "Zarema Testname", "b.mp4": "Lyoma Secondname", "c.mp4": "Ilya Thirdname"}
CONTENT = {
    "a.mp4": "testsrc2=s={w}x{h}:r={fps}:d={d}",
    "b.mp4": "smptehdbars=s={w}x{h}:r={fps}:d={d}",
    "c.mp4": "rgbtestsrc=s={w}x{h}:r={fps}:d={d}",
}
CONFIG = """\
[output]
width = 640
height = 360
x264_preset = "superfast"
[compilation]
year = 2027
title_seconds = 1.0
end_seconds = 1.0
"""
#: Files under OUT that are the campaign's working state, not something shown to anyone.
STATE = ("report.json", "decisions.json", "clips/", "logs/", ".work/", ".prefect/")


@pytest.fixture(scope="module")
def uploads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three 2 s consenting uploads, made once (copied by each test that changes them)."""
    src = tmp_path_factory.mktemp("uploads")
    for key, name in NAMES.items():
        mg.make_clip(src / key, duration=2, size=(640, 360), content=CONTENT[key])
        _sidecar(src, key, {"name": name, "consent": True})
    return src


def _sidecar(src: Path, key: str, data: dict) -> None:
    (src / key).with_suffix(".json").write_text(json.dumps(data), "utf-8")


@pytest.fixture
def campaign(uploads: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    """A copy of the uploads, an output folder and a config file."""
    src = tmp_path / "uploads"
    src.mkdir()
    for f in uploads.iterdir():
        mg.copy_file(f, src / f.name)
        os.utime(src / f.name, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns))
    config = tmp_path / "campaign.toml"
    config.write_text(CONFIG, "utf-8")
    return src, tmp_path / "out", config


def _process(src: Path, out: Path, config: Path) -> None:
    assert reel(["process", str(src), "--out", str(out), "--config", str(config), "-q"]) == 0


def _compile(out: Path, config: Path) -> None:
    assert reel(["compile", "--out", str(out), "--config", str(config)]) == 0


def _published(out: Path) -> list[Path]:
    """Every file under OUT that someone outside the pipeline sees."""
    files = [p for p in out.rglob("*") if p.is_file()]
    return [p for p in files if not p.relative_to(out).as_posix().startswith(STATE)]


def _texts_naming(out: Path, name: str) -> list[str]:
    """Published files whose bytes, or whose video's chapter titles, contain ``name``."""
    found = []
    for path in _published(out):
        named = name.encode("utf-8") in path.read_bytes()
        if path.suffix == ".mp4":
            chapters = measure.ffprobe_json(path).get("chapters") or []
            named = named or any(name in c.get("tags", {}).get("title", "") for c in chapters)
        if named:
            found.append(path.relative_to(out).as_posix())
    return found


def _ids(out: Path) -> dict[str, str]:
    report = json.loads((out / "report.json").read_text("utf-8"))
    return {s["source"]: s["id"] for s in report["submissions"]}


def _manifest(out: Path) -> dict:
    return json.loads((out / "compilation" / "manifest.json").read_text("utf-8"))


def test_withdrawn_consent_leaves_nothing_published_that_names_the_person(
    campaign: tuple[Path, Path, Path],
) -> None:
    src, out, config = campaign
    _process(src, out, config)
    _compile(out, config)
    gone = NAMES["b.mp4"]
    named = _texts_naming(out, gone)
    # Before: the compilation, each of its companion files and the page name her.
    for suffix in (".mp4", ".chapters.txt", ".credits.txt", ".srt", ".vtt"):
        assert any(f.endswith(suffix) for f in named), (suffix, named)
    assert "compilation/manifest.json" in named and "review/index.html" in named
    sid = _ids(out)["b.mp4"]
    assert list((out / "review" / "media").glob(f"{sid}-*"))

    _sidecar(src, "b.mp4", {"name": gone, "consent": False})
    _process(src, out, config)

    assert _texts_naming(out, gone) == []
    assert not (out / "compilation" / "manifest.json").exists()
    assert not list((out / "review" / "media").glob(f"{sid}-*"))
    assert not list((out / "clips").glob(f"{sid}.*")), "her render outlived the withdrawal"
    page = (out / "review" / "index.html").read_text("utf-8")
    assert f"../clips/{sid}.mp4" not in page  # no link to her clip either
    assert "Consent withdrawn" in page
    # The others are still named; the next compile leaves her out.
    assert "review/index.html" in _texts_naming(out, NAMES["a.mp4"])
    _compile(out, config)
    assert _texts_naming(out, gone) == []
    labels = [s["label"] for s in _manifest(out)["segments"]]
    assert labels[1:-1] == [NAMES["a.mp4"], NAMES["c.mp4"]]


def test_an_editors_rejection_withdraws_the_compilation_on_apply(
    campaign: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    src, out, config = campaign
    _process(src, out, config)
    _compile(out, config)
    ids = _ids(out)
    rejected = ids["c.mp4"]
    decisions = tmp_path / "decisions.json"
    decisions.write_text(
        json.dumps({
            "version": 1, "editor": "Lena", "decided_at": "2027-03-20T10:00:00Z",
            "order": [ids["a.mp4"], ids["b.mp4"]],
            "decisions": {ids["a.mp4"]: "approved", ids["b.mp4"]: "approved",
                          rejected: "rejected"},
        }),
        "utf-8",
    )  # fmt: skip
    assert reel(["review", "apply", str(decisions), "--out", str(out)]) == 0
    assert not (out / "compilation" / "manifest.json").exists()
    shown = [f for f in _published(out) if "cards" not in f.parts]  # cards name nobody
    assert not [f for f in shown if f.suffix in (".mp4", ".srt", ".vtt")]
    assert _texts_naming(out, NAMES["c.mp4"]) == ["review/index.html"]  # her card, for editors
    assert 'id="compilation-video"' not in (out / "review" / "index.html").read_text("utf-8")


def test_an_anonymized_clips_posters_come_from_the_blurred_clip(
    campaign: tuple[Path, Path, Path],
) -> None:
    src, out, config = campaign
    _process(src, out, config)
    _compile(out, config)
    sid = _ids(out)["a.mp4"]
    media = out / "review" / "media"
    old = {p.name: p.read_bytes() for p in media.glob(f"{sid}-*")}
    assert len(old) == 2

    _sidecar(src, "a.mp4", {"name": NAMES["a.mp4"], "consent": True, "anonymize": True})
    _process(src, out, config)

    assert not (out / "compilation" / "manifest.json").exists()  # it named her: withdrawn
    # Only the editors' page may still name her (it says she asked to be anonymous).
    assert set(_texts_naming(out, NAMES["a.mp4"])) <= {"review/index.html"}
    now = {p.name: p.read_bytes() for p in media.glob(f"{sid}-*")}
    assert len(now) == 2 and not set(now) & set(old), (sorted(old), sorted(now))
    page = (out / "review" / "index.html").read_text("utf-8")
    for data in old.values():
        assert base64.b64encode(data).decode("ascii") not in page
    # The poster is the blurred clip's frame: close to a frame of the new clip,
    # far from the old (sharp) poster.
    poster_name = next(n for n in now if n.endswith("-poster.jpg"))
    poster = _rgb(now[poster_name])
    old_poster = _rgb(next(v for n, v in old.items() if n.endswith("-poster.jpg")))
    clip = out / "clips" / f"{sid}.mp4"
    report = {s["id"]: s for s in json.loads((out / "report.json").read_text())["submissions"]}
    duration = float(report[sid]["duration"])
    t = (SHEET_FRAMES // 3 + 0.5) * duration / SHEET_FRAMES
    h, w = poster.shape[:2]
    frame = measure.frame_at(clip, t, size=(w, h))
    new_diff = _mean_abs(poster, frame)
    old_diff = _mean_abs(old_poster, frame)
    assert new_diff < 6.0, new_diff
    assert old_diff > 2 * new_diff + 4.0, (old_diff, new_diff)


def _rgb(jpeg: bytes) -> np.ndarray:
    return cv2.cvtColor(
        cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB
    )


def _mean_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


# ------------------------------------------------------------------ one set


KILLER = """
import os, signal, sys
from pathlib import Path
real = os.replace
def replace(src, dst, *a, **k):
    name, at = Path(dst).name, os.environ["KILL_AT"]
    if at == "sidecar" and name.endswith(".chapters.txt"):
        os.kill(os.getpid(), signal.SIGKILL)  # the video is in place, its files are not
    real(src, dst, *a, **k)
    if at == "manifest" and name == "manifest.json" and Path(dst).parent.name == "compilation":
        os.kill(os.getpid(), signal.SIGKILL)  # switched; the old set is not removed yet
os.replace = replace
from flows.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _whole_set(out: Path) -> list[str]:
    """Check that the set the manifest names is complete and agrees with itself.

    Returns:
        The clip labels, in order.
    """
    manifest = _manifest(out)
    files = manifest["files"]
    assert all((out / f).is_file() for f in files), files
    assert {Path(f).parent.name for f in files} == {manifest["build"]}
    labels = [s["label"] for s in manifest["segments"]]
    video = out / manifest["output"]
    chapters = [c["tags"]["title"] for c in measure.ffprobe_json(video)["chapters"]]
    assert chapters == labels
    by_suffix = {Path(f).name.split(".", 1)[1]: (out / f).read_text("utf-8") for f in files[1:]}
    listed = [line.split(" ", 1)[1] for line in by_suffix["chapters.txt"].splitlines()]
    assert listed == labels
    clips = labels[1:-1]
    credits = by_suffix["credits.txt"].splitlines()
    assert [n for n in NAMES.values() if n in credits] == [n for n in NAMES.values() if n in clips]
    for caption in ("srt", "vtt"):
        text = by_suffix[caption]
        assert text.count(" --> ") == len(clips)
        assert [n for n in NAMES.values() if n in text] == [n for n in NAMES.values() if n in clips]
    return clips


@pytest.mark.parametrize("kill_at", ["sidecar", "manifest"])
def test_a_compile_killed_mid_switch_leaves_one_whole_set_and_no_part_file(
    campaign: tuple[Path, Path, Path], tmp_path: Path, kill_at: str
) -> None:
    src, out, config = campaign
    _process(src, out, config)
    _compile(out, config)
    assert _whole_set(out) == [NAMES["a.mp4"], NAMES["b.mp4"], NAMES["c.mp4"]]
    ids = _ids(out)
    # The editors approve two clips in a new order and decide nothing on the third:
    # the old compilation is outdated, not harmful, so it stays until the new one.
    decisions = tmp_path / "decisions.json"
    decisions.write_text(
        json.dumps({
            "version": 1, "editor": "Lena", "decided_at": "2027-03-20T10:00:00Z",
            "order": [ids["c.mp4"], ids["a.mp4"]],
            "decisions": {ids["c.mp4"]: "approved", ids["a.mp4"]: "approved"},
        }),
        "utf-8",
    )  # fmt: skip
    assert reel(["review", "apply", str(decisions), "--out", str(out)]) == 0
    assert 'class="stale"' in (out / "review" / "index.html").read_text("utf-8")

    killed = subprocess.run(
        [sys.executable, "-c", KILLER, "compile", "--out", str(out), "--config", str(config)],
        env={**os.environ, "KILL_AT": kill_at}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    old, new = [NAMES["a.mp4"], NAMES["b.mp4"], NAMES["c.mp4"]], [NAMES["c.mp4"], NAMES["a.mp4"]]
    assert _whole_set(out) == (old if kill_at == "sidecar" else new)
    if kill_at == "sidecar":
        assert list(out.rglob(".*.part")), "the kill should have left a partial file"

    _compile(out, config)
    assert _whole_set(out) == new
    assert list(out.rglob("*.part")) == []
    builds = [p for p in (out / "compilation").iterdir() if p.is_dir() and p.name != "cards"]
    assert [b.name for b in builds] == [_manifest(out)["build"]]
    assert _texts_naming(out, NAMES["b.mp4"]) == ["review/index.html"]
