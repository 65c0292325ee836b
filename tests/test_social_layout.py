"""Safe zones of the social renditions: captions drawn with the layout's styles stay inside them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from processing import runner
from processing.captions import ass_literal
from processing.social.layout import SAFE_ZONES, ass_caption_styles, layout_for

#: A name as long as captions.max_name_chars allows, in wide Cyrillic glyphs, of short
#: words so that wrapped lines run right up to the margin.
LONG_NAME = " ".join(["Мария", "Шамиль", "Жанна", "Ли"] * 5)[:60]
FORMAT = (
    "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, "
    "BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, "
    "BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding"
)


def _drawn(aspect: str, tmp_path: Path) -> np.ndarray:
    """One frame of black with the name and hashtag captions drawn by libass (grey)."""
    layout = layout_for(aspect)
    w, h = layout.safe.frame
    events = [
        f"Dialogue: 0,0:00:00.00,0:00:01.00,{style},,0,0,0,,{ass_literal(text)}"
        for style, text in (("Name", LONG_NAME), ("Hashtag", "#100forJustice"))
    ]
    script = [
        "[Script Info]", "ScriptType: v4.00+", f"PlayResX: {w}", f"PlayResY: {h}",
        "WrapStyle: 0", "ScaledBorderAndShadow: yes", "", "[V4+ Styles]", FORMAT,
        *ass_caption_styles(layout, "Noto Sans"), "", "[Events]",
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text",
        *events, "",
    ]  # fmt: skip
    ass = tmp_path / "c.ass"
    ass.write_text("\n".join(script), "utf-8")
    png = tmp_path / "frame.png"
    runner.run(["-v", "error", "-f", "lavfi", "-i", f"color=black:s={w}x{h}:d=0.1",
                "-vf", f"ass=filename={ass}", "-frames:v", "1", "-y", str(png)],
               timeout=60)  # fmt: skip
    return cv2.imread(str(png), cv2.IMREAD_GRAYSCALE)


@pytest.mark.parametrize("aspect", sorted(SAFE_ZONES))
def test_captions_stay_inside_the_safe_zone(aspect: str, tmp_path: Path) -> None:
    frame = _drawn(aspect, tmp_path)
    ys, xs = np.nonzero(frame > 24)
    assert len(xs) > 5000, "nothing drawn"
    x0, y0, x1, y1 = SAFE_ZONES[aspect].box
    assert x0 <= xs.min() and xs.max() < x1, (xs.min(), xs.max(), (x0, x1))
    assert y0 <= ys.min() and ys.max() < y1, (ys.min(), ys.max(), (y0, y1))
    # The name sits low and the hashtag high in the safe zone: both are drawn.
    assert ys.max() > y1 - 200 and ys.min() < y0 + 200


@pytest.mark.parametrize("aspect", sorted(SAFE_ZONES))
def test_card_text_and_qr_codes_fit_the_safe_zone_without_overlap(aspect: str) -> None:
    layout = layout_for(aspect)
    boxes = [layout.card_text, *layout.qr_boxes, *layout.qr_labels]
    assert all(layout.safe.holds(b) for b in boxes)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)
    qr = layout.qr_boxes[0]
    assert qr[2] - qr[0] == qr[3] - qr[1] >= 200  # large enough to scan from another screen
    text_h = layout.card_text[3] - layout.card_text[1]
    assert text_h >= layout.title_size + 3 * layout.line_size * 1.2


def test_a_language_table_written_before_the_qr_labels_still_loads_without_them() -> None:
    """Campaign files add their own languages: keys added later are optional, others not."""
    from dataclasses import asdict

    from processing.config import load_config
    from processing.errors import ConfigError

    english = asdict(load_config().cards["en"])
    older = {k: list(v) if isinstance(v, tuple) else v for k, v in english.items()}
    older = {k: v for k, v in older.items() if not k.endswith("_qr_label")}
    cfg = load_config(overrides={"cards": {"fr": older}})
    assert (cfg.cards["fr"].petition_qr_label, cfg.cards["fr"].donate_qr_label) == ("", "")
    assert cfg.cards["en"].donate_qr_label == "Donate"
    with pytest.raises(ConfigError, match="missing donate_link"):
        load_config(
            overrides={"cards": {"fr": {k: v for k, v in older.items() if k != "donate_link"}}}
        )
