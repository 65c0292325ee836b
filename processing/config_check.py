"""Every problem of a campaign configuration, at once.

:func:`value_problems` is what :func:`processing.config.load_config` refuses a
configuration for (ranges, choices, cron strings, time zones, absolute
scheduled folders, http links). :func:`check_file` is ``reel config --check``:
it also lists every unknown key (with the known key it was probably meant to
be) and every value of the wrong type, then tries the output settings on a
trial encode of a few frames, and reports all of it rather than the first.
"""

from __future__ import annotations

import difflib
import tomllib
import zoneinfo
from datetime import datetime
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

from .config import (
    _SECTIONS,
    Anonymize,
    Config,
    Links,
    Output,
    Quality,
    Schedules,
    Social,
    Storage,
    Upload,
    _build,
    _merge,
    default_toml,
)
from .config_texts import coerce
from .errors import ConfigError, FFmpegError

#: x264 presets whose clips pass their own output check (H.264 High), fastest first;
#: ``ultrafast`` writes Constrained Baseline (tests/test_small_defects.py encodes each).
X264_PRESETS = ("superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
                "veryslow", "placebo")  # fmt: skip


def value_problems(cfg: Config) -> list[str]:
    """One line per setting of ``cfg`` that is out of range or not a valid choice."""
    lim, loud = cfg.limits, cfg.loudness
    problems = _output_problems(cfg.output)
    if lim.over_max not in ("trim", "reject"):
        problems.append('limits.over_max must be "trim" or "reject"')
    problems += _anonymize_problems(cfg.anonymize)
    if not 0 < lim.min_duration < lim.max_duration:
        problems.append("limits.min_duration must be positive and below limits.max_duration")
    if loud.target_tp >= 0 or loud.target_i >= 0:
        problems.append("loudness.target_i and loudness.target_tp must be negative")
    problems += _quality_problems(cfg.quality) + _storage_problems(cfg.storage)
    orch = cfg.orchestration
    if orch.lock_wait_seconds < 0 or orch.lease_seconds < 10:
        problems.append(
            "orchestration.lock_wait_seconds must be 0 or more, lease_seconds at least 10"
        )
    if orch.prepare_ahead < 0:
        problems.append("orchestration.prepare_ahead must be 0 or more")
    if cfg.compilation.language not in cfg.cards:
        problems.append(
            f"compilation.language {cfg.compilation.language!r} has no [cards."
            f"{cfg.compilation.language}] table (have: {', '.join(sorted(cfg.cards))})"
        )
    problems += _social_problems(cfg.social) + _upload_problems(cfg.upload)
    return problems + _schedule_problems(cfg.schedules) + _link_problems(cfg.links)


def _output_problems(o: Output) -> list[str]:
    problems: list[str] = []
    if o.width % 2 or o.height % 2 or not (16 <= o.width <= 7680 and 16 <= o.height <= 4320):
        problems.append("output.width and output.height must be even and between 16 and 7680x4320")
    if not 1 <= o.fps <= 120:
        problems.append("output.fps must be between 1 and 120")
    if o.sample_rate not in (44100, 48000):
        problems.append("output.sample_rate must be 44100 or 48000")
    if not 0 <= o.crf <= 51 or o.maxrate_kbps <= 0 or o.keyframe_seconds <= 0:
        problems.append(
            "output.crf must be between 0 and 51 (x264's range), maxrate_kbps and "
            "keyframe_seconds positive"
        )
    if o.x264_preset == "ultrafast":  # no CABAC or 8x8 transform: x264 writes Baseline
        problems.append("output.x264_preset ultrafast makes H.264 Baseline, not High")
    elif o.x264_preset not in X264_PRESETS:
        problems.append(f"output.x264_preset must be one of {', '.join(X264_PRESETS)}")
    return problems


def _anonymize_problems(anon: Anonymize) -> list[str]:
    problems: list[str] = []
    if not (160 <= anon.analysis_width <= 1920 and 1 <= anon.detect_every <= 30):
        problems.append("anonymize.analysis_width must be 160-1920, detect_every 1-30")
    if anon.coverage not in ("clip", "track") or anon.no_face not in ("blur_all", "reject"):
        problems.append(
            'anonymize.coverage must be "clip" or "track", no_face "blur_all" or "reject"'
        )
    if not (0 <= anon.margin <= 2 and 0 <= anon.hold_seconds <= 10 and 2 <= anon.blur_cells <= 64):
        problems.append("anonymize.margin must be 0-2, hold_seconds 0-10, blur_cells 2-64")
    if not 0.1 <= anon.min_score <= 0.9:
        problems.append("anonymize.min_score must be between 0.1 and 0.9")
    if not 0.5 <= anon.voice_pitch <= 2 or anon.voice_pitch == 1:
        problems.append("anonymize.voice_pitch must be between 0.5 and 2, and not 1")
    return problems


