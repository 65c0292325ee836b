"""EBU R128 loudness: measure with ``ebur128``, plan a gain, verify by simulation.

Why not ``loudnorm``: its dynamic mode needs 3 s of audio and lands far from
target on short clips, and its linear mode silently falls back to dynamic when
the peaks do not allow the gain. Instead we:

1. measure integrated loudness and true peak of the clip's audio after the same
   resample/downmix the encode uses (in the health check's pass over the sound);
2. apply pure linear gain when the true peak allows it;
3. otherwise apply the gain followed by a limiter running at 4x the sample rate
   (so it catches inter-sample peaks), then re-measure that chain on the audio
   alone and correct the gain until the simulated result is on target.

The same meter measures the output, so clips of any length land on target.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from . import runner
from .config import Loudness

#: BS.1770's absolute gate (LUFS): blocks under it are not programme. A clip whose
#: integrated loudness is at or under it (``ebur128`` reports -70.0 for a clip with
#: no block above it) is silent and gets no gain; anything louder is sound, however
#: quiet, and is raised like any other clip.
ABSOLUTE_GATE = -70.0
#: BS.1770's relative gate: blocks this far under the mean of the rest are dropped.
RELATIVE_GATE_LU = 10.0
#: A gain above this is named in the clip's warnings: the background is raised too.
LARGE_GAIN_DB = 30.0
#: Headroom kept below the true-peak ceiling for the AAC encoder's overshoot.
AAC_HEADROOM_DB = 1.0
_OVERSAMPLE = 4

_I = re.compile(r"^\s*I:\s+(-?[\d.]+|-inf|nan)\s+LUFS", re.M)
_PEAK = re.compile(r"True peak:\s*\n\s*Peak:\s+(-?[\d.]+|-inf|nan)\s+dBFS", re.M)
_LRA = re.compile(r"^\s*LRA:\s+(-?[\d.]+|nan)\s+LU", re.M)


@dataclass(frozen=True)
class Measurement:
    """Integrated loudness (LUFS), true peak (dBTP) and loudness range (LU)."""

    integrated: float
    true_peak: float
    lra: float

    @property
    def silent(self) -> bool:
        return is_silent(self.integrated)


@dataclass(frozen=True)
class GainPlan:
    """How the encode changes the level: a gain in dB, limited or not."""

    gain_db: float
    limit: bool
    ceiling_db: float
    expected_i: float | None
    note: str | None = None

    def filters(self, sample_rate: int) -> list[str]:
        """Audio filters implementing the plan (empty for silence)."""
        if self.gain_db == 0 and not self.limit:
            return []
        chain = [f"volume={self.gain_db:.3f}dB"]
        if self.limit:
            ceiling = 10 ** (self.ceiling_db / 20)
            chain += [
                f"aresample={sample_rate * _OVERSAMPLE}",
                f"alimiter=limit={ceiling:.6f}:attack=5:release=50:level=disabled",
                f"aresample={sample_rate}",
            ]
        return chain


def is_silent(integrated: float | None) -> bool:
    """Whether an integrated loudness (LUFS) is silence: nothing above BS.1770's absolute gate."""
    return integrated is None or not math.isfinite(integrated) or integrated <= ABSOLUTE_GATE


def parse_ebur128(stderr: str) -> Measurement | None:
    """Read the summary that ``ebur128=peak=true`` prints at the end of a run."""
    summary_at = stderr.rfind("Summary:")
    if summary_at < 0:
        return None
    summary = stderr[summary_at:]
    i = _I.search(summary)
    if not i:
        return None
    peak = _PEAK.search(summary)
    lra = _LRA.search(summary)
    return Measurement(
        integrated=_num(i.group(1)),
        true_peak=_num(peak.group(1)) if peak else -math.inf,
        lra=_num(lra.group(1)) if lra else 0.0,
    )


_MOMENTARY = re.compile(r"\bt:\s*(-?[\d.]+)\s+TARGET:.*?\bM:\s*(-?[\d.]+|-inf|nan)")
#: BS.1770 gating blocks: 400 ms long, a new one every 100 ms (ebur128's momentary log).
_BLOCK, _HOP = 0.4, 0.1


def windows_loudness(
    path: Path, windows: list[tuple[float, float]], *, timeout: float | None = None
) -> list[float]:
    """Integrated loudness (LUFS) of each ``(start, duration)`` window of ``path``'s sound.

    One decode: ``ebur128`` logs the loudness of every 400 ms block (a new
    block every 100 ms), and each window's integrated loudness is gated from
    the blocks that lie wholly inside it, as ITU-R BS.1770-4 gates a whole
    programme. Blocks start on 100 ms steps from the file's start and those
    touching a window's edges are left out, so up to 200 ms at either end of
    a window is not counted. A window with no block
    above the absolute gate (silence, or shorter than 400 ms) reads -70.0,
    the meter's own floor.
    """
    _, stderr = runner.run(
        ["-v", "verbose", "-nostats", "-i", runner.input_path(path), "-map", "0:a:0",
         "-af", "ebur128=framelog=verbose", "-f", "null", "-"],
        timeout=timeout,
    )  # fmt: skip
    # A block logged at t spans (t - 0.4, t]. One that touches a window's edge is
    # left out: coded sound smears a few milliseconds across a cut.
    blocks = [(float(t), _num(m)) for t, m in _MOMENTARY.findall(stderr)]
    eps = _HOP / 10
    return [
        gated_loudness([m for t, m in blocks if start + _BLOCK + eps <= t <= start + dur - eps])
        for start, dur in windows
    ]


