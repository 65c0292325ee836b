"""Anonymization on request: no face survives in any frame, the name and voice are hidden.

The face is a real photograph (scikit-image's astronaut) panned and zoomed in
a clip; the same detector the pipeline uses is run on every output frame.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from skimage import data

import mediagen as mg
from mediagen.faces import face_boxes, head_box, make_face_clip
from processing.anonymize import FaceScan, Look, mask_frames
from processing.config import Anonymize, Config, load_config
from processing.faces.check import check_hidden
from processing.faces.uncertain import is_cut
from processing.normalize import fit
from processing.pipeline import process_batch
from processing.report import Entry
from processing.review import build_review
from processing.storage import LocalSource
from tests import measure
from tests import reviewgen as rg
from tests.test_captions import NAME_BOX, needs_tesseract, ocr

REAL_NAME = "Eileen Collins"
#: Share of input frames on which the face must be detectable for the test to mean anything.
MIN_INPUT_FACE_SHARE = 0.8
ONE_FRAME = 1 / 30
#: A lavfi source with sharp detail and nothing the detector takes for a face.
NO_FACE = "testsrc=s={w}x{h}:r={fps}:d={d}"
#: Small output for the renders whose pixels are not read at full size.
SMALL = {"width": 960, "height": 540}


@dataclass(frozen=True)
class Rendered:
    uploads: Path
    out: Path
    entries: dict[str, Entry]

    def clip(self, key: str) -> Path:
        entry = self.entries[key]
        assert entry.output, f"{key}: {entry.status} {entry.code}: {entry.reason}"
        return self.out / entry.output


def _render(root: Path, uploads: dict[str, tuple[Path, dict]], cfg: Config) -> Rendered:
    src = root / "in"
    src.mkdir(parents=True)
    for name, (clip, sidecar) in uploads.items():
        shutil.copyfile(clip, src / name)
        (src / name).with_suffix(".json").write_text(json.dumps(sidecar), "utf-8")
    entries = process_batch(LocalSource(src), root / "out", cfg)
    return Rendered(src, root / "out", {e.source: e for e in entries})


#: The test clips: displayed size and length in frames (30 fps).
SIZES = {"face.mp4": (960, 540), "portrait.mp4": (540, 960)}
FRAMES = {"face.mp4": 48, "portrait.mp4": 48}


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("faces")
    return {
        key: make_face_clip(
            root / key,
            duration=FRAMES[key] / 30,
            size=SIZES[key],
            clockwise=90 if key == "portrait.mp4" else 0,
        )
        for key in SIZES
    }


def _faces_on_the_head(
    path: Path, key: str, out_size: tuple[int, int], *, every: int = 1, fps: int = 30
) -> tuple[list[int], list[int], int]:
    """Detect faces on the frames of ``path`` (a render of clip ``key``, or the clip).

    Returns:
        Frames (among those looked at) with a face found on the contributor's
        head (ground truth from the generator, mapped through the fit into the
        output frame), frames with a face found in the background beside a
        fitted clip, and how many frames were looked at.
    """
    iw, ih = SIZES[key]
    W, H = out_size
    fw, fh = fit((iw, ih), out_size)
    ox, oy, sx, sy = (W - fw) / 2, (H - fh) / 2, fw / iw, fh / ih
    on_head, beside = [], []
    found = face_boxes(path, every=every)
    for n, boxes in enumerate(found):
        frame = min(round(n * every * 30 / fps), FRAMES[key] - 1)
        hx0, hy0, hx1, hy1 = head_box(frame, FRAMES[key], (iw, ih))
        for x0, y0, x1, y1 in boxes:
            # Back into the clip's own pixels.
            bx0, bx1 = (x0 - ox) / sx, (x1 - ox) / sx
            by0, by1 = (y0 - oy) / sy, (y1 - oy) / sy
            cx, cy = (bx0 + bx1) / 2, (by0 + by1) / 2
            head_cx, head_cy = (hx0 + hx1) / 2, (hy0 + hy1) / 2
            if (hx0 <= cx <= hx1 and hy0 <= cy <= hy1) or (
                bx0 <= head_cx <= bx1 and by0 <= head_cy <= by1
            ):
                on_head.append(n)
            if not (0 <= cx <= iw and 0 <= cy <= ih):
                beside.append(n)
    return sorted(set(on_head)), sorted(set(beside)), len(found)


ANON = {"name": REAL_NAME, "consent": True, "anonymize": True}


@pytest.fixture(scope="module")
def anonymized(clips: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """Default anonymization settings, small output frame."""
    uploads = {key: (clip, ANON) for key, clip in clips.items()}
    return _render(
        tmp_path_factory.mktemp("anon"), uploads, load_config(overrides={"output": SMALL})
    )


@pytest.fixture(scope="module")
def plain(clips: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    sidecar = {"name": REAL_NAME, "consent": True}
    return _render(
        tmp_path_factory.mktemp("plain"),
        {"face.mp4": (clips["face.mp4"], sidecar)},
        load_config(overrides={"output": SMALL}),
    )


@pytest.mark.parametrize("key", list(SIZES))
def test_the_input_really_shows_a_face_on_most_frames(clips: dict[str, Path], key: str) -> None:
    on_head, _, looked = _faces_on_the_head(clips[key], key, SIZES[key], every=3)
    assert len(on_head) >= MIN_INPUT_FACE_SHARE * looked, on_head


def test_a_render_without_anonymization_still_shows_the_face(plain: Rendered) -> None:
    """Guards the tests below: the rendered frame itself keeps the face detectable."""
    size = (SMALL["width"], SMALL["height"])
    on_head, _, looked = _faces_on_the_head(plain.clip("face.mp4"), "face.mp4", size, every=3)
    assert len(on_head) >= MIN_INPUT_FACE_SHARE * looked, on_head


def test_the_check_after_the_encode_finds_a_face_left_visible(plain: Rendered) -> None:
    """The second look (Haar confirmed by the CNN close up; CenterFace) on an unmasked render."""
    found = check_hidden(plain.clip("face.mp4"), (SMALL["width"], SMALL["height"]))
    by_haar = {h.seconds for h in found.hits if h.detector == "haar+cnn"}
    by_centerface = {h.seconds for h in found.hits if h.detector == "centerface"}
    assert len(by_haar) >= found.frames // 2 >= 2, found.summary()
    assert len(by_centerface) >= found.frames // 2 - 1 >= 2, found.summary()
    assert found.reason().startswith("A face could still be seen at 00:00, 00:01")
    assert found.reason().endswith("the clip was not published")


@pytest.mark.slow
@pytest.mark.parametrize("key", list(SIZES))
def test_no_output_frame_shows_a_face(anonymized: Rendered, key: str) -> None:
    """Every frame, the whole picture: the clip and, for portrait, the blurred sides.

    The detector also fires now and then on the space suit (not a face); only
    faces found on the head, or anywhere in the background, count.
    """
    entry = anonymized.entries[key]
    assert entry.status == "accepted", entry.reason
    size = (SMALL["width"], SMALL["height"])
    on_head, beside, looked = _faces_on_the_head(anonymized.clip(key), key, size)
    assert looked == round(entry.duration * 30) >= FRAMES[key]
    assert on_head == [] and beside == []


@pytest.mark.slow
def test_faces_stay_hidden_between_sparse_looks(
    clips: dict[str, Path], tmp_path: Path, anonymized: Rendered
) -> None:
    """Only the carrying of boxes between looks hides the face here.

    One look every 8 frames at 15 fps (a face moving ~25 % of the frame
    between looks), no hold time, no clip-wide union.
    """
    cfg = load_config(
        overrides={
            "output": {**SMALL, "fps": 15},
            "anonymize": {"detect_every": 8, "hold_seconds": 0.0, "coverage": "track"},
        }
    )
    done = _render(tmp_path, {"face.mp4": (clips["face.mp4"], ANON)}, cfg)
    entry = done.entries["face.mp4"]
    assert entry.anonymization is not None
    assert entry.anonymization["looks"] <= 5
    default = anonymized.entries["face.mp4"].anonymization
    assert default is not None
    assert entry.anonymization["hidden_share"] < default["hidden_share"], "less is hidden"
    size = (SMALL["width"], SMALL["height"])
    on_head, _, looked = _faces_on_the_head(done.clip("face.mp4"), "face.mp4", size, fps=15)
    assert looked == round(entry.duration * 15) >= FRAMES["face.mp4"] / 2
    assert on_head == []


def test_report_says_what_was_hidden_and_keeps_the_name_for_staff(anonymized: Rendered) -> None:
    entry = anonymized.entries["face.mp4"]
    info = entry.anonymization
    assert info is not None
    assert info["looks_with_faces"] >= MIN_INPUT_FACE_SHARE * info["looks"]
    assert not info["whole_frame_blurred"] and not info["voice_disguised"]
    assert 0.05 < info["hidden_share"] < 0.9
    assert entry.anonymize is True and entry.name == REAL_NAME
    assert entry.scrub_check == "passed"


@needs_tesseract
def test_the_name_shown_is_anonymous(anonymized: Rendered, tmp_path: Path) -> None:
    frame = measure.frame_at(anonymized.clip("face.mp4"), 1.0, size=(1920, 1080))
    # Only the start of the name box: the white parts of the space suit beside it
    # would read as text. A real name would begin here too.
    text = ocr(frame, (NAME_BOX[0], NAME_BOX[1] + 90, 390, NAME_BOX[3]), "eng", tmp_path)
    assert "Anonymous" in text, text
    assert "Eileen" not in text and "Collins" not in text


@pytest.fixture(scope="module")
def disguised(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """A clip without any face, anonymized with the voice disguised.

    lavfi ``testsrc`` (not ``testsrc2``, whose shapes the sensitive detector
    sometimes takes for a face).
    """
    root = tmp_path_factory.mktemp("voice")
    clip = mg.make_clip(
        root / "src.mp4", duration=4, size=(640, 360), sync_marker=True, lufs=-30, content=NO_FACE
    )
    cfg = load_config(overrides={"output": SMALL, "anonymize": {"voice": True}})
    return _render(root / "r", {"talk.mp4": (clip, ANON)}, cfg)


def test_voice_is_disguised_in_pitch_and_lands_on_loudness_target(disguised: Rendered) -> None:
    src, out = disguised.uploads / "talk.mp4", disguised.clip("talk.mp4")
    before, after = measure.f0_track(src), measure.f0_track(out)
    n = min(len(before), len(after))
    ratios = after[:n] / before[:n]
    assert np.count_nonzero(np.isfinite(ratios)) > 20, "enough voiced windows to compare"
    ratio = float(np.nanmedian(ratios))
    assert abs(ratio - load_config().anonymize.voice_pitch) < 0.04, ratio
    integrated, true_peak = measure.loudness(out)
    assert abs(integrated - (-16.0)) <= 1.0 and true_peak <= -1.5
    # The beep moves with the pitch; it must still start with the flash frame.
    onset = measure.beep_onset(out, freq=mg.BEEP_HZ * 0.8)
    assert abs(onset - measure.flash_time(out)) <= ONE_FRAME
    assert disguised.entries["talk.mp4"].anonymization["voice_disguised"] is True  # type: ignore[index]


def test_a_clip_without_a_detectable_face_is_blurred_whole(disguised: Rendered) -> None:
    entry = disguised.entries["talk.mp4"]
    assert entry.anonymization and entry.anonymization["whole_frame_blurred"]
    assert any("no face was found" in w for w in entry.warnings)
    size = (SMALL["width"], SMALL["height"])

    def detail(path: Path) -> float:
        # The steepest steps between neighbouring pixels (bar edges), between the captions.
        frame = measure.frame_at(path, 1.0, size=size).astype(np.float32)
        return float(np.percentile(np.abs(np.diff(frame[150:420, 100:860, 1], axis=1)), 99.5))

    sharp, blurred = detail(disguised.uploads / "talk.mp4"), detail(disguised.clip("talk.mp4"))
    assert sharp > 50 and blurred < 10, (sharp, blurred)


#: The report's counts the review page shows as they are.
SHOWN_COUNTS = ("looks", "looks_with_faces", "scene_cuts", "frames_checked", "faces_found")


@pytest.mark.parametrize("which", ["anonymized", "disguised"])
def test_the_review_page_shows_which_blur_and_the_check_counts(
    request: pytest.FixtureRequest, which: str
) -> None:
    """Each anonymized card shows the report's numbers and the kind of blur; never a name.

    ``anonymized`` clips show a face (faces blurred); ``disguised`` has none (blurred whole).
    """
    done: Rendered = request.getfixturevalue(which)
    page = build_review(done.out).read_text("utf-8")
    shown = rg.AnonymizationShown(page).cards
    for key, entry in done.entries.items():
        info, card = entry.anonymization, shown[entry.id]
        assert info is not None
        if which == "disguised":
            assert card["kind"] == "whole-clip", card
        else:
            spans = info["uncertain_spans"]
            assert card["kind"] == ("faces-and-spans" if spans else "faces"), card
        for name in SHOWN_COUNTS:
            assert card[name] == [str(info[name])], (name, card, info)
        assert card["hidden_share"] == [str(info["hidden_share"])]
        assert card.get("span_from", []) == [str(a) for a, _, _ in info["uncertain_spans"]]
        assert card.get("span_to", []) == [str(b) for _, b, _ in info["uncertain_spans"]]
        assert key not in page, f"the upload name {key} of an anonymous contributor is shown"
    assert REAL_NAME not in page and "Eileen" not in page


def test_no_face_can_hold_the_clip_back_instead(tmp_path: Path) -> None:
    clip = mg.make_clip(tmp_path / "src.mp4", duration=1.5, size=(320, 240), content=NO_FACE)
    cfg = load_config(overrides={"output": SMALL, "anonymize": {"no_face": "reject"}})
    done = _render(tmp_path / "r", {"x.mp4": (clip, ANON)}, cfg)
    entry = done.entries["x.mp4"]
    assert (entry.status, entry.code) == ("rejected", "no_face_found"), entry.reason
    assert not list((done.out / "clips").glob("*.mp4"))


# --------------------------------------------------------------------------- the mask itself


def _scan(looks: list[tuple[int, list[tuple[int, int, int, int]]]], frames: int) -> FaceScan:
    return FaceScan((160, 90), frames, tuple(Look(f, tuple(b)) for f, b in looks), 0.0)


def _settings(**changes: object) -> Anonymize:
    return load_config(overrides={"anonymize": changes}).anonymize


def test_a_box_is_held_from_the_look_before_to_the_look_after() -> None:
    found = _scan([(0, []), (10, [(40, 20, 20, 20)]), (20, []), (30, [])], 31)
    masks = list(mask_frames(found, _settings(coverage="track", hold_seconds=0, margin=0), 30))
    hidden = [bool(m[30, 50]) for m in masks]
    assert hidden == [i <= 20 for i in range(31)]
    assert len(masks) == 31


def test_the_way_between_two_looks_is_covered() -> None:
    found = _scan([(0, [(10, 30, 20, 20)]), (10, [(60, 30, 20, 20)])], 11)
    settings = _settings(coverage="track", hold_seconds=0, margin=0)
    masks = list(mask_frames(found, settings, 30))
    assert all(m[40, 45] for m in masks), "the gap between the two boxes is hidden"
    assert not masks[0][80, 150]


def test_clip_coverage_hides_every_place_a_face_was_seen_on_every_frame() -> None:
    found = _scan([(0, [(10, 10, 10, 10)]), (30, []), (60, []), (90, [(120, 50, 10, 10)])], 91)
    masks = list(mask_frames(found, _settings(coverage="clip", margin=0.5), 30))
    assert all(m[15, 15] and m[55, 125] for m in masks)
    assert not any(m[80, 60] for m in masks)


def test_margin_grows_the_box() -> None:
    found = _scan([(0, [(50, 30, 20, 20)])], 1)
    (mask,) = mask_frames(found, _settings(margin=0.5), 30)
    ys, xs = np.nonzero(mask)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (40, 79, 14, 59)


# --------------------------------------------------------------------------- fail safe


def test_a_face_lost_and_found_again_hides_the_whole_frame_for_that_span_only() -> None:
    box = (40, 20, 20, 20)
    looks = [(0, [box]), (10, [box]), (20, []), (30, [box]), (40, [box]), (50, [box])]
    found = _scan(looks, 61)
    masks = list(mask_frames(found, _settings(coverage="track", hold_seconds=0, margin=0), 30))
    whole = [bool(m.all()) for m in masks]
    assert whole == [10 <= i <= 30 for i in range(61)]


def test_frames_around_a_scene_cut_are_hidden_whole() -> None:
    found = FaceScan(
        (160, 90), (31), (Look(0, ((40, 20, 20, 20),)), Look(15, ()), Look(30, ())), 0.0, (15,)
    )
    masks = list(mask_frames(found, _settings(coverage="track", hold_seconds=0, margin=0), 30))
    assert [i for i, m in enumerate(masks) if m.all()] == [13, 14, 15, 16, 17]


def test_a_weak_detection_gets_twice_the_margin() -> None:
    sure = FaceScan((160, 90), 1, (Look(0, ((50, 30, 20, 20),), (0.9,)),), 0.0)
    weak = FaceScan((160, 90), 1, (Look(0, ((50, 30, 20, 20),), (0.45,)),), 0.0)
    settings = _settings(margin=0.25)
    (m_sure,), (m_weak,) = mask_frames(sure, settings, 30), mask_frames(weak, settings, 30)
    assert np.count_nonzero(m_weak) > 1.5 * np.count_nonzero(m_sure)
    _, xs = np.nonzero(m_weak)
    assert (xs.min(), xs.max()) == (40, 79)


def test_a_scene_cut_is_told_from_motion() -> None:
    photo = data.astronaut()
    moved = np.roll(photo, 12, axis=1)  # a pan of 12 px between two frames
    other = np.ascontiguousarray(photo[::-1, ::-1])  # another shot
    assert not is_cut(photo, moved) and is_cut(photo, other)
