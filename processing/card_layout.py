"""What a card says and where, for each frame: the ASS script and the QR codes' places.

Every card is laid out for the frame it is drawn in: 16:9 (the compilation's
own size), 9:16 (1080x1920) and 1:1 (1080x1080). Text stays inside the
frame's safe zone (:mod:`processing.social.layout`; for 16:9 the broadcast
title-safe area, EBU R 95); lines are wrapped here, not by libass, so the
layout knows how tall the block is and shrinks it until it fits its box.
The end card carries the calls to action a viewer can act on: the petition's
aim and link, the donation line and link, the hashtag, and optionally both
links as QR codes beside (16:9) or under (9:16, 1:1) the text.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from .captions import ass_colour, ass_literal
from .config import Config
from .social.layout import LABEL_LEADING, Rect, layout_for

#: The 16:9 frame's title-safe margin, a share of each side (EBU R 95: the central 90 %).
TITLE_SAFE = 0.05
#: Room between text and its box's edge, and between boxes, in 1080-line pixels.
PAD = 24
#: Average advance of a glyph, as a share of the font size: bold titles are wider.
#: Generous on purpose: a line estimated too wide wraps early, one too narrow overflows.
EM_SHARE = {"Title": 0.6, "Sub": 0.55, "Line": 0.55, "Link": 0.56, "Tag": 0.6, "Label": 0.6}
#: Line height as a share of the font size.
LEADING = 1.3
#: Font sizes per style, in pixels of a 1080-wide (short side) frame, before fitting.
SIZES = {"Title": 80, "Sub": 46, "Line": 44, "Link": 40, "Tag": 52}
#: Extra room after a line of each style, as a share of its size (paragraph spacing).
AFTER = {"Title": 0.6, "Sub": 0.3, "Line": 0.1, "Link": 0.5, "Tag": 0.0}


@dataclass(frozen=True)
class CardFrame:
    """A card's frame and where its text and QR codes go (pixels of the frame)."""

    aspect: str
    size: tuple[int, int]
    safe: Rect
    text: Rect
    qr: tuple[Rect, ...]
    """The petition's and the donation's codes, in that order; empty without codes."""
    labels: tuple[Rect, ...] = ()
    """Under each code, the strip its label is centred in (what the code opens)."""


