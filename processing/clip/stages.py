"""The stages of one clip, in order: inspect → plan → render → verify → measure → entry.

The upload's picture is decoded once, by the render, which also confirms what
the inspection took from the probe and taps the finished picture and sound for
the measurements (issue 16). When the render decoded a different length than
planned, it hands back the full inspection to plan and render again with.

Each stage takes the values the earlier ones returned (frozen) and returns its
own; none writes anything but its own output file. A stage that finds the
upload unusable raises :class:`~processing.errors.Rejection` with the reason
staff read; :mod:`.driver` turns it (and an ffmpeg failure) into the entry.
A new stage is one function here and one line in ``driver._render``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import quality
from ..anonymize import FaceMask, face_mask
from ..config import Config
from ..errors import FFmpegError, FFmpegTimeout, Rejection
from ..faces.check import FaceCheck, check_hidden
from ..fsutil import sha256_file
from ..health import Health, audio_prefilters, check, check_fully, confirm
from ..loudness import GainPlan, SimulateFn, measure_sound, plan_gain
from ..normalize import RenderPlan, encode, output_frames, plan_render
from ..probe import MediaInfo, probe
from ..report import Entry
from ..social.renditions import plan_renditions, verify_renditions
from ..taps import Taps, decoded_seconds
from ..verify import conformance_problems, scrub_check
from .files import ClipFiles
from .intake import Submission, caption_spec


@dataclass(frozen=True)
class Inspected:
    """The upload as the health check found it, and the voice disguise it was measured with."""

    health: Health
    voice: float | None
    """Pitch ratio of the voice disguise (anonymized clips, if configured), else None."""


@dataclass(frozen=True)
class Plan:
    """Everything the render does, decided before it starts (anonymization included)."""

    render: RenderPlan
    gain: GainPlan | None
    faces: FaceMask | None
    """The face mask (anonymized clips only); its file lives as long as the plan's stack."""
    simulations: int = 0
    """Limiter simulations the gain plan ran (each an audio decode)."""


@dataclass(frozen=True)
class Verified:
    """The rendered clip as its checks saw it."""

    info: MediaInfo
    hidden: FaceCheck | None
    """The second detector's look at an anonymized clip, else None."""
    file: tuple[int, int]
    """The clip's ``(size, mtime_ns)`` when it was checked."""
    sha256: str
    renditions: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Each social rendition as its checks saw it (aspect → what the record lists)."""


@dataclass(frozen=True)
class Measured:
    """The finished clip's quality measurements and loudness (tapped from the encode)."""

    values: quality.Measurements
    content: tuple[int, int] | None
    """The clip's own picture inside the frame, when a blurred fill surrounds it."""
    seconds: float


@dataclass(frozen=True)
class Rendered:
    """What the render left: the clip's measurements, or the inspection to start again from."""

    measured: Measured | None
    again: Inspected | None = None
    """The full decode's inspection, when the encode decoded another length than the
    probe claimed (nothing was kept): plan and render again with it."""


class _Again(Exception):
    """The encode's decode disagreed with the plan: discard its outputs (see :func:`render`)."""

    def __init__(self, health: Health):
        super().__init__("planned again from a full decode")
        self.health = health


def inspect(path: Path, sub: Submission, cfg: Config, log: Path | None = None) -> Inspected:
    """Probe the upload and hear its sound: refuse what cannot be used, measure its loudness."""
    anon = cfg.anonymize
    voice = anon.voice_pitch if sub.sidecar.anonymize and anon.voice else None
    return Inspected(check(path, cfg, log, voice_pitch=voice), voice)


