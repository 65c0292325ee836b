"""Media fixtures with known ground truth, generated with ffmpeg's lavfi sources.

Every ``make_*`` function writes exactly one file and returns its path. Video
content is ``testsrc2`` (colour bars, moving gradient line, noise patch, running
clock) or another moving lavfi source, never a flat colour; audio is a
speech-like voice (a gliding ~140 Hz harmonic tone with a little breath noise,
amplitude-modulated at ~3.6 syllables per second and slower phrase swells) set
to a chosen integrated loudness.

Ground truth the tests can rely on:

* Loudness: the generated audio is measured with ``ebur128`` before encoding
  and scaled so that the file's integrated loudness is ``lufs`` (within about
  0.5 LU after AAC/Opus encoding).
* Sync marker (``sync_marker=True``): exactly one completely white frame whose
  timestamp is :data:`SYNC_AT` (2.0 s), and a :data:`BEEP_HZ` (1 kHz) beep of
  :data:`BEEP_SECONDS` starting at exactly :data:`SYNC_AT`. The voice pauses
  (ducks by 20 dB) around the beep and has almost no energy near 1 kHz, so
  :func:`tests.measure.av_offset` finds both events unambiguously.
* Rotation: :func:`make_portrait_rotated` stores a 1280x720 picture with a
  display matrix for a 90 degree clockwise turn (ffprobe: ``rotation: -90``,
  exactly what an iPhone writes). Shown correctly it is portrait with a red
  band on top and a blue band at the bottom.

ffmpeg 5.1 quirks these generators work around:

* ``-metadata:s:v:0 rotate=N`` is silently dropped when the stream is
  *encoded*; it is only turned into a display matrix on stream copy. So
  rotation is applied by a second, ``-c copy`` remux.
* On that copy path a ``rotate=N`` tag becomes a display matrix that ffprobe
  reports as ``rotation: N`` -- counter-clockwise, the opposite of the
  historical meaning of the tag. A clockwise turn of 90 therefore needs
  ``rotate=270``; see :func:`set_display_rotation`.
* In WebM, ffmpeg 5.1 writes the VP9 track from +7 ms and the Opus track
  from -7 ms (Opus codec delay): sync-marker WebM clips are ~7 ms audio-early.
* A YUV4MPEG2 header of W100000 H100000 is refused by libavutil
  (``Picture size 100000x100000 is invalid``; (w+128)*(h+128) must stay below
  INT_MAX/8), so ffprobe reports nothing at all. :func:`make_huge_dimensions`
  therefore defaults to 100000x2000, which ffprobe does report.

All ffmpeg calls go through :func:`processing.runner.run`.
"""

from __future__ import annotations

import contextlib
import functools
import random
import re
import shutil
import struct
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from processing import runner
from processing.probe import ffprobe_json

__all__ = [
    "BEEP_HZ",
    "BEEP_SECONDS",
    "CONTENT_SOURCES",
    "LOCATION_STREAM_TAGS",
    "LOCATION_TAGS",
    "SYNC_AT",
    "copy_file",
    "corrupt_bytes",
    "make_anamorphic",
    "make_audio_only",
    "make_bitflipped",
    "make_clip",
    "make_empty",
    "make_hdr",
    "make_hevc_10bit",
    "make_huge_dimensions",
    "make_image_as_mp4",
    "make_portrait_rotated",
    "make_text_as_mp4",
    "make_too_short",
    "make_truncated",
    "make_truncated_faststart",
    "make_vfr",
    "make_webm",
    "make_with_location_tags",
    "mp4_boxes",
    "set_display_rotation",
    "truncate_bytes",
]

TIMEOUT = 120.0

#: Time (s) of the white flash frame and of the beep onset in sync-marker clips.
SYNC_AT = 2.0
#: Beep frequency (Hz) and length (s).
BEEP_HZ = 1000.0
BEEP_SECONDS = 0.1
#: Beep amplitude relative to the voice's (un-normalized) peak of about 0.33.
_BEEP_AMPLITUDE = 0.6

AudioLayout = Literal["mono", "stereo", "5.1"]

#: lavfi video sources by name; formatted with ``w``, ``h``, ``fps`` and ``d``.
CONTENT_SOURCES: dict[str, str] = {
    "testsrc2": "testsrc2=s={w}x{h}:r={fps}:d={d}",
    "gradients": "gradients=s={w}x{h}:r={fps}:d={d}:speed=0.03:n=4",
    "life": (
        "life=s={w}x{h}:r={fps}:mold=10:ratio=0.1:death_color=#203040:"
        "life_color=#e0c080,trim=duration={d},gblur=2"
    ),
    "mandelbrot": "mandelbrot=s={w}x{h}:r={fps},trim=duration={d}",
}

