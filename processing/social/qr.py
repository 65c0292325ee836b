"""QR codes of the campaign's links, drawn for the end cards with segno (pure Python, BSD).

A code is drawn with whole pixels per module (sharp edges survive scaling and
H.264), dark on white with a quiet zone of at least four modules (ISO/IEC 18004),
centred in a square PNG of exactly the size the layout gives it.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import segno

from ..fsutil import atomic_output

#: Fewest pixels per module: below two a code drawn into a video frame blurs away.
MIN_MODULE_PX = 2
#: Modules of white around the code that the QR standard asks for.
QUIET_MODULES = 4


def qr_image(link: str, side: int) -> np.ndarray:
    """A ``side`` x ``side`` grey image (uint8) of ``link`` as a QR code.

    Error correction "M" (15 % of the code may be lost); the code is enlarged by
    the largest whole factor that fits, the rest is white.

    Raises:
        ValueError: ``link`` is empty, or too long for ``side`` pixels.
    """
    if not link.strip():
        raise ValueError("a QR code needs a link; this one is empty")
    code = segno.make(link.strip(), error="m", micro=False)
    modules = np.array(code.matrix, dtype=bool)
    need = modules.shape[0] + 2 * QUIET_MODULES
    scale = side // need
    if scale < MIN_MODULE_PX:
        raise ValueError(
            f"the link is too long for a {side} px QR code: it needs at least "
            f"{need * MIN_MODULE_PX} px ({len(link)} characters); use a shorter link"
        )
    drawn = np.where(np.kron(modules, np.ones((scale, scale), bool)), 0, 255).astype(np.uint8)
    image = np.full((side, side), 255, np.uint8)
    at = (side - drawn.shape[0]) // 2
    image[at : at + drawn.shape[0], at : at + drawn.shape[1]] = drawn
    return image


def write_qr_png(link: str, dst: Path, side: int) -> Path:
    """Write :func:`qr_image` of ``link`` to ``dst`` (PNG), atomically.

    Raises:
        ValueError: As :func:`qr_image`.
    """
    ok, png = cv2.imencode(".png", qr_image(link, side))
    if not ok:  # pragma: no cover - OpenCV without a PNG encoder
        raise RuntimeError("OpenCV could not encode a PNG")
    with atomic_output(dst) as part:
        part.write_bytes(png.tobytes())
    return dst
