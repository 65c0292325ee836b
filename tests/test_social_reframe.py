"""Face-aware reframing (issue 17): the plan on made-up face tracks, and a real 9:16 render.

The render test puts scikit-image's astronaut photograph (a real face) off-centre in
a 640x360 clip, where it jumps sideways faster than the window may move. The
planner reads BlazeFace's scan (the anonymization's own); the 1080x1920 output
is measured with other tools: where the window really was on each frame by
matching the output against the source picture, and whether the face is in the
frame by CenterFace (a different network) and by the generator's ground truth.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import ffmpeg
import numpy as np
import pytest

from mediagen.faces import Person, Scene, head_boxes, make_face_clip
from processing import anonymize, runner
from processing.anonymize import FaceScan, Look
from processing.config import Social, load_config
from processing.errors import ConfigError
from processing.faces.centerface import CenterFace
from processing.frames import FrameSpec, read_frames
from processing.probe import probe
from processing.social.graph import rendition_nodes, rendition_streams
from processing.social.reframe import TARGETS_WIDTH, CropPath, plan_reframe, window_size

FPS = 30
SRC = (640, 360)
CFG = load_config()
#: The window may slide 40 px of the 1080-wide output per frame: 7.5 px of this 202 px window.
SOCIAL = replace(CFG.social, max_pan_px=40.0, smooth_seconds=0.2)
#: Matching the output against the source finds the window to the pixel; crop rounds to one.
MEASURE_PX = 1.5
#: The head's share of the astronaut photograph that is face (its centre, across).
PHOTO_SIDE = 300
HEAD_CENTRE = 225 / 512 * PHOTO_SIDE


def _limit(path: CropPath, social: Social) -> float:
    """The speed limit in source pixels per frame."""
    return social.max_pan_px * path.window[0] / TARGETS_WIDTH


def _jump(t: float) -> tuple[float, float, float, float]:
    """Head centre at 30 % of the width, then 160 px to the right in 0.1 s (16 px a frame)."""
    w = SRC[0]
    share = 0.30 + 0.25 * min(1.0, max(0.0, (t - 0.4) / 0.1))
    return share * w - HEAD_CENTRE, 10, PHOTO_SIDE, 0.0


JUMP = Scene((Person(_jump),))


@pytest.fixture(scope="module")
def jump(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, FaceScan]:
    """The jumping-face clip and the anonymization's scan of it."""
    src = make_face_clip(tmp_path_factory.mktemp("reframe") / "jump.mp4", duration=2.0,
                         size=SRC, scene=JUMP)  # fmt: skip
    video = probe(src).video
    assert video is not None
    return src, anonymize.scan(src, video, 2 * FPS, FPS, CFG.anonymize)


def _render(src: Path, path: CropPath, dst: Path, seconds: float = 2.0) -> Path:
    picture = ffmpeg.input(runner.input_path(src), t=seconds).video.filter("fps", FPS, start_time=0)
    out = ffmpeg.output(rendition_nodes(picture, path), runner.input_path(dst), an=None,
                        vcodec="libx264", preset="ultrafast", pix_fmt="yuv420p")  # fmt: skip
    runner.run(out.overwrite_output().get_args(), timeout=300)
    return dst


def _measured_x(src: Path, out: Path, window: tuple[int, int], seconds: float = 2.0) -> np.ndarray:
    """Where the window was on each frame: the output scaled back, matched along the source."""
    xs = []
    source = read_frames(src, FrameSpec(*SRC, FPS), duration=seconds)
    shown = read_frames(out, FrameSpec(*window, FPS))
    for whole, part in zip(source, shown, strict=True):
        match = cv2.matchTemplate(whole, part, cv2.TM_CCOEFF_NORMED)
        _, best, _, at = cv2.minMaxLoc(match)
        assert best > 0.9, f"output frame {len(xs)} is not a crop of the source ({best:.2f})"
        xs.append(at[0])
    return np.array(xs, float)


