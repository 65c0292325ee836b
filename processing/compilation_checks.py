"""Checks on the rendered compilation; a failure fails the compile step."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from . import runner
from .config import Config
from .errors import ReelError
from .loudness import meter_filter, parse_ebur128, windows_loudness
from .probe import ffprobe_json, parse
from .timeline import Compilation, Segment
from .verify import scrub_check

#: Allowed difference between the file's duration and the sum of its segments.
DURATION_TOLERANCE = 0.1
#: How far a segment's loudness in the result may be from what it should be.
#: Silent segments (cards, clips with nothing above BS.1770's gate) are not measured.
LOUDNESS_TOLERANCE_LU = 1.0


class CheckFailed(ReelError):
    """The compilation did not pass its checks."""


def check_compilation(
    path: Path,
    comp: Compilation,
    cfg: Config,
    *,
    target_i: float | None = None,
    frame: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Verify ``path``; return the measurements, raise :class:`CheckFailed` on a problem.

    Args:
        path: The joined file.
        comp: What it should be (segments, their starts).
        cfg: Settings.
        target_i: A social rendition's loudness target: its segments are held
            to it, and so is the whole file's integrated loudness. None: the
            16:9 cut, held to ``loudness.target_i`` per segment.
        frame: The frame size it must have; ``[output]``'s by default.
    """
    fps = cfg.output.fps
    # One ffprobe for everything below, the scrub check's tags included.
    data = ffprobe_json(
        path, "-show_streams", "-show_format", "-show_chapters", "-show_entries",
        "stream_side_data", timeout=120,
    )  # fmt: skip
    want = frame or (cfg.output.width, cfg.output.height)
    problems, ends = _stream_problems(data, comp.duration, fps, want)
    duration, v_end, a_end = ends
    expected = comp.duration
    if not moov_before_mdat(path):
        problems.append("not fast-start (the index is after the media data)")
    if len(data.get("chapters", [])) != len(comp.segments):
        problems.append(
            f"{len(data.get('chapters', []))} chapters for {len(comp.segments)} segments"
        )

    # Its segments were each checked against their upload's tags; here the tags
    # ffprobe reads and any EXIF or XMP block in the file's bytes.
    problems += scrub_check(path, parse(path, data), ())

    loudness, integrated, loud_problems = _loudness_problems(path, comp, cfg, target_i)
    problems += loud_problems
    if problems:
        what = "The compilation" if target_i is None else f"The {want[0]}x{want[1]} rendition"
        raise CheckFailed(f"{what} failed its checks and was not published: " + "; ".join(problems))
    result = {
        "duration": duration,
        "expected_duration": round(expected, 3),
        "video_end": v_end,
        "audio_end": a_end,
        "segment_loudness": loudness,
        "frame": list(want),
        "scrub_check": "passed",
        "passed": True,
    }
    if integrated is not None:
        result["integrated"] = round(integrated, 2)
    return result


def _stream_problems(
    data: dict[str, Any], expected: float, fps: int, want: tuple[int, int]
) -> tuple[list[str], tuple[float, float, float]]:
    """What is wrong with the streams ffprobe saw, and (duration, video end, audio end)."""
    problems: list[str] = []
    video = next(s for s in data["streams"] if s["codec_type"] == "video")
    audio = next(s for s in data["streams"] if s["codec_type"] == "audio")
    duration = float(data["format"]["duration"])
    if abs(duration - expected) > DURATION_TOLERANCE:
        problems.append(f"duration {duration:.3f} s is not the segments' {expected:.3f} s")
    v_end = float(video.get("start_time", 0)) + float(video["duration"])
    a_end = float(audio.get("start_time", 0)) + float(audio["duration"])
    if abs(v_end - a_end) > 1 / fps:
        problems.append(f"audio ends at {a_end:.3f} s but video at {v_end:.3f} s")
    if (video["codec_name"], video.get("profile"), video["pix_fmt"]) != ("h264", "High", "yuv420p"):
        problems.append(f"video is {video['codec_name']} {video.get('profile')} {video['pix_fmt']}")
    if (video.get("width"), video.get("height")) != want:
        problems.append(
            f"frame is {video.get('width')}x{video.get('height')}, not {want[0]}x{want[1]}"
        )
    return problems, (duration, v_end, a_end)


