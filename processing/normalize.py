"""Normalize and caption a clip in exactly one ffmpeg encode.

The filter graph, in order:

video: (ffmpeg auto-rotates from the display matrix while decoding)
    → constant frame rate (``fps`` with ``start_time=0`` so a late video start is
      padded rather than shifting the picture against the sound)
    → HDR (PQ/HLG) tonemapped to SDR BT.709 with zscale + tonemap (Hable)
    → fitted into the output frame, square pixels, over a blurred, darkened copy
      of itself when the aspect differs (no black bars for portrait clips)
    → captions drawn by libass → yuv420p, cloned at the end to the exact length.
audio: resample/down- or upmix to 48 kHz stereo (silence when there is no audio)
    → the planned gain (and oversampled limiter when peaks require it)
    → padded to the exact length.
out: H.264 High yuv420p + AAC-LC, BT.709 tags, ``+faststart``, no metadata.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import anonymize, graph, runner
from .captions import CaptionSpec, build_ass
from .config import Config
from .fitting import BG_REDUCTION, fit
from .fsutil import atomic_output
from .health import Health, audio_prefilters
from .loudness import GainPlan
from .probe import VideoStream
from .taps import Taps, tap_outputs

if TYPE_CHECKING:  # processing.social builds on this module; it is imported where used
    from .social.reframe import CropPath
    from .social.renditions import Fork


@dataclass(frozen=True)
class RenderPlan:
    """Everything the encode needs to know, decided before it starts."""

    frames: int
    """Exact number of output frames."""
    duration: float
    """``frames / fps``: the exact output length, audio included."""
    fg_size: tuple[int, int]
    """Size of the clip itself inside the output frame."""
    background: bool
    """Whether the clip leaves room that the blurred copy fills."""
    hdr: str | None
    gain: GainPlan | None
    """None when the input has no audio (silence is generated)."""
    captions: CaptionSpec
    face_mask: Path | None = None
    """Anonymization: a mask of where faces are, one frame per output frame."""
    voice_pitch: float | None = None
    """Anonymization: pitch ratio of the voice disguise."""
    renditions: tuple[CropPath, ...] = ()
    """Social renditions made by the same encode (``social.renditions``), in order."""


def output_frames(health: Health, cfg: Config) -> int:
    """Exact number of frames the rendered clip has (its length is ``frames / fps``)."""
    return max(1, round(health.use_duration * cfg.output.fps))


def plan_render(
    health: Health,
    gain: GainPlan | None,
    captions: CaptionSpec,
    cfg: Config,
    *,
    face_mask: Path | None = None,
    voice_pitch: float | None = None,
) -> RenderPlan:
    """Decide sizes and lengths for :func:`build_command` (and the anonymization, if any)."""
    out = cfg.output
    v = health.info.video
    assert v is not None
    frames = output_frames(health, cfg)
    fg = fit(v.display_size, (out.width, out.height))
    return RenderPlan(
        frames=frames,
        duration=frames / out.fps,
        fg_size=fg,
        background=fg != (out.width, out.height),
        hdr=v.hdr,
        gain=gain if health.info.audio else None,
        captions=captions,
        face_mask=face_mask,
        voice_pitch=voice_pitch,
    )


def _tonemap(pic: graph.Stream, v: VideoStream, hdr: str) -> graph.Stream:
    tin = "smpte2084" if hdr == "pq" else "arib-std-b67"
    primaries = v.color_primaries or "bt2020"
    matrix = v.color_space or "bt2020nc"
    if matrix not in ("bt2020nc", "bt2020c"):
        matrix = "bt2020nc"
    # https://ffmpeg.org/ffmpeg-filters.html#tonemap-1 (the documented zscale chain)
    lin = dict(tin=tin, min=matrix, pin=primaries, rin="tv", t="linear", npl=100)
    pic = graph.filt(graph.filt(pic, "zscale", **lin), "format", "gbrpf32le")
    pic = graph.filt(graph.filt(pic, "zscale", p="bt709"), "tonemap", tonemap="hable", desat=0)
    pic = graph.filt(pic, "zscale", t="bt709", m="bt709", r="tv")
    return graph.filt(pic, "format", "yuv420p")


#: Colour matrices ffprobe reports for a stream that does not say which it uses.
_UNTAGGED = (None, "", "unknown", "unspecified", "reserved")


def _to709(v: VideoStream, hdr: str | None) -> dict[str, str]:
    """``scale`` options converting to BT.709 limited range.

    When the upload does not name its matrix, ffmpeg's swscale reads it as
    BT.601, while players read untagged HD as BT.709 (mpv's rule: 1280 wide or
    more than 576 lines): converting 601 to 709 would shift the colours the
    contributor saw, and costs a full per-pixel conversion. So an untagged
    upload gets ``in_color_matrix`` by that rule; tagged uploads (and HDR,
    tagged by the tone mapping) keep ffmpeg's ``auto``.
    """
    opts = {"out_color_matrix": "bt709", "out_range": "tv"}
    if hdr or v.color_space not in _UNTAGGED:
        return opts
    hd = v.width >= 1280 or v.height > 576
    return {"in_color_matrix": "bt709" if hd else "bt601", **opts}


def filter_graph(
    plan: RenderPlan,
    v: VideoStream,
    cfg: Config,
    ass_path: Path | None,
    upload: graph.Stream,
    mask: graph.Stream | None = None,
    fork: Fork | None = None,
) -> tuple[graph.Stream, graph.Stream]:
    """The clip's final picture and sound, built from input ``upload`` (and the face ``mask``).

    ``fork`` takes the anonymized picture before it is fitted (the social renditions).
    """
    out = cfg.output
    W, H = out.width, out.height
    fw, fh = plan.fg_size
    to709 = _to709(v, plan.hdr)
    pic = graph.filt(upload["v:0"], "fps", out.fps, start_time=0)
    if plan.hdr:
        pic = _tonemap(pic, v, plan.hdr)
    if mask is not None:
        # Faces are hidden before the picture is fitted, so its background copy is hidden too.
        pic = anonymize.hide_faces(pic, mask, v, cfg)
    if fork is not None:
        pic = fork(pic)
    if plan.background:
        bw, bh = W // BG_REDUCTION, H // BG_REDUCTION
        bgsrc, fgsrc = graph.split(pic, 2)
        bg = graph.filt(bgsrc, "scale", bw, bh, force_original_aspect_ratio="increase", **to709)
        bg = graph.filt(bg, "crop", bw, bh)
        bg = graph.filt(bg, "boxblur", luma_radius=6, luma_power=2)
        bg = graph.filt(bg, "eq", brightness=-0.08, saturation=0.8)
        bg = graph.filt(graph.filt(bg, "scale", W, H, flags="bilinear"), "setsar", 1)
        fg = graph.filt(fgsrc, "scale", fw, fh, flags="bicubic", **to709)
        fg = graph.filt(fg, "setsar", 1)
        base = graph.filt([bg, fg], "overlay", "(W-w)/2", "(H-h)/2", format="auto")
    else:
        base = graph.filt(graph.filt(pic, "scale", W, H, flags="bicubic", **to709), "setsar", 1)
    if ass_path is not None:
        base = graph.filt(base, "ass", filename=str(ass_path))
    vout = graph.filt(graph.filt(base, "format", "yuv420p"), "tpad", stop=-1, stop_mode="clone")

    rate = out.sample_rate
    if plan.gain is not None:
        audio = [*audio_prefilters(rate, plan.voice_pitch), *plan.gain.filters(rate), "apad"]
        aout = graph.chain(upload["a:0"], audio)
    else:
        aout = graph.source("anullsrc", r=rate, cl="stereo")
    return vout, aout


def build_command(
    src: Path,
    dst: Path,
    plan: RenderPlan,
    health: Health,
    cfg: Config,
    ass_path: Path | None,
    master: Path | None = None,
    taps: Taps | None = None,
    renditions: Mapping[str, tuple[Path, Path | None]] | None = None,
) -> list[str]:
    """ffmpeg arguments for the one encode of this clip.

    ``taps``: also write what the checks and quality flags read (see
    :func:`~processing.taps.tap_outputs`), so that nothing decodes the upload or the clip again.

    ``master``: also write the final audio, losslessly, as FLAC. The compilation
    builds its soundtrack from these sample-exact masters: joining AAC streams
    by copy overlaps each one's 1024 priming samples and final partial frame
    at every seam, and the muxer's fix-up makes the sound drift late a few
    milliseconds per clip (0.3 s over 100 clips).

    ``renditions``: aspect → (file, captions) of each of ``plan.renditions``, also
    written by this encode (:mod:`processing.social.renditions`).
    """
    v = health.info.video
    assert v is not None
    length = f"{plan.duration:.6f}"
    upload = graph.input_file(src, **({"t": length} if health.trimmed else {}))
    mask = graph.input_file(plan.face_mask) if plan.face_mask is not None else None
    fork = _social_fork(plan, v, renditions or {})
    vout, aout = filter_graph(plan, v, cfg, ass_path, upload, mask, fork)
    outputs: list[graph.Stream] = []
    if fork is not None:
        aout, social = fork.outputs(aout, length, encoder_args(cfg.for_renditions()))
        outputs += social
    tapped: list[graph.Stream] = []
    if taps is not None:
        vout, aout, tapped = tap_outputs(
            vout, aout, upload, length, taps, silent=plan.gain is None, rate=cfg.output.sample_rate
        )
    if master is not None:
        aout, amaster = graph.split(aout, 2, audio=True)
    opts = graph.options(encoder_args(cfg))
    outputs.append(graph.output([vout, aout], runner.input_path(dst), f="mp4", t=length, **opts))
    if master is not None:
        lossless = {"c:a": "flac", "map_metadata": "-1", "fflags": "+bitexact"}
        outputs.append(
            graph.output(amaster, runner.input_path(master), f="flac", t=length, **lossless)
        )
    return graph.compile_args(*outputs, *tapped)


def _social_fork(
    plan: RenderPlan, v: VideoStream, files: Mapping[str, tuple[Path, Path | None]]
) -> Fork | None:
    """The social renditions' branch of the graph, or None when there are none."""
    if not plan.renditions:
        return None
    from .social.renditions import Fork, Target

    targets = [Target(p, *files[p.aspect]) for p in plan.renditions]
    return Fork(targets, v, _to709(v, plan.hdr))