def _quality_problems(q: Quality) -> list[str]:
    problems: list[str] = []
    shares = (q.dark_luma, q.silent_fraction, q.freeze_noise, q.black_luma, q.black_pixels,
              q.face_fraction, q.duplicate_fraction)  # fmt: skip
    if not all(0 <= v <= 1 for v in shares) or not 0 <= q.duplicate_bits <= 64:
        problems.append(
            "quality: luma, fractions and freeze_noise must be between 0 and 1, "
            "duplicate_bits between 0 and 64"
        )
    return problems


def _storage_problems(st: Storage) -> list[str]:
    problems: list[str] = []
    if not 1 <= st.presign_seconds <= 604800:
        problems.append(
            "storage.presign_seconds must be between 1 and 604800 (7 days, the longest an "
            "S3 presigned link can be valid)"
        )
    if not (1 <= st.max_attempts <= 20 and 1 <= st.transfer_concurrency <= 64):
        problems.append("storage.max_attempts must be 1-20, storage.transfer_concurrency 1-64")
    if st.multipart_mb < 5 or st.connect_timeout_seconds <= 0 or st.read_timeout_seconds <= 0:
        problems.append(
            "storage.multipart_mb must be at least 5 (the S3 minimum part size) and the "
            "timeouts positive"
        )
    return problems


def _social_problems(so: Social) -> list[str]:
    problems = []
    if not (0 < so.max_pan_px <= 200 and 0 <= so.still_share <= 1 and 0 <= so.face_margin <= 2):
        problems.append("social.max_pan_px must be 0-200, still_share 0-1 and face_margin 0-2")
    unknown = sorted(set(so.renditions) - {"9:16", "1:1"})
    if unknown:
        problems.append(f'social.renditions may hold "9:16" and "1:1", not {", ".join(unknown)}')
    if so.target_i >= 0 or so.part_title_seconds < 0:
        problems.append("social.target_i must be negative and part_title_seconds 0 or more")
    if so.target_i_9x16 > 0 or so.target_i_1x1 > 0:
        problems.append(
            "social.target_i_9x16 and target_i_1x1 must be negative LUFS (0 = target_i)"
        )
    if so.max_part_seconds and so.max_part_seconds < so.part_title_seconds + 10:
        problems.append(
            "social.max_part_seconds must be 0 (no split) or at least 10 s more than a part title"
        )
    if not (0 <= so.smooth_seconds <= 10 and 0 < so.apart_share <= 1):
        problems.append("social.smooth_seconds must be 0-10 and apart_share above 0, at most 1")
    if so.x264_preset not in X264_PRESETS:  # ultrafast writes Baseline, not High
        problems.append(f"social.x264_preset must be one of {', '.join(X264_PRESETS)}")
    if not 0 <= so.crf <= 51:
        problems.append("social.crf must be between 0 and 51 (x264's range)")
    return problems


def _upload_problems(up: Upload) -> list[str]:
    problems = []
    if up.max_mb < 1 or up.chunk_kb < 16 or up.starts_per_hour < 1 or up.mb_per_hour < 1:
        problems.append(
            "upload.max_mb, starts_per_hour and mb_per_hour must be at least 1, chunk_kb 16"
        )
    if up.abandoned_days < 1:
        problems.append("upload.abandoned_days must be at least 1")
    if up.keep_originals_days < 0:
        problems.append("upload.keep_originals_days must be 0 (keep forever) or more")
    if not 60 <= up.presign_seconds <= 3600:
        problems.append("upload.presign_seconds must be between 60 and 3600")
    return problems