def gated_loudness(blocks: list[float]) -> float:
    """Integrated loudness of 400 ms block loudnesses (LUFS), gated as ITU-R BS.1770-4 says.

    Blocks under -70 LUFS are dropped (absolute gate), then those more than
    10 LU under the mean of the rest (relative gate); the result is the mean
    power of what is left.
    """

    def mean_lufs(values: list[float]) -> float:
        return 10 * math.log10(sum(10 ** (v / 10) for v in values) / len(values))

    kept = [b for b in blocks if math.isfinite(b) and b > ABSOLUTE_GATE]
    if not kept:
        return ABSOLUTE_GATE
    relative = mean_lufs(kept) - RELATIVE_GATE_LU
    kept = [b for b in kept if b > relative]
    return mean_lufs(kept)


def meter_filter() -> str:
    """The meter appended to an audio chain; its summary goes to stderr."""
    return "ebur128=peak=true:framelog=verbose"


def measure_sound(
    path: Path, *, timeout: float, log_file: Path | None = None
) -> Measurement | None:
    """Integrated loudness and true peak of ``path``'s sound as it was encoded (audio only).

    The encode's own meter hears the sound before the AAC encoder, whose
    overshoot raises the true peak by a few tenths of a dB; this pass decodes
    the sound alone (the picture is not read), so the record says what plays.
    """
    args = ["-i", runner.input_path(path), "-map", "0:a:0", "-vn", "-sn", "-dn"]
    _, stderr = runner.run(
        [*args, "-af", meter_filter(), "-f", "null", "-"], timeout=timeout, log_file=log_file
    )
    return parse_ebur128(stderr)


def plan_gain(
    measured: Measurement,
    settings: Loudness,
    simulate: SimulateFn | None = None,
) -> GainPlan:
    """Choose the gain that puts ``measured`` on the target.

    Args:
        measured: The clip as it will enter the gain stage.
        settings: Targets and limits.
        simulate: Runs a candidate plan over the clip's audio and measures the
            result. Needed only when limiting is required or the clip is so
            quiet that BS.1770's absolute gate shapes its measurement.
    """
    ceiling = settings.target_tp - AAC_HEADROOM_DB
    if measured.silent:
        return GainPlan(0.0, False, ceiling, None, note="audio is silent")
    gain = min(settings.target_i - measured.integrated, settings.max_gain_db)
    note = _quiet_note(measured, settings, gain)
    # Near the gate, blocks the absolute gate dropped pass it once raised: the
    # result is quieter than measured + gain, so it is measured too.
    near_gate = measured.integrated - RELATIVE_GATE_LU < ABSOLUTE_GATE
    limit = measured.true_peak + gain > ceiling
    if not (limit or near_gate) or simulate is None:
        expected = None if limit else measured.integrated + gain
        return GainPlan(round(gain, 3), limit, ceiling, expected, note)
    plan = GainPlan(round(gain, 3), limit, ceiling, None, note)
    # Measure and correct (converges in 1-3 steps). At the maximum gain there is
    # nothing left to correct with: the note says so.
    for _ in range(4):
        result = simulate(plan)
        error = settings.target_i - result.integrated
        if abs(error) <= settings.tolerance_lu or (error > 0 and gain >= settings.max_gain_db):
            break
        gain = min(plan.gain_db + error, settings.max_gain_db)
        limit = limit or measured.true_peak + gain > ceiling
        plan = GainPlan(round(gain, 3), limit, ceiling, None, note)
    else:
        result = simulate(plan)
    return GainPlan(plan.gain_db, plan.limit, ceiling, result.integrated, note)


def _quiet_note(measured: Measurement, settings: Loudness, gain: float) -> str | None:
    """What the editors are told about a very quiet clip's gain, if anything."""
    short = settings.target_i - measured.integrated - gain
    if short > 0:
        return (
            f"audio is very quiet ({measured.integrated:.1f} LUFS); raised by the "
            f"maximum {settings.max_gain_db:.0f} dB only (loudness.max_gain_db), so it "
            f"plays about {short:.0f} LU under the other clips"
        )
    if gain > LARGE_GAIN_DB:
        return (
            f"audio is very quiet ({measured.integrated:.1f} LUFS); raised by {gain:.0f} dB, "
            "which raises its background noise as much"
        )
    return None


class SimulateFn:
    """Measures what a :class:`GainPlan` does to a clip's audio, without encoding."""

    def __init__(
        self,
        src: Path,
        pre_filters: list[str],
        sample_rate: int,
        duration: float,
        timeout: float,
        log_file: Path | None = None,
    ):
        self.src = src
        self.pre_filters = pre_filters
        self.sample_rate = sample_rate
        self.duration = duration
        self.timeout = timeout
        self.log_file = log_file
        self.calls = 0

    def __call__(self, plan: GainPlan) -> Measurement:
        self.calls += 1
        chain = ",".join([*self.pre_filters, *plan.filters(self.sample_rate), meter_filter()])
        _, stderr = runner.run(
            [
                "-t",
                f"{self.duration:.6f}",
                "-i",
                runner.input_path(self.src),
                "-map",
                "0:a:0",
                "-vn",
                "-af",
                chain,
                "-f",
                "null",
                "-",
            ],
            timeout=self.timeout,
            log_file=self.log_file,
        )
        measured = parse_ebur128(stderr)
        if measured is None:  # pragma: no cover - ebur128 always prints a summary
            raise RuntimeError("ebur128 printed no summary")
        return measured


def _num(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return -math.inf
