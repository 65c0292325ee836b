"""Where text may go in a 9:16 or 1:1 rendition: the platforms' safe zones, and placements in them.

The apps draw their own interface over a vertical video: the like / comment /
share column on the right, the account name, caption and sound line at the
bottom, tabs and search at the top. Text under them cannot be read. One safe
zone serves every platform, so it is the union of their unsafe margins, in
pixels of the 1080x1920 frame:

======  =====  ==========================================================
margin  px     where the number comes from
======  =====  ==========================================================
top     270    14 % of the height: Meta's guidance for Reels (Business Help
               Center, "keep the top 14 % free"); TikTok's tabs need 130-250
bottom  672    35 % of the height: Meta's guidance for Reels, which covers
               TikTok's caption, sound line and progress bar (320-460 px)
               and YouTube Shorts' title and channel line
right   180    TikTok's action column, 120-180 px, the widest of the apps
               (Reels ~120 px; TikTok added a playlist button in 2026)
left    65     6 % of the width: Meta's side margin for Reels
======  =====  ==========================================================

That leaves a box of 835x978 px for cards and captions. Feeds show a square
video without covering it, so the 1:1 frame keeps the broadcast title-safe
margin only: 5 % on every side (EBU R 95, "title safe" is the central 90 %).
Apps change their interface; these numbers are margins to re-check against
each platform's current safe-zone template before a campaign, not guarantees.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..captions import ass_colour

Rect = tuple[int, int, int, int]
"""``(x0, y0, x1, y1)`` in pixels of the rendition's frame, end exclusive."""

#: A QR code's label strip: its font size times this (the line and the room above it).
LABEL_LEADING = 1.6


@dataclass(frozen=True)
class SafeZone:
    """A frame and the margins the platforms' interface may cover."""

    frame: tuple[int, int]
    left: int
    top: int
    right: int
    bottom: int

    @property
    def box(self) -> Rect:
        """The area text stays within."""
        w, h = self.frame
        return self.left, self.top, w - self.right, h - self.bottom

    def holds(self, rect: Rect) -> bool:
        """Whether ``rect`` lies wholly inside the safe box."""
        x0, y0, x1, y1 = self.box
        return x0 <= rect[0] <= rect[2] <= x1 and y0 <= rect[1] <= rect[3] <= y1


SAFE_ZONES: dict[str, SafeZone] = {
    "9:16": SafeZone((1080, 1920), left=65, top=270, right=180, bottom=672),
    "1:1": SafeZone((1080, 1080), left=54, top=54, right=54, bottom=54),
}


@dataclass(frozen=True)
class SocialLayout:
    """Placements for one rendition's captions and end card, all inside :attr:`safe`.

    Font sizes are in pixels of the rendition's frame (ASS ``PlayRes`` = the frame).
    """

    aspect: str
    safe: SafeZone
    pad: int
    """Room between text and the safe zone's edge (text boxes have a border)."""
    name_size: int
    """The contributor's name: bottom left of the safe zone."""
    tag_size: int
    """The hashtag: top left of the safe zone (the top right is under TikTok's column)."""
    title_size: int
    line_size: int
    card_text: Rect
    """The end card's title and lines, wrapped to this box's width."""
    qr_boxes: tuple[Rect, Rect]
    """The petition's and the donation's QR codes, side by side under the text."""
    qr_labels: tuple[Rect, Rect]
    """Under each code, what it opens (``petition_qr_label``, ``donate_qr_label``)."""

    @property
    def wrap_chars(self) -> int:
        """Characters per line of card text at ``line_size`` (glyphs average ~0.5 em)."""
        return max(10, int((self.card_text[2] - self.card_text[0]) / (0.5 * self.line_size)))


def layout_for(aspect: str) -> SocialLayout:
    """The layout of the ``aspect`` rendition (``"9:16"`` or ``"1:1"``).

    Raises:
        ValueError: Unknown ``aspect``.
    """
    if aspect not in SAFE_ZONES:
        raise ValueError(f"unknown rendition aspect {aspect!r}; use one of {', '.join(SAFE_ZONES)}")
    safe = SAFE_ZONES[aspect]
    x0, y0, x1, y1 = safe.box
    pad = 24
    # QR codes: as large as fits two across with a gap, at most 40 % of the safe height.
    gap = 60
    width = x1 - x0
    label = round(width / 22 * LABEL_LEADING)  # a line of line_size under each code
    side = min((x1 - x0 - 2 * pad - gap) // 2, (y1 - y0) * 2 // 5, 320)
    qr_top = y1 - pad - label - side
    left = x0 + (x1 - x0 - 2 * side - gap) // 2
    qr = (left, qr_top, left + side, qr_top + side)
    qr2 = (left + side + gap, qr_top, left + 2 * side + gap, qr_top + side)
    labels = ((qr[0] - gap // 2, qr[3], qr[2] + gap // 2, qr[3] + label),
              (qr2[0] - gap // 2, qr2[3], qr2[2] + gap // 2, qr2[3] + label))  # fmt: skip
    text = (x0 + pad, y0 + pad, x1 - pad, qr_top - pad)
    return SocialLayout(
        aspect=aspect,
        safe=safe,
        pad=pad,
        name_size=round(width / 15),
        tag_size=round(width / 20),
        title_size=round(width / 13),
        line_size=round(width / 22),
        card_text=text,
        qr_boxes=(qr, qr2),
        qr_labels=labels,
    )


def ass_caption_styles(layout: SocialLayout, font: str) -> list[str]:
    """ASS ``Style:`` lines ``Name`` and ``Hashtag`` placed for ``layout`` (PlayRes = frame).

    The same styles as the 16:9 captions (boxed white text, crimson behind the
    hashtag), with margins that keep them in the safe zone: the name bottom
    left (alignment 1), the hashtag top left (alignment 7). Long names wrap
    within the margins (libass smart wrapping).
    """
    s, pad = layout.safe, layout.pad
    w, _ = s.frame
    white, box = ass_colour(0xFFFFFF), ass_colour(0x101018, alpha=0x50)
    accent = ass_colour(0xB0124A, alpha=0x30)
    font = font.replace(",", " ")
    left, right = s.left + pad, s.right + pad
    border = max(8, round(w / 90))

    def style(name: str, size: int, back: str, align: int, margin_v: int) -> str:
        return (
            f"Style: {name},{font},{size},{white},{white},{back},{back},1,0,0,0,100,100,0,0,3,"
            f"{border},0,{align},{left},{right},{margin_v},1"
        )

    return [
        style("Name", layout.name_size, box, 1, s.bottom + pad),
        style("Hashtag", layout.tag_size, accent, 7, s.top + pad),
    ]