def plan(
    path: Path,
    sub: Submission,
    seen: Inspected,
    cfg: Config,
    workdir: Path,
    stack: contextlib.ExitStack,
    log: Path | None = None,
) -> Plan:
    """Decide the gain, sizes, captions and, for an anonymous clip, the face mask and voice.

    The mask's temporary file is closed with ``stack``.
    """
    health, gain, simulations = seen.health, None, 0
    if health.loudness is not None:
        duration = health.use_duration
        simulate = SimulateFn(
            path, audio_prefilters(cfg.output.sample_rate, seen.voice), cfg.output.sample_rate,
            duration, cfg.limits.timeout_for(duration), log,
        )  # fmt: skip
        gain = plan_gain(health.loudness, cfg.loudness, simulate)
        simulations = simulate.calls
    faces = None
    if sub.sidecar.anonymize:
        video = health.info.video
        assert video is not None  # the health check refuses a clip without video
        frames = output_frames(health, cfg)
        faces = stack.enter_context(face_mask(path, video, frames, cfg, workdir, log_file=log))
    render = plan_render(
        health, gain, caption_spec(sub, cfg), cfg,
        face_mask=faces.path if faces else None, voice_pitch=seen.voice,
    )  # fmt: skip
    if cfg.social.renditions:  # reframed on the anonymization's own scan when there is one
        video = health.info.video
        assert video is not None
        social = plan_renditions(
            path, video, render.frames, cfg, faces.scan if faces else None, log_file=log
        )
        render = replace(render, renditions=social)
    return Plan(render, gain, faces, simulations)


def render(
    path: Path,
    files: ClipFiles,
    planned: Plan,
    seen: Inspected,
    cfg: Config,
    progress: Callable[[float], None] | None,
) -> Rendered:
    """The one encode: ``files.clip`` and its audio master appear only when complete.

    The encode is the upload's health check's decode too (:func:`~processing.health.confirm`)
    and the measurements' (:class:`~processing.analysis.Taps`).

    Raises:
        Rejection: The upload is damaged or too short (the full check's reason).
    """
    total, r = planned.render.duration, planned.render

    def fraction(seconds: float) -> None:
        if progress is not None:
            progress(min(1.0, seconds / total) if total > 0 else 1.0)

    with tempfile.TemporaryDirectory(prefix="reel-taps-") as tmp:
        taps = Taps.in_folder(Path(tmp), cfg.quality, (cfg.output.width, cfg.output.height))
        said: list[str] = []

        def accept(stderr: str) -> None:
            said.append(stderr)
            video = decoded_seconds(taps.decoded)
            again = confirm(
                path, seen.health, stderr, video, cfg, files.log, voice_pitch=seen.voice
            )
            if again is not None:
                files.log_line(
                    f"the encode decoded {video:.3f} s of picture, not the {total:.3f} s planned "
                    f"from the probe: discarded, planned again for {again.use_duration:.3f} s"
                )
                raise _Again(again)

        try:
            encode(
                path, files.clip, r, seen.health, cfg, progress=fraction if progress else None,
                log_file=files.log, taps=taps, accept=accept,
                renditions={p.aspect: files.rendition(p.aspect) for p in r.renditions},
            )  # fmt: skip
        except _Again as redo:
            return Rendered(None, Inspected(redo.health, seen.voice))
        except FFmpegError as exc:
            if not isinstance(exc, FFmpegTimeout) and not seen.health.decoded:
                # A damaged upload gets the reason checking it first gives, not "encode failed".
                check_fully(path, cfg, files.log, voice_pitch=seen.voice)
            raise
        started = time.monotonic()
        values = quality.measure_taps(
            taps, said[0], cfg, content=r.fg_size if r.background else None, duration=total
        )
    return Rendered(Measured(values, r.fg_size if r.background else None,
                             time.monotonic() - started))  # fmt: skip


