"""How a picture is fitted into a frame: for the encode, its renditions and its checks."""

from __future__ import annotations

from fractions import Fraction

#: The background is drawn at 1/BG_REDUCTION of the frame and blurred there (cheap).
BG_REDUCTION = 8


def fit(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """The largest even size with ``size``'s aspect that fits in ``box``.

    Within 1 % of the box's aspect the clip fills the box (a 1.2 % stretch is
    invisible; a 2-pixel sliver of blurred background is not).
    """
    w, h = size
    bw, bh = box
    ratio = Fraction(w, h) / Fraction(bw, bh)
    if abs(ratio - 1) <= Fraction(1, 100):
        return box
    if ratio > 1:
        fw, fh = bw, round(bw * h / w)
    else:
        fw, fh = round(bh * w / h), bh
    return max(2, fw - fw % 2), max(2, fh - fh % 2)