def card_frame(aspect: str, cfg: Config, *, qr: bool) -> CardFrame:
    """Where a card's text and codes go in the ``aspect`` frame (``16:9``, ``9:16``, ``1:1``).

    Args:
        aspect: ``"16:9"`` is the compilation's own frame (``[output]``).
        cfg: Settings.
        qr: Whether room is kept for the two QR codes.
    """
    if aspect == "16:9":
        w, h = cfg.output.width, cfg.output.height
        mx, my = round(w * TITLE_SAFE), round(h * TITLE_SAFE)
        safe = (mx, my, w - mx, h - my)
        pad = round(PAD * h / 1080)
        if not qr:
            return CardFrame(aspect, (w, h), safe, _inset(safe, pad), ())
        # Codes stacked in a column on the right, each over its label, the text beside them.
        gap = 2 * pad
        label = round(SIZES["Line"] * h / 1080 * LABEL_LEADING)
        side = min((safe[3] - safe[1] - 2 * pad - gap - 2 * label) // 2, round(300 * h / 1080))
        x1 = safe[2] - pad
        top = (safe[1] + safe[3] - 2 * (side + label) - gap) // 2
        second = top + side + label + gap
        codes = ((x1 - side, top, x1, top + side), (x1 - side, second, x1, second + side))
        labels = tuple((c[0] - gap, c[3], c[2] + gap // 2, c[3] + label) for c in codes)
        text = (safe[0] + pad, safe[1] + pad, x1 - side - 2 * gap, safe[3] - pad)
        return CardFrame(aspect, (w, h), safe, text, codes, labels)
    layout = layout_for(aspect)
    safe = layout.safe.box
    if not qr:
        return CardFrame(aspect, layout.safe.frame, safe, _inset(safe, layout.pad), ())
    return CardFrame(
        aspect, layout.safe.frame, safe, layout.card_text, layout.qr_boxes, layout.qr_labels
    )


def _inset(rect: Rect, pad: int) -> Rect:
    return rect[0] + pad, rect[1] + pad, rect[2] - pad, rect[3] - pad


def card_lines(kind: str, cfg: Config, part_label: str = "") -> list[tuple[str, str]]:
    """``(style, text)`` paragraphs of a card, top to bottom.

    Args:
        kind: ``title``, ``part`` (a social part's opening) or ``end``.
        part_label: The part's title (``Part 2/5``) for ``part``.
    """
    text = cfg.card_text()
    if kind == "title":
        return [("Title", text.title), ("Sub", text.subtitle)]
    if kind == "part":
        return [("Title", part_label), ("Sub", text.title)]
    return [
        ("Title", text.end_title),
        ("Line", text.petition_call),
        ("Link", text.petition_link),
        ("Line", text.donate_line),
        ("Link", text.donate_link),
        ("Tag", cfg.campaign.hashtag),
    ]


def fit_lines(
    paragraphs: list[tuple[str, str]], box: Rect, short_side: int
) -> list[tuple[str, int, str, float]]:
    """``(style, font size, line, space after)`` wrapped to ``box``'s width, shrunk to its height.

    A link is never wrapped (a broken link cannot be typed): its size is
    reduced until it fits the width on one line.
    """
    width, height = box[2] - box[0], box[3] - box[1]
    scale = short_side / 1080
    for _ in range(12):
        lines = []
        for style, para in paragraphs:
            size = SIZES[style] * scale
            per_em = EM_SHARE[style]
            if style == "Link":
                size = min(size, width / (per_em * max(1, len(para))))
                wrapped = [para]
            else:
                wrapped = textwrap.wrap(para, max(8, int(width / (per_em * size)))) or [""]
            for i, line in enumerate(wrapped):
                last = i == len(wrapped) - 1
                lines.append((style, max(8, round(size)), line, last))
        spaced = [
            (st, s, line, AFTER[st] * s if last and i < len(lines) - 1 else 0.0)
            for i, (st, s, line, last) in enumerate(lines)
        ]
        total = sum(s * LEADING + gap for _, s, _, gap in spaced)
        if total <= height:
            break
        scale *= 0.9 * (height / total) ** 0.5
    return spaced


def build_card_ass(
    kind: str,
    cfg: Config,
    duration: float,
    frame: CardFrame,
    part_label: str = "",
    coded: tuple[bool, ...] = (),
) -> str:
    """The ASS script of a card in ``frame``: lines centred in its text box, fading in and out.

    ``coded`` says which of ``frame.qr`` got its code drawn: each of those gets
    its label under it (a code left out gets none).
    """
    w, h = frame.size
    white, soft = ass_colour(0xFFFFFF), ass_colour(0xE8DDE4)
    link, accent = ass_colour(0xFFE9A8), ass_colour(0xF05A8C)
    clear = ass_colour(0x000000, alpha=0xFF)
    font = cfg.captions.font.replace(",", " ")
    colours = {"Title": (white, 1), "Sub": (soft, 0), "Line": (soft, 0), "Link": (link, 1),
               "Tag": (accent, 1), "Label": (white, 1)}  # fmt: skip
    styles = [
        f"Style: {name},{font},40,{colour},{colour},{clear},{clear},{bold},0,0,0,100,100,0,0,"
        f"1,0,0,8,0,0,0,1"
        for name, (colour, bold) in colours.items()
    ]
    lines = fit_lines(card_lines(kind, cfg, part_label), frame.text, min(w, h))
    box = frame.text
    total = sum(size * LEADING + gap for _, size, _, gap in lines)
    y = box[1] + (box[3] - box[1] - total) / 2
    x = (box[0] + box[2]) // 2
    end = _ass_time(duration)
    fade = min(600, round(duration * 1000 / 4))
    events = []
    for style, size, text, gap in lines:
        # Top-centre anchored (\an8); the line's box is its size times the leading.
        height = size * LEADING
        top = round(y + (height - size) / 2)
        events.append(
            f"Dialogue: 0,0:00:00.00,{end},{style},,0,0,0,,"
            f"{{\\an8\\pos({x},{top})\\fs{size}\\fad({fade},{fade})}}{ass_literal(text)}"
        )
        y += height + gap
    says = cfg.card_text()
    for strip, label, drawn in zip(
        frame.labels, (says.petition_qr_label, says.donate_qr_label), coded, strict=False
    ):
        if drawn and label:
            events.append(_label_event(strip, label, end, fade))
    return "\n".join(
        [
            "[Script Info]",
            "ScriptType: v4.00+",
            f"PlayResX: {w}",
            f"PlayResY: {h}",
            "WrapStyle: 2",
            "ScaledBorderAndShadow: yes",
            "YCbCr Matrix: TV.709",
            "",
            "[V4+ Styles]",
            "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, "
            "BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, "
            "BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding",
            *styles,
            "",
            "[Events]",
            "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text",
            *events,
            "",
        ]
    )


def _label_event(strip: Rect, label: str, end: str, fade: int) -> str:
    """A QR code's label, centred in its ``strip`` under the code, shrunk to fit one line."""
    width, height = strip[2] - strip[0], strip[3] - strip[1]
    size = max(8, round(min(height / LABEL_LEADING, width / (EM_SHARE["Label"] * len(label)))))
    top = strip[3] - round(size * LEADING)  # the line sits low in the strip, clear of the code
    return (
        f"Dialogue: 0,0:00:00.00,{end},Label,,0,0,0,,"
        f"{{\\an8\\pos({(strip[0] + strip[2]) // 2},{top})\\fs{size}\\fad({fade},{fade})}}"
        f"{ass_literal(label)}"
    )


def _ass_time(seconds: float) -> str:
    cs = round(seconds * 100)
    return f"{cs // 360000}:{cs // 6000 % 60:02d}:{cs // 100 % 60:02d}.{cs % 100:02d}"