def verify(files: ClipFiles, planned: Plan, seen: Inspected, cfg: Config) -> Verified:
    """Check the rendered clip: conformance, no identifying tag, and no face left visible.

    The scrub check searches the clip's bytes for the upload's own tag values
    (``seen``), not only the tags ffprobe shows.

    Raises:
        Rejection: A check failed (the clip is discarded by the driver).
    """
    clip, duration = files.clip, planned.render.duration
    info = probe(clip, log_file=files.log)
    problems = conformance_problems(info, cfg, duration)
    problems += scrub_check(clip, info, seen.health.info.tags)
    if problems:
        raise Rejection(
            "output_check_failed", "The rendered clip failed its checks: " + "; ".join(problems)
        )
    hidden = None
    if planned.faces is not None:  # a second detector, not the mask's (issue 13)
        size = (cfg.output.width, cfg.output.height)
        hidden = check_hidden(
            clip, size, timeout=cfg.limits.timeout_for(duration), log_file=files.log
        )
        if not hidden.passed:
            raise Rejection("face_visible", hidden.reason())
    social = verify_renditions(
        {p.aspect: files.rendition(p.aspect) for p in planned.render.renditions},
        planned.render.renditions, duration,
        seen.health.info.tags, cfg, anonymized=planned.faces is not None, log_file=files.log,
    )  # fmt: skip
    st = clip.stat()
    return Verified(info, hidden, (st.st_size, st.st_mtime_ns), sha256_file(clip), social)


def measure(rendered: Rendered, files: ClipFiles, planned: Plan, cfg: Config) -> Measured:
    """Quality flags' measurements as the render tapped them, and the clip's loudness.

    The loudness is metered on the encoded clip's sound (audio only, after the
    AAC encoder: what a player measures), outside the encode slot.
    """
    measured = rendered.measured
    assert measured is not None  # the driver renders again until there is a clip
    total = planned.render.duration
    heard = measure_sound(files.clip, timeout=cfg.limits.timeout_for(total), log_file=files.log)
    values = replace(measured.values, loudness=heard or measured.values.loudness)
    measured = replace(measured, values=values)
    if measured.values.loudness is None:  # pragma: no cover - ebur128 always prints its summary
        raise RuntimeError("ebur128 printed no summary for the rendered clip")
    return measured


def warnings(sub: Submission, seen: Inspected, planned: Plan) -> list[str]:
    """What staff should know about an accepted clip: the upload's notes, then the render's."""
    health, gain, faces = seen.health, planned.gain, planned.faces
    notes = list(sub.warnings)
    if health.trimmed:
        notes.append(
            f"trimmed from {health.info.duration:.1f} s to "
            f"{health.use_duration:.1f} s (limits.max_duration)"
        )
    if gain is not None and gain.note:
        notes.append(gain.note)
    if health.info.audio is None:
        notes.append("no audio track: silence added")
    if faces is not None and faces.whole_frame:
        notes.append("anonymized: no face was found, so the whole picture is blurred")
    if faces is not None and faces.doubt_note():
        notes.append(faces.doubt_note())
    return notes


def entry(
    sub: Submission,
    files: ClipFiles,
    rkey: str,
    stages: tuple[Inspected, Plan, Verified, Measured],
    cfg: Config,
    started: float,
) -> Entry:
    """The accepted clip's entry (and record), built from the stages' values."""
    seen, planned, checked, measured = stages
    health, gain, faces = seen.health, planned.gain, planned.faces
    loud = measured.values.loudness
    assert loud is not None  # measure() refuses a clip without a loudness summary
    hidden = checked.hidden.summary() if checked.hidden else {}
    made = Entry(
        id=sub.id, source=sub.key, status="accepted", output=files.clip_key,
        duration=round(planned.render.duration, 3), input=health.info.summary(),
        input_i=health.loudness.integrated if health.loudness else None,
        input_tp=health.loudness.true_peak if health.loudness else None,
        gain_db=gain.gain_db if gain else None, limited=bool(gain and gain.limit),
        output_i=loud.integrated, output_tp=loud.true_peak, scrub_check="passed",
        **sub.facts(),
        anonymization=(
            {**faces.summary(), **hidden, "voice_disguised": seen.voice is not None}
            if faces else None
        ),
        warnings=warnings(sub, seen, planned), render_key=rkey,
        streams={
            "signature": checked.info.signature, "file": list(checked.file),
            "sha256": checked.sha256,
        },
        renditions=checked.renditions or None,
        seconds=round(time.monotonic() - started, 2),
        rendered_by=f"{socket.gethostname()}:{os.getpid()}",
        rendered_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )  # fmt: skip
    return quality.record(
        made, measured.values, cfg, content=measured.content, seconds=measured.seconds
    )
