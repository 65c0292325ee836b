"""Each clip's 9:16 and 1:1 renditions (issue 17, per clip), through the real batch.

A portrait clip as a phone stores it (turned, with a display matrix) goes through
:func:`process_batch` without renditions, then with ``social.renditions = ["9:16",
"1:1"]`` (which must render it again) beside two more uploads: a 16:9 clip with
scikit-image's astronaut photograph (a real face) off-centre that jumps sideways
faster than the window may move, carrying a phone's location tags, and the same
face clip asking to be anonymized. The outputs are measured with tools other than
the planner's: CenterFace (not BlazeFace) for the face, matching against the
upload for where the window was on each frame, ffprobe and a byte search for
conformance and tags.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

import mediagen as mg
from mediagen.faces import head_boxes
from processing.clip.files import ClipFiles
from processing.config import load_config
from processing.faces.centerface import CenterFace
from processing.frames import FrameSpec, read_frames
from processing.pipeline import process_batch
from processing.probe import probe
from processing.social.reframe import window_size
from processing.storage import LocalSource
from processing.verify import METADATA_MARKERS, conformance_problems, scrub_problems
from tests.socialkit import ASPECTS, FPS, JUMP, MAX_PAN, PORTRAIT, SRC, Made, copy_batch

#: Matching the output against the upload finds the window to about a pixel.
MEASURE_PX = 1.5
# Three tiny uploads, four batches and 1080-wide renditions: minutes on a loaded machine.
pytestmark = pytest.mark.timeout(1800)


@pytest.fixture
def made(social_batch: Made) -> Made:
    """The session's batch with renditions (tests/socialkit.py), shared with the compilation's."""
    return social_batch


def _files(made: Made, name: str) -> ClipFiles:
    return ClipFiles(made.out, made.after[name].id, ASPECTS)


@pytest.mark.slow
def test_turning_renditions_on_renders_the_clips_again_with_them(made: Made) -> None:
    for name in ("tall.mp4",):
        old, new = made.before[name], made.after[name]
        assert old.status == new.status == "accepted", (old.reason, new.reason)
        assert old.renditions is None and new.renditions is not None
        assert not new.cached and old.render_key != new.render_key
        assert sorted(new.renditions) == sorted(ASPECTS)
        files = _files(made, name)
        record = json.loads(files.record.read_text("utf-8"))
        for aspect in ASPECTS:
            listed = record["renditions"][aspect]
            assert listed["key"] == files.rendition_key(aspect)
            assert listed["file"][0] == files.rendition(aspect).stat().st_size


@pytest.mark.slow
def test_every_rendition_conforms_carries_no_tag_and_joins_the_clip_by_copy(
    made: Made, x264_reference: dict[str, dict[str, str]]
) -> None:
    needles = [v.encode() for k, v in mg.LOCATION_TAGS.items() if len(v) >= 5]
    needles += list(METADATA_MARKERS.values())
    for name in ("face.mp4", "tall.mp4"):
        files = _files(made, name)
        clip = probe(files.clip)
        for aspect, (w, h) in zip(ASPECTS, ((1080, 1920), (1080, 1080)), strict=True):
            f = files.rendition(aspect)
            info = probe(f)
            sized = replace(made.cfg, output=replace(made.cfg.output, width=w, height=h))
            assert conformance_problems(info, sized, made.after[name].duration or 0) == []
            assert scrub_problems(info) == []
            data = f.read_bytes()
            assert [n for n in needles if n in data] == []
            assert data.find(b"moov") < data.find(b"mdat"), "not +faststart"
            # Everything but the frame size matches the clip's: joinable by stream copy.
            sig, own = dict(clip.signature), dict(info.signature)
            for s in (sig, own):
                s["video"] = {k: v for k, v in s["video"].items() if k not in ("width", "height")}
            assert sig == own, (sig, own)
            assert abs(info.duration - clip.duration) < 1.5 / FPS
            # Encoded with social's preset and CRF, the clip with [output]'s (x264's own record).
            assert _x264_options(f) == x264_reference["superfast-23"], f.name
        assert _x264_options(files.clip) == x264_reference["veryfast-20"]


def _x264_options(path: Path) -> dict[str, str]:
    """The x264 settings that differ between presets and CRFs, from the stream's SEI."""
    data = path.read_bytes()
    at = data.find(b"x264 - core")
    text = data[at : data.index(b"\0", at)].decode("ascii").split("options: ")[1]
    opts = dict(kv.split("=", 1) for kv in text.split())
    return {k: opts[k] for k in ("subme", "ref", "me", "trellis", "mbtree", "crf")}