def master_path(clip: Path) -> Path:
    """Where the lossless audio master of ``clip`` lives."""
    return clip.with_suffix(".flac")


def encoder_args(cfg: Config, *, strip_metadata: bool = True) -> list[str]:
    """Codec, stream and container settings shared by every segment of a compilation.

    Clips and cards use exactly these, so they can be joined by stream copy.
    Metadata and chapters of the input are dropped here (contributor safety)
    unless ``strip_metadata`` is off because the caller maps its own.
    """
    out = cfg.output
    gop = out.fps * out.keyframe_seconds
    return [
        "-c:v", "libx264",
        "-preset", out.x264_preset,
        "-crf", str(out.crf),
        "-maxrate", f"{out.maxrate_kbps}k",
        "-bufsize", f"{out.maxrate_kbps * 2}k",
        "-profile:v", "high",
        "-level:v", "4.2",
        "-pix_fmt", "yuv420p",
        "-g", str(gop),
        "-keyint_min", str(gop),
        "-sc_threshold", "0",
        "-colorspace", "bt709",
        "-color_primaries", "bt709",
        "-color_trc", "bt709",
        "-color_range", "tv",
        "-c:a", "aac",
        "-profile:a", "aac_low",
        "-b:a", f"{out.audio_bitrate_kbps}k",
        "-ar", str(out.sample_rate),
        "-ac", "2",
        "-video_track_timescale", str(out.fps * 512),
        *(["-map_metadata", "-1", "-map_chapters", "-1"] if strip_metadata else []),
        "-fflags", "+bitexact",
        "-movflags", "+faststart",
    ]  # fmt: skip