def _loudness_problems(
    path: Path, comp: Compilation, cfg: Config, target_i: float | None
) -> tuple[list[dict[str, Any]], float | None, list[str]]:
    """Each audible segment's loudness in ``path``, the whole file's (social), and what is off.

    With ``target_i`` (a social rendition, raised from ``loudness.target_i``
    by the difference) the file's integrated loudness is measured too, in the
    same pass, and held to the target when every audible segment is.
    """
    # Every segment's loudness in the result, from one pass of the meter. With
    # crossfades the ends fade in and out: the window between the fades is
    # compared with the same window of the segment itself.
    fade = comp.crossfade
    gain = 0.0 if target_i is None else target_i - cfg.loudness.target_i
    audible = [seg for seg in comp.segments if not seg.silent]
    windows = [(seg.start + fade, seg.duration - 2 * fade) for seg in audible]
    loudness: list[dict[str, Any]] = []
    problems: list[str] = []
    whole = [(0.0, comp.duration)] if target_i is not None else []
    measured_all = windows_loudness(
        path, windows + whole, timeout=cfg.limits.timeout_for(comp.duration)
    )
    expected_all = []
    for seg, measured in zip(audible, measured_all, strict=False):
        if fade > 0:
            expected_i = segment_loudness(seg.path, fade, seg.duration - 2 * fade)
        else:
            expected_i = _expected_level(seg, cfg) + gain
        expected_all.append(expected_i)
        loudness.append({"id": seg.id, "integrated": round(measured, 2)})
        if abs(measured - expected_i) > LOUDNESS_TOLERANCE_LU:
            problems.append(
                f"segment {seg.label!r} at {seg.start:.1f} s measures {measured:.1f} LUFS"
            )
    integrated = measured_all[-1] if whole else None
    # Held to the target only when every audible segment is (none published quieter).
    if (
        target_i is not None
        and integrated is not None
        and audible
        and all(abs(e - target_i) < 1e-6 for e in expected_all)
        and abs(integrated - target_i) > LOUDNESS_TOLERANCE_LU
    ):
        problems.append(f"integrated loudness {integrated:.1f} LUFS, target {target_i:.1f}")
    return loudness, integrated, problems


def _expected_level(seg: Segment, cfg: Config) -> float:
    """The loudness target, or the level of a clip the pipeline could not raise to it.

    A clip under ``loudness.max_gain_db`` of gain short of the target was
    published quieter and flagged; it is held to the level it was published at,
    so the check still catches an assembly that changes it.
    """
    target = cfg.loudness.target_i
    if seg.level is not None and seg.level < target - LOUDNESS_TOLERANCE_LU:
        return seg.level
    return target


def segment_loudness(path: Path, start: float, duration: float) -> float:
    """Integrated loudness of ``duration`` seconds of ``path`` from ``start``."""
    _, stderr = runner.run(
        ["-ss", f"{start:.6f}", "-t", f"{duration:.6f}", "-i", runner.input_path(path),
         "-map", "0:a:0", "-af", meter_filter(), "-f", "null", "-"],
        timeout=120,
    )  # fmt: skip
    m = parse_ebur128(stderr)
    return m.integrated if m else float("-inf")


def moov_before_mdat(path: Path) -> bool:
    """Whether the MP4 index comes before the media data (a browser can start at once)."""
    with path.open("rb") as fh:
        while True:
            head = fh.read(8)
            if len(head) < 8:
                return False
            size, kind = struct.unpack(">I4s", head)
            if kind == b"moov":
                return True
            if kind == b"mdat":
                return False
            if size == 1:
                size = struct.unpack(">Q", fh.read(8))[0] - 8
            elif size == 0:
                return False
            fh.seek(size - 8, 1)
