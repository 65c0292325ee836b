"""Check a rendered file: conformance to the output spec, and no identifying tags.

Metadata is checked against an allow-list, not a block-list: any tag we did not
expect (location, device, software, dates, or something new a phone invents)
fails the check.
"""

from __future__ import annotations

from fractions import Fraction

from .config import Config
from .probe import MediaInfo

#: Tags ffmpeg's MP4 muxer writes on its own; none says anything about a contributor.
ALLOWED_TAGS: dict[str, set[str] | None] = {
    "major_brand": None,
    "minor_version": None,
    "compatible_brands": None,
    "handler_name": {"VideoHandler", "SoundHandler"},
    "vendor_id": {"[0][0][0][0]"},
    "language": {"und"},
    # The MP4 sample description's compressor-name field; ffmpeg 5.1 always fills it
    # with *our* encoder's name (versionless under +bitexact). Never the contributor's.
    "encoder": {"Lavc libx264"},
}


def scrub_problems(info: MediaInfo) -> list[str]:
    """Every tag that should not be there, as ``name=value`` strings."""
    bad = []
    for name, value in info.tags:
        allowed = ALLOWED_TAGS.get(name.lower(), set())
        if allowed is not None and value not in allowed:
            bad.append(f"{name}={value[:80]}")
    return bad


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