@pytest.mark.slow
def test_vertical_cut_keeps_the_face_in_and_pans_within_the_limit(
    jump: tuple[Path, FaceScan], tmp_path: Path
) -> None:
    src, scan = jump
    path = plan_reframe(scan, SRC, "9:16", FPS, SOCIAL)
    assert path.layout == "crop", path.why
    out = _render(src, path, tmp_path / "vertical.mp4")
    info = probe(out).video
    assert info is not None and (info.width, info.height) == (1080, 1920)
    xs = _measured_x(src, out, path.window)
    cw = path.window[0]
    planned, _ = path.at(np.arange(len(xs)))
    assert np.abs(xs - planned).max() <= MEASURE_PX, (xs, planned)
    # The face moves faster than the limit, and a centred window would lose it: both matter.
    heads = [head_boxes(JUMP, i / (len(xs) - 1))[0] for i in range(len(xs))]
    centres = np.array([(h[0] + h[2]) / 2 for h in heads])
    limit = _limit(path, SOCIAL)
    assert np.abs(np.diff(centres)).max() > 2 * limit
    centred = (SRC[0] - cw) / 2
    assert any(h[0] < centred or h[2] > centred + cw for h in heads)
    assert np.abs(np.diff(xs)).max() <= limit + MEASURE_PX, np.diff(xs)
    outside = [i for i, h in enumerate(heads) if h[0] < xs[i] - 1 or h[2] > xs[i] + cw + 1]
    assert not outside, f"the head (hair to chin) leaves the window on frames {outside}"
    detector, size = CenterFace(), (288, 512)
    for i, frame in enumerate(read_frames(out, FrameSpec(*size, FPS, gray=False))):
        if i % 6:
            continue
        faces = detector.detect(frame)
        assert faces, f"CenterFace finds no face on output frame {i}"
        x, y, w, h = max(faces, key=lambda b: b[2] * b[3])
        assert x >= 2 and y >= 2 and x + w <= size[0] - 2 and y + h <= size[1] - 2, (i, faces)


@pytest.mark.slow
def test_fill_layout_shows_the_whole_picture(jump: tuple[Path, FaceScan], tmp_path: Path) -> None:
    src, scan = jump
    two = FaceScan(scan.size, scan.frames, tuple(
        Look(look.frame, ((40, 100, 60, 60), (540, 100, 60, 60)), (0.9, 0.9))
        for look in scan.looks
    ), 0.0)  # fmt: skip
    path = plan_reframe(two, SRC, "9:16", FPS, SOCIAL)
    assert path.layout == "fill", path.why
    out = _render(src, path, tmp_path / "fill.mp4", seconds=0.5)
    # The source, fitted 1080x608 in the middle of the 1080x1920 frame, over a blurred copy.
    band_top = (1920 - 608) // 2
    frame = next(read_frames(out, FrameSpec(1080, 1920, FPS)))
    first = next(read_frames(src, FrameSpec(1080, 608, FPS)))
    band = frame[band_top : band_top + 608].astype(np.int16)
    assert np.abs(band - first).mean() < 4
    above = frame[: band_top - 8]
    assert 20 < above.mean() < 235 and above.std() < band.std()


def _scan(boxes_at: dict[int, list[tuple[int, int, int, int]]], frames: int = 60) -> FaceScan:
    looks = tuple(Look(f, tuple(b), (0.9,) * len(b)) for f, b in sorted(boxes_at.items()))
    return FaceScan(SRC, frames, looks, 0.0)


def test_a_face_that_barely_moves_gets_one_fixed_window_around_it() -> None:
    rng = np.random.default_rng(1)
    boxes = {f: [(470 + int(rng.integers(-3, 4)), 80, 60, 60)] for f in range(0, 60, 5)}
    path = plan_reframe(_scan(boxes), SRC, "9:16", FPS, CFG.social)
    xs, ys = path.at(np.arange(60))
    assert np.ptp(xs) == 0 and np.ptp(ys) == 0, path.keys
    assert xs[0] <= 467 and xs[0] + path.window[0] >= 533  # the face and its jitter inside
    assert xs[0] > (SRC[0] - path.window[0]) / 2 + 50  # not the centre crop


def test_two_people_side_by_side_share_the_window_and_far_apart_fall_back_to_fill() -> None:
    close = _scan({f: [(100, 80, 50, 50), (190, 90, 50, 50)] for f in range(0, 60, 5)})
    path = plan_reframe(close, SRC, "9:16", FPS, CFG.social)
    x, _ = path.at(0)
    assert path.layout == "crop" and x <= 100 and x + path.window[0] >= 240
    apart = _scan({f: [(40, 80, 50, 50), (540, 90, 50, 50)] for f in range(0, 60, 5)})
    assert plan_reframe(apart, SRC, "9:16", FPS, CFG.social).layout == "fill"
    # A faint second "face" (the background, a poster) does not count as a person.
    faint = FaceScan(SRC, 60, tuple(
        Look(f, ((40, 80, 50, 50), (540, 90, 50, 50)), (0.9, 0.45)) for f in range(0, 60, 5)
    ), 0.0)  # fmt: skip
    assert plan_reframe(faint, SRC, "9:16", FPS, CFG.social).layout == "crop"


def test_the_window_jumps_at_a_cut_and_is_speed_limited_within_shots() -> None:
    boxes = {f: [(60, 80, 50, 50)] for f in range(0, 30, 5)}
    boxes |= {f: [(520, 80, 50, 50)] for f in range(30, 60, 5)}
    scan = replace(_scan(boxes), cuts=(30,))
    path = plan_reframe(scan, SRC, "9:16", FPS, CFG.social)
    assert path.layout == "crop", path.why
    xs, _ = path.at(np.arange(60))
    cw = path.window[0]
    assert xs[29] <= 60 and xs[29] + cw >= 110 and xs[30] <= 520 and xs[30] + cw >= 570
    assert path.max_step() <= _limit(path, CFG.social) + 1e-6
    # Without the cut, the same jump is more than the window may do: the clip is shown whole.
    assert plan_reframe(replace(scan, cuts=()), SRC, "9:16", FPS, CFG.social).layout == "fill"


