"""Captions are really in the frame: read back with OCR and measured as shapes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from processing.captions import CaptionSpec, ass_literal, build_ass
from tests import measure
from tests.conftest import ARABIC_NAME, HOSTILE_NAME, Batch

needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract-ocr is installed by `make test`"
)

#: Regions of a 1920x1080 frame (x0, y0, x1, y1) where the captions are drawn.
HASHTAG_BOX = (1100, 0, 1920, 200)
NAME_BOX = (0, 780, 1400, 1000)
TOP_CENTRE = (400, 0, 1100, 250)


def ocr(frame: np.ndarray, box: tuple[int, int, int, int], lang: str, tmp: Path) -> str:
    """Text tesseract reads in ``box``: white caption text isolated, enlarged, inverted."""
    x0, y0, x1, y1 = box
    crop = frame[y0:y1, x0:x1]
    white = np.all(crop > 200, axis=2)
    img = np.where(white, 0, 255).astype(np.uint8)  # black text on white
    img = cv2.resize(img, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    path = tmp / "ocr.png"
    cv2.imwrite(str(path), img)
    result = subprocess.run(
        ["tesseract", str(path), "-", "--psm", "7", "-l", lang],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return result.stdout.strip()


@needs_tesseract
def test_hashtag_is_burned_in_top_right(batch: Batch, tmp_path: Path) -> None:
    frame = measure.frame_at(batch.clip("landscape.mp4"), 1.0)
    text = ocr(frame, HASHTAG_BOX, "eng", tmp_path)
    assert "100forjustice" in text.replace(" ", "").lower(), text


@needs_tesseract
def test_cyrillic_name_is_burned_in_as_a_lower_third(batch: Batch, tmp_path: Path) -> None:
    frame = measure.frame_at(batch.clip("landscape.mp4"), 1.0)
    text = ocr(frame, NAME_BOX, "rus", tmp_path)
    assert "Айшат" in text and "Грозного" in text, text


@needs_tesseract
def test_sidecar_markup_is_drawn_literally(batch: Batch, tmp_path: Path) -> None:
    """``{\\an8}`` would move the name to the top; ``$(…)`` must not be executed."""
    frame = measure.frame_at(batch.clip("located.mov"), 1.0)
    text = ocr(frame, NAME_BOX, "eng", tmp_path)
    squashed = text.replace(" ", "")
    assert "O'Brien" in text or "OBrien" in squashed, text
    assert "100%" in squashed and "an8" in squashed and "rm-rf" in squashed, text
    top = frame[TOP_CENTRE[1] : TOP_CENTRE[3], TOP_CENTRE[0] : TOP_CENTRE[2]]
    assert ocr(frame, TOP_CENTRE, "eng", tmp_path).replace(" ", "").find("Brien") < 0
    assert top.size


def test_arabic_name_is_shaped_into_joined_letters(batch: Batch) -> None:
    """محمد is four letters that all join: shaped it is one connected stroke.

    Unshaped (isolated letter forms, as drawtext on ffmpeg 5.1 draws them) it
    would be four separate blobs.
    """
    frame = measure.frame_at(batch.clip("webcam.webm"), 1.0)
    x0, y0, x1, y1 = NAME_BOX
    white = np.all(frame[y0:y1, x0:x1] > 200, axis=2).astype(np.uint8)
    _count, _, stats, _ = cv2.connectedComponentsWithStats(white, connectivity=8)
    blobs = [s for s in stats[1:] if s[cv2.CC_STAT_AREA] > 40]
    assert 1 <= len(blobs) <= 2, f"{len(blobs)} separate glyph groups for {ARABIC_NAME}"
    widest = max(b[cv2.CC_STAT_WIDTH] for b in blobs)
    assert widest > 80, "one wide joined word, not isolated letters"


@needs_tesseract
def test_emoji_and_cjk_names_render_without_failing(batch: Batch, tmp_path: Path) -> None:
    frame = measure.frame_at(batch.clip(HOSTILE_NAME), 1.0)
    assert "Sam" in ocr(frame, NAME_BOX, "eng", tmp_path)


def test_ass_literal_escapes_every_markup_character() -> None:
    text = ass_literal("a{\\an8}b\\Nc\\hd}")
    assert "{" not in text.replace("\\{", "")
    assert "}" not in text.replace("\\}", "")
    assert "\\N" not in text and "\\h" not in text
    assert "\n" not in ass_literal("line\nbreak\u2028sep")


def _caption_box(script: str, size: tuple[int, int], tmp: Path) -> tuple[int, int, int, int]:
    """Bounding box (x0, y0, x1, y1) of the white caption text libass draws on grey."""
    w, h = size
    ass = tmp / f"captions-{h}.ass"
    ass.write_text(script, "utf-8")
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"color=c=gray:s={w}x{h}:d=1",
         "-vf", f"ass={ass}", "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    white = np.all(np.frombuffer(raw, np.uint8).reshape(h, w, 3) > 200, axis=2)
    ys, xs = np.nonzero(white)
    assert len(xs), f"no caption drawn at {w}x{h}"
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def test_script_has_one_event_per_caption_and_scales_with_frame(tmp_path: Path) -> None:
    """Drawn at 1280x720 and 640x360, the captions are the same picture at two scales."""
    spec = CaptionSpec("#100forJustice", "Maria", "Noto Sans")
    large = build_ass(spec, 1280, 720)
    events = [ln for ln in large.splitlines() if ln.startswith("Dialogue:")]
    assert len(events) == 2
    big = _caption_box(large, (1280, 720), tmp_path)
    small = _caption_box(build_ass(spec, 640, 360), (640, 360), tmp_path)
    big_h, small_h = big[3] - big[1], small[3] - small[1]
    assert small_h > 10, "the text is drawn, not a speck"
    assert big_h / small_h == pytest.approx(2.0, rel=0.1), (big, small)
    # Where the text sits, as a share of the frame, does not depend on its size.
    for b, s_, extent in zip(big, small, (1280, 720, 1280, 720), strict=True):
        assert abs(b / extent - s_ / (extent / 2)) <= 0.02, (big, small)
