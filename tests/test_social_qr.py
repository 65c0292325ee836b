"""QR codes of the campaign's links decode back to the link (OpenCV's QR detector)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from processing import runner
from processing.config import load_config
from processing.frames import FrameSpec, read_frames
from processing.social.layout import SAFE_ZONES, layout_for
from processing.social.qr import qr_image, write_qr_png

CFG = load_config()
LINKS = sorted(
    {t.petition_link for t in CFG.cards.values()} | {t.donate_link for t in CFG.cards.values()}
)
LINKS.append(
    "https://petition.test/chechnya-justice?lang=ru&utm_source=reel&utm_campaign=100forJustice"
)


def _decode(image: np.ndarray) -> str:
    text, points, _ = cv2.QRCodeDetector().detectAndDecode(image)
    return text if points is not None else ""


@pytest.mark.parametrize("aspect", sorted(SAFE_ZONES))
@pytest.mark.parametrize("link", LINKS)
def test_qr_png_decodes_back_at_the_layout_size(link: str, aspect: str, tmp_path: Path) -> None:
    x0, _, x1, _ = layout_for(aspect).qr_boxes[0]
    side = x1 - x0
    png = write_qr_png(link, tmp_path / "qr.png", side)
    image = cv2.imread(str(png), cv2.IMREAD_GRAYSCALE)
    assert image.shape == (side, side)
    assert not list(tmp_path.glob(".*.part"))
    assert _decode(image) == link
    # Drawn on a dark card at the layout's place and through the output's H.264 encode: still read.
    w, h = SAFE_ZONES[aspect].frame
    frame = np.full((h, w), 30, np.uint8)
    x, y = layout_for(aspect).qr_boxes[0][:2]
    frame[y : y + side, x : x + side] = image
    cv2.imwrite(str(tmp_path / "card.png"), frame)
    video = tmp_path / "card.mp4"
    runner.run(["-v", "error", "-i", str(tmp_path / "card.png"), "-c:v", "libx264",
                "-crf", str(CFG.output.crf), "-pix_fmt", "yuv420p", "-y", str(video)],
               timeout=60)  # fmt: skip
    shown = next(read_frames(video, FrameSpec(w, h, 25)))
    assert _decode(shown[y - 20 : y + side + 20, x - 20 : x + side + 20]) == link


def test_a_link_too_long_for_the_size_is_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="too long for a 120 px QR code"):
        qr_image("https://petition.test/" + "x" * 300, 120)
    with pytest.raises(ValueError, match="empty"):
        qr_image("  ", 300)