@pytest.fixture(scope="module")
def x264_reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """What x264 records for the kit's two presets and CRFs, each encoded alone."""
    folder, found = tmp_path_factory.mktemp("x264"), {}
    for name in ("superfast-23", "veryfast-20"):
        preset, crf = name.split("-")
        dst = folder / f"{name}.mp4"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=320x240:d=0.5",
             "-c:v", "libx264", "-preset", preset, "-crf", crf, str(dst)],
            check=True,
        )  # fmt: skip
        found[name] = _x264_options(dst)
    return found


def _window_x(upload: Path, rendition: Path, window: tuple[int, int]) -> np.ndarray:
    """Where the window was on each frame: the rendition scaled back, matched along the upload.

    Only the middle band is matched: the captions cover the top and bottom.
    """
    ww, wh = window
    band = slice(wh * 3 // 10, wh * 6 // 10)
    xs = []
    source = read_frames(upload, FrameSpec(*SRC, FPS), duration=2.0)
    shown = read_frames(rendition, FrameSpec(ww, wh, FPS))
    for whole, part in zip(source, shown, strict=False):
        match = cv2.matchTemplate(whole, part[band], cv2.TM_CCOEFF_NORMED)
        _, best, _, at = cv2.minMaxLoc(match)
        assert best > 0.85, f"rendition frame {len(xs)} is not a crop of the upload ({best:.2f})"
        assert abs(at[1] - band.start) <= 1, "the window moved vertically"
        xs.append(at[0])
    return np.array(xs, float)


@pytest.mark.slow
def test_the_vertical_cut_follows_the_face_within_the_speed_limit(made: Made) -> None:
    entry, files = made.after["face.mp4"], _files(made, "face.mp4")
    assert entry.renditions is not None
    assert entry.renditions["9:16"]["layout"] == "crop", entry.renditions["9:16"]["why"]
    window = window_size(SRC, "9:16")
    xs = _window_x(made.uploads / "face.mp4", files.rendition("9:16"), window)
    assert len(xs) >= 2 * FPS - 1
    limit = MAX_PAN * window[0] / 1080
    heads = [head_boxes(JUMP, i / FPS)[0] for i in range(len(xs))]
    centres = np.array([(h[0] + h[2]) / 2 for h in heads])
    # The face jumps faster than the window may move, and a centred window would lose it.
    assert np.abs(np.diff(centres)).max() > 2 * limit
    centred = (SRC[0] - window[0]) / 2
    assert any(h[0] < centred or h[2] > centred + window[0] for h in heads)
    steps = np.abs(np.diff(xs))
    assert steps.max() <= limit + MEASURE_PX, steps
    assert entry.renditions["9:16"]["max_pan_px"] <= MAX_PAN + 0.01
    detector, size = CenterFace(), (288, 512)
    sampled = 0
    for i, frame in enumerate(read_frames(files.rendition("9:16"), FrameSpec(*size, FPS, False))):
        if i % 5:
            continue
        sampled += 1
        faces = [b for b in detector.detect(frame) if b[2] >= 40]
        assert faces, f"CenterFace finds no face on rendition frame {i}"
        x, y, w, h = max(faces, key=lambda b: b[2] * b[3])
        assert x >= 2 and y >= 2 and x + w <= size[0] - 2 and y + h <= size[1] - 2, (i, faces)
    assert sampled >= 12
    assert steps.max() > 0, "the window never moved"


@pytest.mark.slow
def test_a_portrait_clip_fills_the_vertical_frame_uncropped(made: Made) -> None:
    entry, files = made.after["tall.mp4"], _files(made, "tall.mp4")
    # The whole upload, scaled: each frame's middle band, scaled back, is found in the
    # upload's frame exactly where it came from (a crop or a zoom would put it elsewhere).
    upload = read_frames(made.uploads / "tall.mp4", FrameSpec(*PORTRAIT, FPS), duration=2.0)
    shown = read_frames(files.rendition("9:16"), FrameSpec(*PORTRAIT, FPS))
    band = slice(200, 420)  # clear of the hashtag (top) and the name (bottom)
    found = []
    for whole, part in zip(upload, shown, strict=False):
        match = cv2.matchTemplate(whole, part[band], cv2.TM_CCOEFF_NORMED)
        _, best, _, at = cv2.minMaxLoc(match)
        found.append((round(best, 3), at))
    assert len(found) >= 2 * FPS - 1
    assert all(best > 0.95 and at == (0, band.start) for best, at in found), found
    assert entry.renditions is not None and entry.renditions["9:16"]["layout"] == "native"


@pytest.mark.slow
def test_an_anonymized_clip_is_reframed_on_its_blurred_picture(made: Made) -> None:
    entry, files = made.after["anon.mp4"], _files(made, "anon.mp4")
    assert entry.status == "accepted", entry.reason
    assert entry.anonymization is not None and entry.renditions is not None
    # No face in either rendition: CenterFace on every fifth frame.
    detector = CenterFace()
    for aspect, size in (("9:16", (288, 512)), ("1:1", (512, 512))):
        frames = read_frames(files.rendition(aspect), FrameSpec(*size, FPS, False))
        for i, frame in enumerate(frames):
            if i % 5 == 0:
                assert not [b for b in detector.detect(frame) if b[2] >= 12], (aspect, i)
    vertical = entry.renditions["9:16"]
    # The second detectors' check ran on the rendition, and the window follows the
    # hidden face: the anonymization's own scan placed it.
    assert vertical["faces_check"]["faces_found"] == 0
    assert vertical["faces_check"]["frames_checked"] >= 8
    assert vertical["layout"] == "crop" and vertical["max_pan_px"] > 0, vertical


@pytest.mark.slow
def test_withdrawal_removes_every_rendition_and_a_lost_one_is_rendered_again(
    made: Made, tmp_path: Path
) -> None:
    made = copy_batch(made, tmp_path)  # the session's batch stays as it was for the others
    files, face = _files(made, "tall.mp4"), _files(made, "face.mp4")
    assert all(files.rendition(a).is_file() for a in ASPECTS)
    face.rendition("1:1").unlink()  # lost: the record listing it must not be reused
    sidecar = made.uploads / "tall.json"
    kept = sidecar.read_text("utf-8")
    sidecar.write_text(json.dumps({"consent": False}), "utf-8")
    try:
        got = {e.source: e for e in process_batch(LocalSource(made.uploads), made.out, made.cfg)}
    finally:
        sidecar.write_text(kept, "utf-8")
    assert got["tall.mp4"].code == "consent_withdrawn"
    left = sorted(p.name for p in (made.out / "clips").iterdir() if p.name.startswith(files.sid))
    assert left == []
    assert got["anon.mp4"].cached and not got["face.mp4"].cached
    assert face.rendition("1:1").is_file()


def test_the_render_key_holds_the_per_clip_social_settings() -> None:
    base = load_config()
    on = replace(base, social=replace(base.social, renditions=("9:16",)))
    slower = replace(on, social=replace(on.social, max_pan_px=5.0))
    quieter = replace(on, social=replace(on.social, target_i=-16.0))
    faster = replace(on, social=replace(on.social, x264_preset="superfast"))
    assert base.render_fingerprint() != on.render_fingerprint() != slower.render_fingerprint()
    assert on.render_fingerprint() != faster.render_fingerprint()
    # A compilation-only setting does not re-render every clip.
    assert on.render_fingerprint() == quieter.render_fingerprint()
