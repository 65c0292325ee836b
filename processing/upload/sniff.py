"""Which video container a file is, from its first bytes (never from its name or type).

A phone sends MP4 or QuickTime (an ISO-BMFF ``ftyp`` box), WebM (Matroska's
EBML header), sometimes 3GP (also ``ftyp``), rarely AVI or MPEG-TS. Anything
else (a text file renamed ``.mp4``, a photo, a PDF) is refused before more of
it is stored. The extension given to a finished upload comes from here.
"""

from __future__ import annotations

#: Bytes needed to decide (an MPEG-TS stream needs its second sync byte at 188).
NEEDED = 189

#: ISO-BMFF brands of still images (HEIC, AVIF): an ``ftyp`` box, but not a video.
_IMAGE_BRANDS = {b"heic", b"heix", b"mif1", b"msf1", b"avif", b"avis", b"heim", b"heis"}
#: QuickTime files written before ``ftyp`` existed start with one of these atoms.
_QT_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}


def container(head: bytes) -> str | None:
    """The file extension for a video whose first bytes are ``head``, or None.

    Args:
        head: The first :data:`NEEDED` bytes (fewer if the file is shorter).

    Returns:
        ``"mp4"``, ``"mov"``, ``"3gp"``, ``"webm"``, ``"mkv"``, ``"avi"`` or ``"ts"``;
        None when the bytes are not a video container.
    """
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _IMAGE_BRANDS:
            return None
        if brand == b"qt  ":
            return "mov"
        return "3gp" if brand.startswith(b"3g") else "mp4"
    if len(head) >= 8 and head[4:8] in _QT_ATOMS:
        return "mov"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm" if b"webm" in head[:64] else "mkv"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if len(head) >= NEEDED and head[0] == 0x47 and head[188] == 0x47:
        return "ts"
    return None
