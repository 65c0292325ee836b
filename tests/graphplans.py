"""Representative render plans, built without ffmpeg, for comparing compiled arguments.

:mod:`tests.test_graphs` compiles each plan with the current code and compares
the result, as a graph (:mod:`tests.filtergraph`), with the arguments the
hand-written filter strings produced before ffmpeg-python built them
(``tests/graph_golden.json``, recorded from commit 11f67d3).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from processing.captions import CaptionSpec
from processing.config import Config, load_config
from processing.health import Health
from processing.loudness import GainPlan, Measurement
from processing.normalize import RenderPlan, build_command, plan_render
from processing.probe import AudioStream, MediaInfo, VideoStream

SRC = Path("/uploads/-y clip.mp4")
DST = Path("/out/clips/abc.mp4.part")
MASK = Path("/work/mask-1/mask.mkv")
ASS = Path("/tmp/reel-1/captions.ass")


def config() -> Config:
    return load_config()


def _video(**kw: Any) -> VideoStream:
    base: dict[str, Any] = dict(
        index=0,
        codec="h264",
        profile="High",
        width=1280,
        height=720,
        pix_fmt="yuv420p",
        frame_rate=Fraction(30),
        sar=Fraction(1),
        rotation=0,
        color_transfer="bt709",
        color_primaries="bt709",
        color_space="bt709",
        color_range="tv",
        bit_depth=8,
        variable_frame_rate=False,
    )
    base.update(kw)
    return VideoStream(**base)


def _health(video: VideoStream, *, audio: bool = True, trimmed: bool = False) -> Health:
    info = MediaInfo(
        path=SRC,
        format_name="mov,mp4",
        duration=4.0,
        size=1000,
        bit_rate=None,
        video=video,
        audio=AudioStream(1, "aac", 44100, 2, "stereo") if audio else None,
        tags=(),
    )
    return Health(info, 4.0, 4.0, trimmed, Measurement(-24.0, -6.0, 5.0) if audio else None)


GAIN = GainPlan(8.0, False, -1.5, -16.0)
LIMITED = GainPlan(14.5, True, -1.5, -16.0)
CAPTIONS = CaptionSpec("#100forJustice", "Айшат из Грозного", "DejaVu Sans")


def _case(
    video: VideoStream,
    *,
    gain: GainPlan | None = GAIN,
    audio: bool = True,
    trimmed: bool = False,
    anonymize: bool = False,
    captions: bool = True,
    master: bool = True,
) -> Callable[[Config], list[str]]:
    def build(cfg: Config) -> list[str]:
        health = _health(video, audio=audio, trimmed=trimmed)
        plan: RenderPlan = plan_render(health, gain, CAPTIONS, cfg)
        if anonymize:
            plan = replace(plan, face_mask=MASK, voice_pitch=cfg.anonymize.voice_pitch)
        ass = ASS if captions else None
        flac = DST.with_suffix(".flac") if master else None
        return build_command(SRC, DST, plan, health, cfg, ass, flac)

    return build


#: Name → how to build the normalize command of that plan.
PLANS: dict[str, Callable[[Config], list[str]]] = {
    "plain": _case(_video(), captions=False),
    "captions": _case(_video()),
    "portrait": _case(_video(width=1280, height=720, rotation=90)),
    "anonymized": _case(_video(), anonymize=True),
    "anonymized_portrait": _case(_video(rotation=270), anonymize=True, gain=LIMITED),
    "no_audio": _case(_video(), audio=False, gain=None),
    "hdr_pq": _case(
        _video(color_transfer="smpte2084", color_primaries="bt2020", color_space="bt2020nc"),
        trimmed=True,
    ),
    "hdr_hlg_untagged_matrix": _case(_video(color_transfer="arib-std-b67", color_space=None)),
    "untagged_sd": _case(_video(width=640, height=480, color_space=None), master=False),
    "untagged_hd_anamorphic": _case(
        _video(width=1440, height=1080, sar=Fraction(4, 3), color_space="unknown")
    ),
}