#: Container tags :func:`make_with_location_tags` writes (what an iPhone leaves behind).
LOCATION_TAGS: dict[str, str] = {
    "location": "+48.8577+002.2950/",
    "com.apple.quicktime.location.ISO6709": "+48.8577+002.2950+035.000/",
    "make": "Apple",
    "model": "iPhone 14 Pro",
    "creation_time": "2027-03-01T10:00:00Z",
}
#: Stream tags :func:`make_with_location_tags` writes to MP4/MOV, which can only
#: carry a few stream tags (``creation_time`` in mdhd, ``handler_name``,
#: ``language``). Matroska (.mkv) drops stream ``creation_time`` but keeps any
#: other tag, so there the location keys go on every stream instead.
LOCATION_STREAM_TAGS: dict[str, str] = {
    "creation_time": "2027-03-01T10:00:00Z",
}

_MP4_SUFFIXES = {".mp4", ".mov", ".m4v", ".m4a", ".3gp"}

# --------------------------------------------------------------------------- audio


def _voice_expr(*, sync_marker: bool) -> str:
    """An ``aevalsrc`` expression for a mono speech-like signal (peak ~0.33).

    f0 glides 110..170 Hz (phase integrated analytically), five harmonics with a
    1/k roll-off (nothing above ~850 Hz), syllable envelope at 3.6 Hz times a
    0.37 Hz phrase swell, plus a little white "breath" noise. With
    ``sync_marker`` the voice ducks by 20 dB around :data:`SYNC_AT` and a 1 kHz
    beep starts at exactly :data:`SYNC_AT` (sample-exact at 48 kHz).
    """
    phase = "st(0,2*PI*140*t-42.857*cos(2*PI*0.7*t))"
    env = "st(1,pow(0.5+0.5*sin(2*PI*3.6*t),2)*(0.55+0.45*sin(2*PI*0.37*t+1)))"
    harmonics = "+".join(
        f"{1 / k:.3f}*sin({k}*ld(0))" if k > 1 else "sin(ld(0))" for k in range(1, 6)
    )
    voice = f"0.2*ld(1)*({harmonics})+0.03*ld(1)*(2*random(2)-1)"
    if not sync_marker:
        return f"{phase};{env};{voice}"
    # Smooth super-Gaussian duck (no clicks) centred on the beep, ~0.3 s each side.
    mid = SYNC_AT + BEEP_SECONDS / 2
    duck = f"(1-0.9*exp(-pow((t-{mid})/0.3,4)))"
    beep = (
        f"gte(t,{SYNC_AT})*lt(t,{SYNC_AT + BEEP_SECONDS})*"
        f"{_BEEP_AMPLITUDE}*sin(2*PI*{BEEP_HZ}*(t-{SYNC_AT}))"
    )
    return f"{phase};{env};{duck}*({voice})+{beep}"


_PAN = {
    "mono": None,
    "stereo": "pan=stereo|c0=c0|c1=c0",
    # Voice mostly in the centre, some in the fronts, a little ambience behind.
    "5.1": "pan=5.1|FL=0.5*c0|FR=0.5*c0|FC=c0|LFE=0.2*c0|BL=0.15*c0|BR=0.15*c0",
}


def _audio_graph(layout: AudioLayout, duration: float, sync_marker: bool, gain_db: float) -> str:
    if layout not in _PAN:
        raise ValueError(f"audio must be one of {sorted(_PAN)} or None, not {layout!r}")
    expr = _voice_expr(sync_marker=sync_marker)
    chain = [f"aevalsrc='{expr}':c=mono:s=48000:d={duration:g}"]
    pan = _PAN[layout]
    if pan:
        chain.append(pan)
    chain.append(f"volume={gain_db:.2f}dB")
    return ",".join(chain)


_SUMMARY_I = re.compile(r"Integrated loudness:\s*I:\s*(-?[\d.]+|-inf)\s*LUFS", re.S)


@functools.lru_cache(maxsize=64)
def _raw_loudness(layout: AudioLayout, duration: float, sync_marker: bool) -> float:
    """Integrated loudness (LUFS) of the un-normalized voice, measured once per shape."""
    graph = _audio_graph(layout, duration, sync_marker, 0.0)
    _, err = runner.run(
        [
            "-nostats", "-f", "lavfi", "-i", graph,
            "-af", "ebur128=framelog=verbose", "-f", "null", "-",
        ],
        timeout=TIMEOUT,
    )  # fmt: skip
    summary = err[err.rfind("Summary:") :]
    m = _SUMMARY_I.search(summary)
    value = float(m.group(1)) if m else float("-inf")
    return value if value > -70 else -24.0  # too short to gate: assume the nominal level