def test_portrait_fills_the_vertical_frame_and_is_reframed_on_y_for_the_square() -> None:
    portrait = (360, 640)
    scan = FaceScan(portrait, 30, (Look(0, ((150, 400, 60, 60),), (0.9,)),), 0.0)
    assert plan_reframe(replace(scan, size=(360, 480)), (360, 480), "9:16", FPS,
                        CFG.social).layout == "native"  # fmt: skip
    vertical = plan_reframe(scan, portrait, "9:16", FPS, CFG.social)
    assert vertical.layout == "native" and vertical.window == portrait
    square = plan_reframe(scan, portrait, "1:1", FPS, CFG.social)
    assert square.layout == "crop" and square.window == (360, 360)
    x, y = square.at(0)
    assert x == 0 and y <= 400 - 0.5 * 60 * CFG.social.face_margin * 1.6 and y + 360 >= 460


def test_window_sizes() -> None:
    assert window_size((1920, 1080), "9:16") == (608, 1080)
    assert window_size((1920, 1080), "1:1") == (1080, 1080)
    assert window_size((1080, 1920), "1:1") == (1080, 1080)
    with pytest.raises(ValueError, match="unknown rendition aspect"):
        plan_reframe(_scan({}), SRC, "4:5", FPS, CFG.social)


@pytest.mark.slow
def test_a_portrait_phone_clip_is_scaled_whole_into_the_vertical_frame(tmp_path: Path) -> None:
    """A 3:4 phone clip (turned by its display matrix) keeps every pixel, over a blurred fill."""
    src = make_face_clip(tmp_path / "phone.mp4", duration=1.0, size=(360, 480), clockwise=90)
    video = probe(src).video
    assert video is not None and video.display_size == (360, 480)
    scan = FaceScan((360, 480), FPS, (Look(0, ((100, 100, 60, 60),), (0.9,)),), 0.0)
    path = plan_reframe(scan, video.display_size, "9:16", FPS, CFG.social)
    out = _render(src, path, tmp_path / "vertical.mp4", seconds=1.0)
    info = probe(out).video
    assert info is not None and (info.width, info.height) == (1080, 1920)
    # Every source pixel is there: the middle 1080x1440 of the output scaled back is the source.
    top = (1920 - 1440) // 2
    shown = read_frames(out, FrameSpec(1080, 1920, FPS))
    for whole, frame in zip(read_frames(src, FrameSpec(1080, 1440, FPS)), shown, strict=True):
        assert np.abs(whole.astype(np.int16) - frame[top : top + 1440]).mean() < 4


@pytest.mark.parametrize(
    ("key", "value"),
    [("max_pan_px", 0), ("still_share", 1.5), ("apart_share", 0), ("smooth_seconds", -1)],
)
def test_bad_social_settings_are_refused_with_the_key_named(key: str, value: float) -> None:
    with pytest.raises(ConfigError, match=f"social.{key}|{key}"):
        load_config(overrides={"social": {key: value}})


@pytest.mark.slow
def test_both_renditions_come_from_one_decode(jump: tuple[Path, FaceScan], tmp_path: Path) -> None:
    """One ffmpeg command, one input: the main picture, the 9:16 and the 1:1 cuts as its outputs."""
    src, scan = jump
    plans = [plan_reframe(scan, SRC, aspect, FPS, SOCIAL) for aspect in ("9:16", "1:1")]
    picture = ffmpeg.input(runner.input_path(src), t=1.0).video.filter("fps", FPS, start_time=0)
    main, cuts = rendition_streams(picture, plans)
    dsts = [tmp_path / "main.mp4", tmp_path / "vertical.mp4", tmp_path / "square.mp4"]
    fast = {"vcodec": "libx264", "preset": "ultrafast", "pix_fmt": "yuv420p"}
    pairs = zip([main, *cuts], dsts, strict=True)
    outs = [ffmpeg.output(s, runner.input_path(d), **fast) for s, d in pairs]
    args = ffmpeg.merge_outputs(*outs).overwrite_output().get_args()
    assert args.count("-i") == 1
    runner.run(args, timeout=300)
    for plan, dst in zip(plans, dsts[1:], strict=True):
        info = probe(dst).video
        assert info is not None and (info.width, info.height) == plan.output
        xs = _measured_x(src, dst, plan.window, seconds=1.0)
        planned, _ = plan.at(np.arange(len(xs)))
        assert len(xs) == FPS and np.abs(xs - planned).max() <= MEASURE_PX, (plan.aspect, xs)