def _schedule_problems(s: Schedules) -> list[str]:
    problems = []
    for key in ("nightly_cron", "compilation_cron"):
        reason = cron_problem(getattr(s, key))
        if reason:
            value = getattr(s, key)
            problems.append(f"schedules.{key} {value!r} is not a valid cron string: {reason}")
    if s.timezone not in _timezones():
        close = difflib.get_close_matches(s.timezone, sorted(_timezones()), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else " (an IANA name: Europe/Moscow)"
        problems.append(f"schedules.timezone {s.timezone!r} is not a time zone{hint}")
    for key in ("source", "out"):
        value = getattr(s, key)
        if value and not value.startswith("s3://") and not PurePosixPath(value).is_absolute():
            problems.append(
                f"schedules.{key} {value!r} is relative: scheduled runs would resolve it against "
                "wherever `reel serve` was started; give an absolute folder or an s3:// prefix"
            )
    return problems


def cron_problem(cron: str) -> str | None:
    """Why ``cron`` is not a five-field cron string the Prefect scheduler accepts, or None."""
    from cronsim import CronSim, CronSimError

    fields = cron.split()
    if len(fields) != 5:
        return f"it has {len(fields)} fields, cron has 5 (minute hour day month weekday)"
    if any(f.upper() in ("R", "H") for f in fields):
        return "random (R) and hashed (H) fields are not supported"
    try:
        CronSim(cron, datetime(2000, 1, 1))
    except CronSimError as exc:
        return str(exc)
    return None


@cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _link_problems(links: Links) -> list[str]:
    return [
        f"links.{key} {value!r} must be an http:// or https:// address (or empty)"
        for key, value in (("review_app_url", links.review_app_url), ("files_url", links.files_url))
        if value and not value.startswith(("http://", "https://"))
    ]


def check_file(path: Path, *, trial_encode: bool = True) -> list[str]:
    """Every problem of the campaign file ``path``, one line each (empty: valid).

    Args:
        path: A campaign TOML file.
        trial_encode: Also encode a few frames with the output settings (needs ffmpeg).
    """
    try:
        user = tomllib.loads(Path(path).read_text("utf-8"))
    except OSError as exc:
        return [f"cannot read {path}: {exc.strerror}"]
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        return [f"not valid TOML: {exc}"]
    data = tomllib.loads(default_toml())
    problems, clean = _key_problems(user, data)
    try:
        _merge(data, clean, where=str(path))
        cfg = _build(data, Path(path), validate=False)
    except ConfigError as exc:
        return [*problems, str(exc)]
    problems += value_problems(cfg)
    if trial_encode and not any(p.startswith("output.") for p in problems):
        problems += _trial_encode(cfg)
    return problems


def _key_problems(
    user: dict[str, Any], defaults: dict[str, Any]
) -> tuple[list[str], dict[str, Any]]:
    """Unknown sections and keys (with a did-you-mean) and mistyped values; the rest, kept."""
    problems: list[str] = []
    clean: dict[str, Any] = {}
    for section, values in user.items():
        if section == "cards":
            clean[section] = values
            continue
        if section not in defaults:
            problems.append(f"unknown section [{section}]{_did_you_mean(section, defaults)}")
            continue
        if not isinstance(values, dict):
            problems.append(f"[{section}] must be a table")
            continue
        types = {f: str(t) for f, t in _SECTIONS[section].__annotations__.items()}
        for key, value in values.items():
            if key not in defaults[section]:
                hint = _did_you_mean(key, defaults[section])
                problems.append(f"unknown key {section}.{key}{hint}")
                continue
            try:
                coerce(f"{section}.{key}", value, types[key])
            except ConfigError as exc:
                problems.append(str(exc))
                continue
            clean.setdefault(section, {})[key] = value
    return problems, clean


def _did_you_mean(name: str, known: Any) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(known)}"


def _trial_encode(cfg: Config) -> list[str]:
    """Encode three frames with the output settings; the reason if x264 refuses them."""
    from . import runner

    o = cfg.output
    args = [
        "-f", "lavfi", "-i", f"testsrc2=size={o.width}x{o.height}:rate={o.fps}",
        "-frames:v", "3", "-c:v", "libx264", "-preset", o.x264_preset, "-crf", str(o.crf),
        "-maxrate", f"{o.maxrate_kbps}k", "-bufsize", f"{2 * o.maxrate_kbps}k",
        "-pix_fmt", "yuv420p", "-profile:v", "high", "-f", "null", "-",
    ]  # fmt: skip
    try:
        runner.run(args, timeout=60)
    except FFmpegError as exc:
        lines = [ln.strip() for ln in exc.stderr_tail.splitlines() if ln.strip()]
        said = [ln for ln in lines if "x264" in ln] or lines[-1:] or [exc.args[0]]
        last = said[0]
        return [
            f"output: a trial encode of 3 frames with x264_preset={o.x264_preset!r}, "
            f"crf={o.crf}, maxrate_kbps={o.maxrate_kbps} failed: {last}"
        ]
    except FileNotFoundError:
        return ["output: ffmpeg is not installed, so the encoder settings were not tried"]
    return []