def _audio_input(layout: AudioLayout, duration: float, sync_marker: bool, lufs: float) -> str:
    gain = lufs - _raw_loudness(layout, duration, sync_marker)
    return _audio_graph(layout, duration, sync_marker, gain)


# --------------------------------------------------------------------------- video


def _video_codec_args(
    vcodec: str, suffix: str, crf: int | None, preset: str | None, x265_params: str = ""
) -> list[str]:
    args = ["-c:v", vcodec]
    if vcodec == "libx264":
        args += ["-preset", preset or "ultrafast", "-crf", str(crf if crf is not None else 23)]
    elif vcodec == "libx265":
        args += ["-preset", preset or "ultrafast", "-crf", str(crf if crf is not None else 28)]
        args += ["-x265-params", ":".join(filter(None, ["log-level=error", x265_params]))]
        if suffix in _MP4_SUFFIXES:
            args += ["-tag:v", "hvc1"]  # what Apple writes; plays in QuickTime/Safari
    elif vcodec == "libvpx-vp9":
        args += ["-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1"]
        args += ["-b:v", "0", "-crf", str(crf if crf is not None else 34)]
    elif crf is not None:
        args += ["-crf", str(crf)]
    return args


def _default_acodec(suffix: str) -> str:
    if suffix in {".webm", ".ogg", ".opus"}:
        return "libopus"
    if suffix == ".avi":
        return "libmp3lame"
    return "aac"


def _flash(fps: float, at: float = SYNC_AT) -> str:
    """A drawbox that paints the single frame at ``at`` (counted in frames) white."""
    n = round(at * fps)
    return f"drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:enable='eq(n,{n})'"


