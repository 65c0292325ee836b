"""The stages of one clip, in order: inspect → plan → render → verify → measure → entry.

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
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .. import quality
from ..anonymize import FaceMask, face_mask
from ..config import Config
from ..errors import Rejection
from ..faces.check import FaceCheck, check_hidden
from ..fsutil import sha256_file
from ..health import Health, audio_prefilters, check
from ..loudness import GainPlan, SimulateFn, plan_gain
from ..normalize import RenderPlan, encode, output_frames, plan_render
from ..probe import MediaInfo, probe
from ..report import Entry
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


@dataclass(frozen=True)
class Measured:
    """The finished clip's quality measurements and loudness (one decode)."""

    values: quality.Measurements
    content: tuple[int, int] | None
    """The clip's own picture inside the frame, when a blurred fill surrounds it."""
    seconds: float


def inspect(path: Path, sub: Submission, cfg: Config, log: Path | None = None) -> Inspected:
    """Probe and decode the upload once: refuse what cannot be used, measure its loudness."""
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
    return Plan(render, gain, faces, simulations)


def render(
    path: Path,
    files: ClipFiles,
    planned: Plan,
    seen: Inspected,
    cfg: Config,
    progress: Callable[[float], None] | None,
) -> None:
    """The one encode: ``files.clip`` and its audio master appear only when complete."""
    total = planned.render.duration

    def fraction(seconds: float) -> None:
        if progress is not None:
            progress(min(1.0, seconds / total) if total > 0 else 1.0)

    encode(
        path, files.clip, planned.render, seen.health, cfg,
        progress=fraction if progress else None, log_file=files.log,
    )  # fmt: skip


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
    st = clip.stat()
    return Verified(info, hidden, (st.st_size, st.st_mtime_ns), sha256_file(clip))


def measure(files: ClipFiles, planned: Plan, cfg: Config) -> Measured:
    """Quality flags' measurements and the output's loudness: one decode of the finished clip."""
    r = planned.render
    content = r.fg_size if r.background else None
    started = time.monotonic()
    values = quality.measure_clip(
        files.clip, cfg, content=content, duration=r.duration, log_file=files.log
    )
    if values.loudness is None:  # pragma: no cover - ebur128 always prints its summary
        raise RuntimeError(f"ebur128 printed no summary for {files.clip.name}")
    return Measured(values, content, time.monotonic() - started)


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
        seconds=round(time.monotonic() - started, 2),
        rendered_by=f"{socket.gethostname()}:{os.getpid()}",
        rendered_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )  # fmt: skip
    return quality.record(
        made, measured.values, cfg, content=measured.content, seconds=measured.seconds
    )
