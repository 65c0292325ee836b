"""A clip's social renditions (9:16, 1:1): planned, encoded and checked with the clip itself.

Issue 17, per clip. The renditions are extra outputs of the clip's one encode
(:func:`processing.normalize.build_command`): the picture is split after the
frame rate, tone mapping and face hiding, before the 16:9 fitting, so a
rendition shows exactly the anonymized picture and never the original. Each
rendition gets its own captions (placed in the platform's safe zone), the
clip's very sound, and :func:`~processing.normalize.encoder_args` except the
frame size, so the compilation can join renditions by stream copy.

Where the window sits comes from the anonymization's face scan when the clip
is anonymized; otherwise the same detector scans the upload here, at the same
analysis size (a second, downscaled decode of the upload: see README,
Performance). A portrait clip in the 9:16 frame needs no scan at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .. import anonymize, graph, runner
from ..captions import CaptionSpec, ass_script
from ..config import Config
from ..errors import Rejection
from ..faces.check import check_hidden
from ..fsutil import sha256_file
from ..probe import VideoStream, probe
from ..verify import conformance_problems, scrub_check
from .graph import rendition_nodes
from .layout import ass_caption_styles, layout_for
from .reframe import TARGETS, TARGETS_WIDTH, CropPath, plan_reframe


def plan_renditions(
    path: Path,
    video: VideoStream,
    frames: int,
    cfg: Config,
    scan: anonymize.FaceScan | None = None,
    *,
    log_file: Path | None = None,
) -> tuple[CropPath, ...]:
    """One :class:`CropPath` per ``social.renditions`` aspect, in that order.

    Args:
        path: The upload (scanned only when a window must follow a face and no
            ``scan`` is given).
        video: Its video stream.
        frames: Frames of the encode's timeline.
        cfg: Settings (``social``, ``anonymize`` for the scan, ``output.fps``).
        scan: The anonymization's face scan, for an anonymized clip.
        log_file: The submission's log, for the scan's decode.
    """
    aspects = tuple(cfg.social.renditions)
    if not aspects:
        return ()
    fps, source = cfg.output.fps, video.display_size
    # Planned first without faces: a layout that needs none (a portrait clip in the
    # vertical frame, a clip of the rendition's own aspect) costs no scan.
    blind = anonymize.FaceScan(source, frames, (), 0.0)
    paths = [plan_reframe(scan or blind, source, a, fps, cfg.social) for a in aspects]
    if scan is None and any(p.layout != "native" for p in paths):
        timeout = cfg.limits.timeout_for(frames / fps)
        scan = anonymize.scan(
            path, video, frames, fps, cfg.anonymize, timeout=timeout, log_file=log_file
        )
        paths = [plan_reframe(scan, source, a, fps, cfg.social) for a in aspects]
    return tuple(paths)


def rendition_ass(spec: CaptionSpec, aspect: str) -> str | None:
    """The captions of the ``aspect`` rendition as an ASS script (None when there are none).

    The same texts as the 16:9 clip's, with :func:`.layout.ass_caption_styles`
    (inside the platforms' safe zone) and ``PlayRes`` = the rendition's frame.
    """
    if not (spec.hashtag or spec.name):
        return None
    w, h = TARGETS[aspect]
    styles = ass_caption_styles(layout_for(aspect), spec.font)
    return ass_script(w, h, styles, [("Hashtag", spec.hashtag), ("Name", spec.name)])


@dataclass(frozen=True)
class Target:
    """One rendition to write in the encode: its plan, file and captions."""

    path: CropPath
    dst: Path
    ass: Path | None


class Fork:
    """Where the renditions branch off the clip's picture, and their outputs of the encode.

    Passed to :func:`processing.normalize.filter_graph`, which calls it with the
    anonymized picture before fitting it into the 16:9 frame.
    """

    def __init__(
        self, targets: Sequence[Target], video: VideoStream, scale_args: Mapping[str, str]
    ):
        self.targets = tuple(targets)
        self.scale_args = dict(scale_args)
        self.pictures: list[graph.Stream] = []
        # Plans are in displayed (square) pixels; an anamorphic upload is decoded in stored ones.
        decoded, shown = anonymize.picture_size(video), video.display_size
        self.square = None if decoded == shown else shown

    def __call__(self, picture: graph.Stream) -> graph.Stream:
        """The stream the 16:9 graph goes on with; the renditions' pictures are kept."""
        copies = graph.split(picture, len(self.targets) + 1)
        for copy, t in zip(copies[1:], self.targets, strict=True):
            if self.square is not None:
                copy = graph.filt(graph.filt(copy, "scale", *self.square), "setsar", 1)
            pic = rendition_nodes(copy, t.path, scale_args=self.scale_args)
            if t.ass is not None:
                pic = graph.filt(pic, "ass", filename=str(t.ass))
            # As the 16:9 clip: a video stream that ends early is held on its last frame.
            pic = graph.filt(
                graph.filt(pic, "format", "yuv420p"), "tpad", stop=-1, stop_mode="clone"
            )
            self.pictures.append(pic)
        return copies[0]

    def outputs(
        self, sound: graph.Stream, length: str, encoder: Sequence[str]
    ) -> tuple[graph.Stream, list[graph.Stream]]:
        """The 16:9 clip's sound, and one output per rendition with the same sound.

        Args:
            sound: The clip's final audio.
            length: Output length (``-t``), as the clip's.
            encoder: :func:`processing.normalize.encoder_args` (no frame size in it:
                the rendition's comes from its filters).
        """
        if len(self.pictures) != len(self.targets):
            raise RuntimeError("the renditions' pictures were never forked off the clip's")
        sounds = graph.split(sound, len(self.targets) + 1, audio=True)
        opts = graph.options(encoder)
        outs = [
            graph.output([pic, a], runner.input_path(t.dst), f="mp4", t=length, **opts)
            for pic, a, t in zip(self.pictures, sounds[1:], self.targets, strict=True)
        ]
        return sounds[0], outs


def verify_renditions(
    files: Mapping[str, Path],
    paths: Sequence[CropPath],
    duration: float,
    upload_tags: Sequence[tuple[str, str]],
    cfg: Config,
    *,
    anonymized: bool,
    log_file: Path | None = None,
) -> dict[str, dict[str, Any]]:
    """Check every rendition as the clip is checked; what the record lists for each.

    Conformance (frame size the rendition's), the scrub byte-search for the
    upload's tag values, and for an anonymized clip the second detector's look.

    Args:
        files: Aspect → the rendition's file (``ClipFiles.rendition``).
        paths: The renditions' plans.
        duration: The clip's exact length.
        upload_tags: The upload's tags (what the scrub check searches for).
        cfg: Settings.
        anonymized: Whether the clip is anonymized.
        log_file: The submission's log.

    Raises:
        Rejection: A rendition failed a check (the clip and its renditions are discarded).
    """
    listed: dict[str, dict[str, Any]] = {}
    for p in paths:
        dst = files[p.aspect]
        w, h = p.output
        info = probe(dst, log_file=log_file)
        own = cfg.for_renditions()
        sized = replace(own, output=replace(own.output, width=w, height=h))
        problems = conformance_problems(info, sized, duration) + scrub_check(dst, info, upload_tags)
        if problems:
            raise Rejection(
                "output_check_failed",
                f"The {p.aspect} rendition failed its checks: " + "; ".join(problems),
            )
        hidden = None
        if anonymized:
            timeout = cfg.limits.timeout_for(duration)
            hidden = check_hidden(dst, (w, h), timeout=timeout, log_file=log_file)
            if not hidden.passed:
                raise Rejection("face_visible", f"{p.aspect} rendition: {hidden.reason()}")
        st = dst.stat()
        listed[p.aspect] = {
            "key": f"{dst.parent.name}/{dst.name}",
            "frame": [w, h],
            "file": [st.st_size, st.st_mtime_ns],
            "sha256": sha256_file(dst),
            "signature": info.signature,
            "layout": p.layout,
            "why": p.why,
            # Pixels of the 1080-wide output, the unit of social.max_pan_px.
            "max_pan_px": round(p.max_step() * TARGETS_WIDTH / p.window[0], 2),
            **({"faces_check": hidden.summary()} if hidden else {}),
        }
    return listed