def _encode(
    path: Path,
    *,
    duration: float,
    size: tuple[int, int] | None,
    fps: float,
    vcodec: str,
    pix_fmt: str,
    audio: AudioLayout | None,
    sync_marker: bool,
    lufs: float,
    content: str = "testsrc2",
    pre_filters: tuple[str, ...] = (),
    post_filters: tuple[str, ...] = (),
    video_args: tuple[str, ...] = (),
    tags: Mapping[str, str] | None = None,
    stream_tags: Mapping[str, str] | None = None,
    faststart: bool = False,
    crf: int | None = None,
    preset: str | None = None,
    acodec: str | None = None,
    audio_bitrate: str = "96k",
    x265_params: str = "",
) -> Path:
    """Build and run one ffmpeg command; see :func:`make_clip` for the arguments.

    ``pre_filters`` run on the raw content (before the flash), ``post_filters``
    after it (then ``format=pix_fmt``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if sync_marker and duration < SYNC_AT + BEEP_SECONDS + 0.2:
        raise ValueError(f"a sync-marker clip must last more than {SYNC_AT + 0.3:g} s")
    args: list[str] = ["-y", "-v", "error"]
    n_inputs = 0
    if size is not None:
        w, h = size
        src = CONTENT_SOURCES.get(content, content).format(w=w, h=h, fps=fps, d=f"{duration:g}")
        args += ["-f", "lavfi", "-i", src]
        n_inputs += 1
    if audio is not None:
        args += ["-f", "lavfi", "-i", _audio_input(audio, duration, sync_marker, lufs)]
        n_inputs += 1
    if n_inputs == 0:
        raise ValueError("a file needs video (size) or audio")
    a_index = n_inputs - 1
    if size is not None:
        filters = [*pre_filters]
        if sync_marker:
            filters.append(_flash(fps))
        filters += [*post_filters, f"format={pix_fmt}"]
        args += ["-map", "0:v:0", "-vf", ",".join(filters)]
        args += _video_codec_args(vcodec, suffix, crf, preset, x265_params)
        args += [*video_args]
    if audio is not None:
        args += ["-map", f"{a_index}:a:0", "-c:a", acodec or _default_acodec(suffix)]
        args += ["-b:a", audio_bitrate]
    movflags = []
    if suffix in _MP4_SUFFIXES:
        if faststart:
            movflags.append("+faststart")
        if tags:
            # Without this the mp4 muxer keeps only iTunes-style keys (title, artist…).
            movflags.append("+use_metadata_tags")
    if movflags:
        args += ["-movflags", "".join(movflags)]
    for key, value in (tags or {}).items():
        args += ["-metadata", f"{key}={value}"]
    for key, value in (stream_tags or {}).items():
        args += ["-metadata:s", f"{key}={value}"]
    args += ["-t", f"{duration:g}", runner.input_path(path)]
    runner.run(args, timeout=TIMEOUT)
    return path


def make_clip(
    path: Path,
    *,
    duration: float = 4.0,
    size: tuple[int, int] | None = (1280, 720),
    fps: float = 30,
    vcodec: str = "libx264",
    pix_fmt: str = "yuv420p",
    audio: AudioLayout | None = "stereo",
    sync_marker: bool = False,
    tags: Mapping[str, str] | None = None,
    stream_tags: Mapping[str, str] | None = None,
    lufs: float = -24.0,
    content: str = "testsrc2",
    crf: int | None = None,
    preset: str | None = None,
    faststart: bool = False,
    acodec: str | None = None,
) -> Path:
    """Write a synthetic clip; the container is chosen by the file suffix.

    Args:
        path: Output file (.mp4, .mov, .mkv, .webm, .avi …).
        duration: Length in seconds.
        size: Coded ``(width, height)``; ``None`` for an audio-only file.
        fps: Constant frame rate.
        vcodec: ffmpeg encoder name (``libx264``, ``libx265``, ``libvpx-vp9`` get
            fast settings automatically).
        pix_fmt: Pixel format handed to the encoder.
        audio: ``"mono"``, ``"stereo"``, ``"5.1"`` or ``None`` for no audio track.
            AAC in MP4/MOV/MKV, Opus in WebM.
        sync_marker: Add one white frame at :data:`SYNC_AT` and a 1 kHz beep
            starting at exactly :data:`SYNC_AT` (voice ducked around it).
        tags: Container tags (``-metadata``); for MP4/MOV ``use_metadata_tags``
            is switched on so that arbitrary keys survive.
        stream_tags: Tags for every stream (``-metadata:s``). MP4/MOV keep only
            ``creation_time``, ``handler_name`` and ``language``; MKV keeps all.
        lufs: Integrated loudness of the audio (measured and set, ±0.5 LU).
        content: A key of :data:`CONTENT_SOURCES` or a lavfi source string with
            ``{w} {h} {fps} {d}`` placeholders.
        crf: Constant-quality value (encoder default-ish when ``None``).
        preset: x264/x265 preset (``ultrafast`` when ``None``).
        faststart: Put the MP4 index (moov) before the media data.
        acodec: Audio encoder, overriding the choice by suffix.

    Returns:
        ``path``.
    """
    return _encode(
        path,
        duration=duration,
        size=size,
        fps=fps,
        vcodec=vcodec,
        pix_fmt=pix_fmt,
        audio=audio,
        sync_marker=sync_marker,
        lufs=lufs,
        content=content,
        tags=tags,
        stream_tags=stream_tags,
        faststart=faststart,
        crf=crf,
        preset=preset,
        acodec=acodec,
    )


def set_display_rotation(src: Path, dst: Path, clockwise: int) -> Path:
    """Copy ``src`` to ``dst`` (MP4/MOV) with a display matrix turning the picture.

    ffmpeg 5.1 only honours ``-metadata:s:v:0 rotate=N`` on stream copy, and
    writes it as an anticlockwise matrix (ffprobe ``rotation: N``), so a
    clockwise turn is requested as ``rotate=360-clockwise``.

    Args:
        src: An MP4/MOV file without rotation.
        dst: Output path.
        clockwise: Degrees (0, 90, 180, 270) a player must turn the stored
            picture clockwise to show it upright.

    Returns:
        ``dst``.
    """
    if clockwise % 90:
        raise ValueError("rotation must be a multiple of 90 degrees")
    tag = (360 - clockwise) % 360
    runner.run(
        [
            "-y", "-v", "error", "-noautorotate", "-i", runner.input_path(src),
            "-map", "0", "-c", "copy", "-metadata:s:v:0", f"rotate={tag}",
            runner.input_path(dst),
        ],
        timeout=TIMEOUT,
    )  # fmt: skip
    return Path(dst)


@contextlib.contextmanager
def _scratch(suffix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="mediagen-") as tmp:
        yield Path(tmp) / f"scratch{suffix}"


def make_portrait_rotated(
    path: Path,
    duration: float = 4,
    *,
    size: tuple[int, int] = (720, 1280),
    audio: AudioLayout | None = "stereo",
    sync_marker: bool = False,
    lufs: float = -24.0,
    crf: int | None = None,
    preset: str | None = None,
) -> Path:
    """A phone-style portrait clip stored landscape with a 90° display matrix.

    The picture is designed as ``size`` (portrait): desaturated ``testsrc2``
    with a solid red band over the top 10 % and a solid blue band over the
    bottom 10 %. It is stored turned a quarter anticlockwise (coded
    ``height x width``, e.g. 1280x720, red band on the left) with a display
    matrix for a 90° clockwise turn (ffprobe ``rotation: -90``, like an
    iPhone). A correct player shows it portrait, red on top.

    Args:
        path: Output .mp4 or .mov file.
        duration: Length in seconds.
        size: Displayed ``(width, height)``, portrait.
        audio: Audio layout or ``None``.
        sync_marker: Add the flash/beep sync marker.
        lufs: Audio loudness.
        crf: Constant-quality value.
        preset: x264 preset.

    Returns:
        ``path``.
    """
    w, h = size
    band = (
        "drawbox=x=0:y=0:w=iw:h=ih/10:color=red:t=fill,"
        "drawbox=x=0:y=ih*9/10:w=iw:h=ih/10:color=blue:t=fill"
    )
    path = Path(path)
    with _scratch(path.suffix) as tmp:
        _encode(
            tmp,
            duration=duration,
            size=(w, h),
            fps=30,
            vcodec="libx264",
            pix_fmt="yuv420p",
            audio=audio,
            sync_marker=sync_marker,
            lufs=lufs,
            pre_filters=("hue=s=0", band),
            post_filters=("transpose=cclock",),
            crf=crf,
            preset=preset,
        )
        return set_display_rotation(tmp, path, 90)


def make_vfr(
    path: Path,
    duration: float = 6,
    *,
    size: tuple[int, int] = (640, 360),
    audio: AudioLayout | None = "stereo",
    lufs: float = -24.0,
) -> Path:
    """A genuinely variable-frame-rate clip with the sync marker.

    Rendered at 60 fps, then more than half the frames are dropped in an
    irregular pattern (two interleaved patterns of period 17 and 13 frames:
    frame intervals of 1, 2, 3, 5, 7 and 9 sixtieths of a second) and written
    with ``-fps_mode vfr``: for the default 6 s, 162 frames, ffprobe reports
    ``r_frame_rate`` 60/1 and ``avg_frame_rate`` 27/1. The white flash frame at
    :data:`SYNC_AT` (frame 120 at 60 fps) and the first frame are always kept.

    Args:
        path: Output .mp4/.mov/.mkv file.
        duration: Length in seconds.
        size: Frame size.
        audio: Audio layout (carries the beep) or ``None``.
        lufs: Audio loudness.

    Returns:
        ``path``.
    """
    fps = 60
    flash_n = round(SYNC_AT * fps)
    keep = f"select='eq(n,0)+eq(n,{flash_n})+lt(mod(n*n*7+n*3,17),9)*lt(mod(n*5,13),10)'"
    return _encode(
        path,
        duration=duration,
        size=size,
        fps=fps,
        vcodec="libx264",
        pix_fmt="yuv420p",
        audio=audio,
        sync_marker=True,
        lufs=lufs,
        post_filters=(keep,),
        video_args=("-fps_mode", "vfr"),
    )


_HDR_TRANSFER = {"pq": "smpte2084", "hlg": "arib-std-b67"}


def make_hdr(
    path: Path,
    transfer: Literal["pq", "hlg"] = "pq",
    duration: float = 3,
    *,
    size: tuple[int, int] = (640, 360),
    audio: AudioLayout | None = "stereo",
    lufs: float = -24.0,
) -> Path:
    """10-bit HEVC HDR (Main 10, ``hvc1``) in MP4, properly converted.

    ``testsrc2`` is converted from BT.709 to BT.2020 primaries and the PQ
    (``smpte2084``) or HLG (``arib-std-b67``) transfer with zscale, SDR white at
    203 cd/m² (BT.2408 reference white), so a tone-mapper has real HDR signal to
    work on. Tagged bt2020 / bt2020nc / transfer in the stream and the ``colr``
    box; PQ also carries mastering-display and content-light-level SEI.

    Args:
        path: Output .mp4 file.
        transfer: ``"pq"`` or ``"hlg"``.
        duration: Length in seconds.
        size: Frame size.
        audio: Audio layout or ``None``.
        lufs: Audio loudness.

    Returns:
        ``path``.
    """
    trc = _HDR_TRANSFER[transfer]
    x265 = ""
    if transfer == "pq":
        x265 = (
            "hdr10=1:master-display=G(13250,34500)B(7500,3000)R(34000,16000)"
            "WP(15635,16450)L(10000000,50):max-cll=1000,400"
        )
    convert = (
        "format=yuv420p,setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709:"
        "range=tv,zscale=t=linear:npl=203,format=gbrpf32le,"
        f"zscale=p=bt2020:t={trc}:m=bt2020nc:r=tv:npl=203"
    )
    color = ["-color_primaries", "bt2020", "-color_trc", trc, "-colorspace", "bt2020nc"]
    return _encode(
        path,
        duration=duration,
        size=size,
        fps=30,
        vcodec="libx265",
        pix_fmt="yuv420p10le",
        audio=audio,
        sync_marker=False,
        lufs=lufs,
        pre_filters=(convert,),
        video_args=(*color, "-color_range", "tv"),
        x265_params=x265,
    )


def make_hevc_10bit(
    path: Path,
    duration: float = 3,
    *,
    size: tuple[int, int] = (640, 360),
    audio: AudioLayout | None = "stereo",
) -> Path:
    """10-bit HEVC (Main 10, ``hvc1``) that is *not* HDR: tagged BT.709 throughout.

    Args:
        path: Output .mp4 file.
        duration: Length in seconds.
        size: Frame size.
        audio: Audio layout or ``None``.

    Returns:
        ``path``.
    """
    color = ["-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709"]
    return _encode(
        path,
        duration=duration,
        size=size,
        fps=30,
        vcodec="libx265",
        pix_fmt="yuv420p10le",
        audio=audio,
        sync_marker=False,
        lufs=-24.0,
        video_args=(*color, "-color_range", "tv"),
    )


def make_webm(
    path: Path,
    duration: float = 4,
    *,
    size: tuple[int, int] = (640, 360),
    audio: AudioLayout | None = "stereo",
    sync_marker: bool = False,
    lufs: float = -24.0,
    content: str = "testsrc2",
    crf: int | None = None,
) -> Path:
    """VP9 video and Opus audio in WebM (what browsers' MediaRecorder produce).

    ffmpeg 5.1 starts the VP9 track at 7 ms and the Opus track at -7 ms (its
    codec delay), so with ``sync_marker`` :func:`tests.measure.av_offset`
    reads about -7 ms (audio early) on the unprocessed file, well inside a frame.

    Args:
        path: Output file; should end in .webm.
        duration: Length in seconds.
        size: Frame size.
        audio: Audio layout or ``None``.
        sync_marker: Add the flash/beep sync marker.
        lufs: Audio loudness.
        content: Video source (see :func:`make_clip`).
        crf: VP9 constant quality (0-63).

    Returns:
        ``path``.
    """
    return make_clip(
        path,
        duration=duration,
        size=size,
        vcodec="libvpx-vp9",
        audio=audio,
        sync_marker=sync_marker,
        lufs=lufs,
        content=content,
        crf=crf,
        acodec="libopus",
    )


def make_anamorphic(
    path: Path,
    duration: float = 3,
    *,
    sar: tuple[int, int] = (16, 15),
    audio: AudioLayout | None = "stereo",
) -> Path:
    """PAL-style 720x576 at 25 fps with non-square pixels.

    Content is drawn square-pixel at the display width (768 for SAR 16:15, 1024
    for 64:45) and squeezed to 720 wide, so it looks right only when the SAR is
    honoured: display aspect 4:3 for 16:15, 16:9 for 64:45.

    Args:
        path: Output file.
        duration: Length in seconds.
        sar: Sample (pixel) aspect ratio.
        audio: Audio layout or ``None``.

    Returns:
        ``path``.
    """
    num, den = sar
    display_w = round(720 * num / den / 2) * 2
    return _encode(
        path,
        duration=duration,
        size=(display_w, 576),
        fps=25,
        vcodec="libx264",
        pix_fmt="yuv420p",
        audio=audio,
        sync_marker=False,
        lufs=-24.0,
        post_filters=("scale=720:576", f"setsar={num}/{den}"),
    )


def make_with_location_tags(path: Path, duration: float = 2) -> Path:
    """A clip carrying GPS location, device and time metadata, as phones write it.

    Container tags: :data:`LOCATION_TAGS` (``location``,
    ``com.apple.quicktime.location.ISO6709``, ``make``, ``model``,
    ``creation_time``); in MP4/MOV they are written as QuickTime ``mdta`` keys
    (``use_metadata_tags``) and ``location`` also as the ``©xyz`` atom, which
    ffprobe shows as ``location-eng``. Stream tags: :data:`LOCATION_STREAM_TAGS`,
    or the location keys on every stream in .mkv. The file is probed after
    writing and :class:`RuntimeError` raised if any tag is missing. Matroska
    upper-cases most keys (``LOCATION``, ``MAKE``); compare case-insensitively.

    Args:
        path: Output .mov, .mp4 or .mkv file.
        duration: Length in seconds.

    Returns:
        ``path``.
    """
    path = Path(path)
    if path.suffix.lower() in _MP4_SUFFIXES:
        stream_tags = dict(LOCATION_STREAM_TAGS)
    else:  # Matroska drops stream creation_time but keeps any other stream tag.
        stream_tags = {k: v for k, v in LOCATION_TAGS.items() if "location" in k}
    make_clip(path, duration=duration, size=(320, 240), tags=LOCATION_TAGS, stream_tags=stream_tags)
    data = _ffprobe(path, "-show_entries", "format_tags:stream_tags")
    fmt = {k.lower(): v for k, v in (data.get("format", {}).get("tags") or {}).items()}
    missing = [k for k in LOCATION_TAGS if k.lower() not in fmt]
    for stream in data.get("streams", []):
        got = {k.lower() for k in (stream.get("tags") or {})}
        missing += [f"stream:{k}" for k in stream_tags if k.lower() not in got]
    if missing:
        raise RuntimeError(f"{path} lacks the tags {missing}; the scrubbing test would be void")
    return path


# --------------------------------------------------------------------------- broken inputs


def make_empty(path: Path) -> Path:
    """A zero-byte file.

    Args:
        path: Output path (any suffix, typically .mp4).

    Returns:
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def make_text_as_mp4(path: Path) -> Path:
    """A UTF-8 text file with a video file name; ffprobe finds no media in it.

    Args:
        path: Output path, typically ``something.mp4``.

    Returns:
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "Hello! This was supposed to be my video for #100forJustice.\n"
        "Привет! Это должно было быть видео.\n" * 20,
        encoding="utf-8",
    )
    return path


def make_image_as_mp4(path: Path, size: tuple[int, int] = (320, 240)) -> Path:
    """A PNG still with a video file name.

    Note: ffprobe sniffs the content and *succeeds* (format ``png_pipe``, one
    video stream, no usable duration), so only a duration/format check rejects it.

    Args:
        path: Output path, typically ``something.mp4``.
        size: Image size.

    Returns:
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    runner.run(
        [
            "-y", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=s={w}x{h}:d=1",
            "-frames:v", "1", "-c:v", "png", "-f", "image2pipe", runner.input_path(path),
        ],
        timeout=TIMEOUT,
    )  # fmt: skip
    return path


def mp4_boxes(data: bytes) -> list[tuple[str, int, int]]:
    """Top-level ISO-BMFF boxes as ``(type, offset, size)``; stops at garbage.

    Args:
        data: File contents.

    Returns:
        Boxes in file order.
    """
    boxes: list[tuple[str, int, int]] = []
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if size == 1 and pos + 16 <= len(data):
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
        elif size == 0:
            size = len(data) - pos
        if size < 8:
            break
        boxes.append((kind.decode("latin-1"), pos, size))
        pos += size
    return boxes


def _source(src: Path | None, suffix: str, scratch: Path, *, faststart: bool) -> Path:
    if src is not None:
        return Path(src)
    return make_clip(scratch / f"source{suffix}", duration=4, size=(640, 360), faststart=faststart)


def make_truncated(path: Path, src: Path | None = None, fraction: float = 0.4) -> Path:
    """The first ``fraction`` of an MP4 whose index (moov) is at the end.

    An upload cut off mid-transfer: ffprobe fails with ``moov atom not found``.

    Args:
        path: Output path.
        src: A valid non-faststart MP4/MOV; a 4 s clip is generated when ``None``.
        fraction: Share of the bytes kept.

    Returns:
        ``path``.

    Raises:
        ValueError: ``src`` has its moov inside the part that would be kept.
    """
    with tempfile.TemporaryDirectory(prefix="mediagen-") as tmp:
        data = _source(src, ".mp4", Path(tmp), faststart=False).read_bytes()
    keep = int(len(data) * fraction)
    moov = [off for kind, off, size in mp4_boxes(data) if kind == "moov"]
    if not moov or moov[0] < keep:
        raise ValueError("make_truncated needs a source whose moov box comes after the cut")
    return _write(path, data[:keep])


def make_truncated_faststart(path: Path, src: Path | None = None, fraction: float = 0.6) -> Path:
    """A ``+faststart`` MP4 cut to ``fraction`` of its bytes.

    The index is complete, so ffprobe succeeds and reports the full duration,
    but the media data ends early: decoding stops before the end with
    ``partial file`` / read errors.

    Args:
        path: Output path.
        src: Any MP4/MOV (remuxed with ``+faststart``); a 4 s clip when ``None``.
        fraction: Share of the bytes kept.

    Returns:
        ``path``.
    """
    with tempfile.TemporaryDirectory(prefix="mediagen-") as tmp:
        fast = Path(tmp) / "fast.mp4"
        if src is None:
            _source(None, ".mp4", Path(tmp), faststart=True).rename(fast)
        else:
            runner.run(
                [
                    "-y", "-v", "error", "-i", runner.input_path(src), "-map", "0",
                    "-c", "copy", "-movflags", "+faststart", runner.input_path(fast),
                ],
                timeout=TIMEOUT,
            )  # fmt: skip
        data = fast.read_bytes()
    boxes = {kind: (off, size) for kind, off, size in mp4_boxes(data)}
    keep = int(len(data) * fraction)
    if "moov" in boxes and sum(boxes["moov"]) > keep:
        raise ValueError("the cut would fall inside the moov box; raise fraction")
    return _write(path, data[:keep])


def make_bitflipped(path: Path, src: Path, seed: int = 0, count: int = 300) -> Path:
    """A copy of ``src`` with ``count`` bytes corrupted in the middle of the media data.

    The damaged bytes lie in the middle fifth of the ``mdat`` box (or of the
    file when it is not MP4), so headers and index stay valid: the file probes
    fine and ``ffmpeg -v error -i f -f null -`` reports decode errors.

    Args:
        path: Output path.
        src: A valid media file.
        seed: Seed for the positions and values; same seed, same file.
        count: How many bytes to change.

    Returns:
        ``path``.
    """
    data = Path(src).read_bytes()
    start, end = 0, len(data)
    for kind, off, size in mp4_boxes(data):
        if kind == "mdat":
            start, end = off + 16, off + size
            break
    span = end - start
    lo, hi = start + int(span * 0.4), start + int(span * 0.6)
    rng = random.Random(seed)
    buf = bytearray(data)
    for pos in rng.sample(range(lo, hi), min(count, hi - lo)):
        buf[pos] ^= rng.randint(1, 255)
    return _write(path, bytes(buf))


def make_audio_only(
    path: Path, duration: float = 4, *, audio: AudioLayout = "stereo", lufs: float = -24.0
) -> Path:
    """An audio-only file (AAC in .m4a/.mp4, Opus in .webm) with the speech-like voice.

    Args:
        path: Output path, e.g. ``voice.m4a``.
        duration: Length in seconds.
        audio: Channel layout.
        lufs: Loudness.

    Returns:
        ``path``.
    """
    return make_clip(path, duration=duration, size=None, audio=audio, lufs=lufs)


def make_huge_dimensions(path: Path, width: int = 100_000, height: int = 2_000) -> Path:
    """A YUV4MPEG2 (.y4m) file whose header claims a gigantic frame, with no real frame.

    ffprobe reports ``width x height`` (rawvideo, yuv420p) without anything to
    decode behind it: the single ``FRAME`` holds 64 bytes instead of
    ``width*height*1.5``. Note that libavutil refuses sizes with
    ``(w+128)*(h+128) >= INT_MAX/8`` (e.g. 100000x100000): ffprobe then fails
    with "Picture size ... is invalid" instead of reporting the size.

    Args:
        path: Output path (.y4m).
        width: Claimed width.
        height: Claimed height.

    Returns:
        ``path``.
    """
    header = f"YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg\nFRAME\n".encode("ascii")
    return _write(path, header + bytes(range(64)))


def make_too_short(path: Path, duration: float = 0.5) -> Path:
    """A valid but too short clip (0.5 s, below the 1 s minimum).

    Args:
        path: Output path.
        duration: Length in seconds.

    Returns:
        ``path``.
    """
    return make_clip(path, duration=duration, size=(640, 360))


# --------------------------------------------------------------------------- fuzz helpers


def corrupt_bytes(data: bytes, rng: random.Random, *, max_count: int | None = None) -> bytes:
    """Return ``data`` with between 1 and ``max_count`` bytes XOR-ed with random values.

    Suitable for Hypothesis (``st.randoms()``). Header bytes are as likely to be
    hit as media bytes.

    Args:
        data: Original file contents (unchanged when empty).
        rng: Source of randomness.
        max_count: Upper bound on changed bytes; default 1 % of the length (≥ 1).

    Returns:
        The corrupted copy; always different from ``data`` unless ``data`` is empty.
    """
    if not data:
        return data
    limit = max_count if max_count is not None else max(1, len(data) // 100)
    count = rng.randint(1, max(1, min(limit, len(data))))
    buf = bytearray(data)
    for pos in rng.sample(range(len(data)), count):
        buf[pos] ^= rng.randint(1, 255)
    return bytes(buf)


def truncate_bytes(data: bytes, rng: random.Random) -> bytes:
    """Return a strict prefix of ``data`` (possibly empty) of random length.

    Args:
        data: Original file contents.
        rng: Source of randomness.

    Returns:
        ``data[:n]`` with ``0 <= n < len(data)`` (empty input gives empty output).
    """
    if not data:
        return data
    return data[: rng.randrange(len(data))]


# --------------------------------------------------------------------------- helpers


def _write(path: Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _ffprobe(path: Path, *args: str) -> dict[str, Any]:
    return ffprobe_json(path, *args, timeout=TIMEOUT)


def copy_file(src: Path, dst: Path) -> Path:
    """Copy ``src`` to ``dst`` (creating folders), for building folders of uploads.

    Args:
        src: Existing file.
        dst: Destination path.

    Returns:
        ``dst``.
    """
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return Path(dst)