def encode(
    src: Path,
    dst: Path,
    plan: RenderPlan,
    health: Health,
    cfg: Config,
    *,
    progress: Callable[[float], None] | None = None,
    log_file: Path | None = None,
    taps: Taps | None = None,
    accept: Callable[[str], None] | None = None,
    renditions: Mapping[str, Path] | None = None,
) -> Path:
    """Render ``src`` to ``dst`` in one encode; ``dst`` appears only when complete.

    Args:
        src: The upload.
        dst: The clip (its FLAC master goes beside it, :func:`master_path`).
        plan: What to render.
        health: The upload's health check.
        cfg: Settings.
        progress: Called with the seconds encoded so far.
        log_file: The submission's log.
        taps: Also write the checks' taps (:func:`~processing.taps.tap_outputs`).
        accept: Called with the encode's stderr (logged at ``level+info``)
            before the outputs are moved into place; whatever it raises
            discards them.
        renditions: Aspect → final file of each of ``plan.renditions``,
            written by the same encode, each appearing only when complete.
    """
    with tempfile.TemporaryDirectory(prefix="reel-") as tmp, contextlib.ExitStack() as stack:
        ass_path = None
        if plan.captions.hashtag or plan.captions.name:
            ass_path = Path(tmp) / "captions.ass"
            ass_path.write_text(
                build_ass(plan.captions, cfg.output.width, cfg.output.height), "utf-8"
            )
        social = _social_files(plan, renditions or {}, Path(tmp), stack)
        with atomic_output(master_path(dst)) as master, atomic_output(dst) as part:
            args = build_command(
                src, part, plan, health, cfg, ass_path, master, taps=taps, renditions=social
            )
            if accept is not None:  # "[error]" marks the lines it counts
                args = ["-loglevel", "level+info", *args]
            # Renditions add their pixels to the encode's work: the time limit grows with them.
            out = cfg.output
            work = 1 + sum(w * h for w, h in (p.output for p in plan.renditions)) / (
                out.width * out.height
            )
            _, stderr = runner.run(
                args,
                timeout=cfg.limits.timeout_for(plan.duration) * work,
                progress=progress,
                log_file=log_file,
            )
            if accept is not None:
                accept(stderr)
    return dst


def _social_files(
    plan: RenderPlan, finals: Mapping[str, Path], tmp: Path, stack: contextlib.ExitStack
) -> dict[str, tuple[Path, Path | None]]:
    """Aspect → (temporary file moved to ``finals[aspect]`` on success, captions file)."""
    from .social.renditions import rendition_ass

    files: dict[str, tuple[Path, Path | None]] = {}
    for p in plan.renditions:
        script = rendition_ass(plan.captions, p.aspect)
        ass = tmp / f"captions.{p.aspect.replace(':', 'x')}.ass" if script else None
        if ass is not None and script is not None:
            ass.write_text(script, "utf-8")
        files[p.aspect] = (stack.enter_context(atomic_output(finals[p.aspect])), ass)
    return files
