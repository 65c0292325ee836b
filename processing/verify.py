"""Check a rendered file: conformance to the output spec, and no identifying tags.

Metadata is checked against an allow-list, not a block-list: any tag we did not
expect (location, device, software, dates, or something new a phone invents)
fails the check.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

from .config import Config
from .probe import MediaInfo

#: Tags ffmpeg's MP4 muxer writes on its own; none says anything about a contributor.
ALLOWED_TAGS: dict[str, set[str] | None] = {
    "major_brand": None,
    "minor_version": None,
    "compatible_brands": None,
    # SubtitleHandler/eng: the QuickTime chapter track the muxer adds for chapters.
    "handler_name": {"VideoHandler", "SoundHandler", "SubtitleHandler"},
    "vendor_id": {"[0][0][0][0]"},
    "language": {"und", "eng"},
    # The MP4 sample description's compressor-name field; ffmpeg 5.1 always fills it
    # with *our* encoder's name (versionless under +bitexact). Never the contributor's.
    "encoder": {"Lavc libx264"},
}


def scrub_problems(info: MediaInfo, *, values: bool = True) -> list[str]:
    """Every tag that should not be there, as ``name=value`` strings.

    Args:
        info: The probed file.
        values: Give each tag's value too. Off for messages that reach a report
            or a log: the value is what must not leak (a location, a device).
    """
    bad = []
    for name, value in info.tags:
        allowed = ALLOWED_TAGS.get(name.lower(), set())
        if allowed is not None and value not in allowed:
            bad.append(f"{name}={value[:80]}" if values else name)
    return bad


#: A tag value shorter than this is not searched for in an output's bytes:
#: ``eng``, ``90`` or ``1`` occur in any file by chance.
MIN_SEARCHED_CHARS = 5
#: What a metadata block starts with, wherever it was hidden: EXIF (GPS,
#: camera) and XMP packets. ffprobe shows neither when they sit in a box it skips.
METADATA_MARKERS: dict[str, bytes] = {
    "EXIF block": b"Exif\x00\x00",
    "XMP packet": b"<?xpacket",
    "XMP metadata": b"<x:xmpmeta",
}
_CHUNK = 1 << 20


def scrub_check(path: Path, info: MediaInfo, upload_tags: Iterable[tuple[str, str]]) -> list[str]:
    """Everything identifying left in the rendered file ``path`` (empty when clean).

    Two looks, so that a tag ffprobe does not show still counts: the tags ffprobe
    reads (:func:`scrub_problems`), and every byte of the file searched for each
    value the upload's own tags carried (location, device, dates) and for an
    EXIF or XMP block. Values are never named, only the tags they came from.

    Args:
        path: The rendered file.
        info: Its probe.
        upload_tags: The upload's tags, ``(name, value)``, as :attr:`MediaInfo.tags`.
    """
    problems = [f"identifying tag left in output: {t}" for t in scrub_problems(info, values=False)]
    needles = list(METADATA_MARKERS.items())
    for name, value in upload_tags:
        allowed = ALLOWED_TAGS.get(name.lower(), set())
        if allowed is None or value in allowed or len(value.strip()) < MIN_SEARCHED_CHARS:
            continue  # what the muxer itself writes in every output, or too short to mean anything
        needles.append((f"the upload's {name} tag", value.strip().encode("utf-8")))
    return problems + [f"{what} found in the output's bytes" for what in bytes_found(path, needles)]


def bytes_found(path: Path, needles: list[tuple[str, bytes]]) -> list[str]:
    """The names of the ``(name, bytes)`` needles whose bytes occur anywhere in ``path``.

    The file is read in 1 MiB chunks that overlap by the longest needle, so a
    value split across two chunks is still found and memory stays flat.
    """
    if not needles:
        return []
    overlap = max(len(n) for _, n in needles) - 1
    found: list[str] = []
    tail = b""
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            window = tail + chunk
            found += [k for k, n in needles if k not in found and n in window]
            tail = window[-overlap:] if overlap else b""
    return found


def conformance_problems(info: MediaInfo, cfg: Config, expected_duration: float) -> list[str]:
    """What differs from the output spec (empty when the file conforms)."""
    out = cfg.output
    problems = []
    v, a = info.video, info.audio
    if v is None:
        return ["no video stream"]
    if a is None:
        problems.append("no audio stream")
    expect = {
        "video codec": (v.codec, "h264"),
        "video profile": (v.profile, "High"),
        "pixel format": (v.pix_fmt, "yuv420p"),
        "frame size": ((v.width, v.height), (out.width, out.height)),
        "sample aspect ratio": (v.sar, Fraction(1)),
        "frame rate": (v.frame_rate, Fraction(out.fps)),
        "rotation": (v.rotation, 0),
    }
    if a is not None:
        expect |= {
            "audio codec": (a.codec, "aac"),
            "sample rate": (a.sample_rate, out.sample_rate),
            "channels": (a.channels, 2),
        }
    for what, (got, want) in expect.items():
        if got != want:
            problems.append(f"{what} is {got}, expected {want}")
    if abs(info.duration - expected_duration) > 1.5 / out.fps + 0.05:
        problems.append(f"duration is {info.duration:.3f} s, expected {expected_duration:.3f} s")
    return problems


#: JPEG segments that say nothing about who, where or with what: JFIF header,
#: ICC colour profile, Adobe colour transform. Everything else (Exif with GPS,
#: camera and time; XMP; IPTC; comments; maker segments) is a problem.
_JPEG_ALLOWED = {0xE0: "JFIF", 0xE2: "ICC profile", 0xEE: "Adobe"}
#: PNG chunks that only describe pixels. Text (tEXt, zTXt, iTXt), eXIf and tIME are not.
_PNG_ALLOWED = {
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP",
    b"pHYs", b"sBIT", b"bKGD",
}  # fmt: skip


def image_metadata_problems(data: bytes) -> list[str]:
    """Every metadata segment of a JPEG or PNG image (posters, contact sheets, thumbnails).

    An allow-list like :data:`ALLOWED_TAGS`: anything that is not picture data
    or a colour description is reported, as is an image in another format.

    Args:
        data: The image file's bytes.

    Returns:
        Human-readable problems; empty when the image carries nothing else.
    """
    if data[:2] == b"\xff\xd8":
        return _jpeg_problems(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return _png_problems(data)
    return ["not a JPEG or PNG image: its metadata cannot be checked"]


def _jpeg_problems(data: bytes) -> list[str]:
    problems: list[str] = []
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return [*problems, f"JPEG structure broken at byte {pos}"]
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xDA:  # start of scan: only entropy-coded picture data follows
            return problems
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        segment = data[pos + 4 : pos + 2 + length]
        if marker == 0xFE:
            problems.append(f"JPEG comment {segment[:40]!r}")
        elif 0xE0 <= marker <= 0xEF and marker not in _JPEG_ALLOWED:
            problems.append(f"JPEG APP{marker - 0xE0} segment {segment[:12]!r}")
        pos += 2 + length
    return [*problems, "JPEG ends before its picture data"]


def _png_problems(data: bytes) -> list[str]:
    problems: list[str] = []
    pos = 8
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        if kind not in _PNG_ALLOWED:
            problems.append(f"PNG {kind.decode('latin-1')} chunk")
        if kind == b"IEND":
            return problems
        pos += 12 + length
    return [*problems, "PNG ends before its IEND chunk"]
