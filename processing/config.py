"""Campaign settings: ``defaults.toml`` overlaid with the user's TOML file."""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import ConfigError

#: Bump when a change to the pipeline changes its output for the same settings,
#: so that cached clips are re-encoded.
PIPELINE_VERSION = "2"


@dataclass(frozen=True)
class Campaign:
    hashtag: str


@dataclass(frozen=True)
class Output:
    width: int
    height: int
    fps: int
    x264_preset: str
    crf: int
    maxrate_kbps: int
    keyframe_seconds: int
    audio_bitrate_kbps: int
    sample_rate: int


@dataclass(frozen=True)
class Loudness:
    target_i: float
    target_tp: float
    max_gain_db: float
    tolerance_lu: float


@dataclass(frozen=True)
class Limits:
    min_duration: float
    max_duration: float
    over_max: str
    max_input_duration: float
    max_file_bytes: int
    min_side: int
    max_side: int
    max_pixels: int
    timeout_base_seconds: float
    timeout_factor: float

    def timeout_for(self, duration: float) -> float:
        """Seconds an ffmpeg call on a clip of ``duration`` seconds may take."""
        return self.timeout_base_seconds + self.timeout_factor * max(duration, 0.0)


@dataclass(frozen=True)
class Quality:
    """Thresholds of the quality flags; see ``processing.quality`` and ``[quality]``."""

    dark_luma: float
    blurry_sharpness: float
    silence_db: float
    silent_fraction: float
    freeze_noise: float
    frozen_seconds: float
    black_luma: float
    black_pixels: float
    black_seconds: float
    face_fraction: float
    duplicate_bits: int
    duplicate_fraction: float


@dataclass(frozen=True)
class Captions:
    font: str
    show_hashtag: bool
    show_name: bool
    max_name_chars: int


@dataclass(frozen=True)
class Anonymize:
    analysis_width: int
    detect_every: int
    margin: float
    hold_seconds: float
    coverage: str
    no_face: str
    min_score: float
    blur_cells: int
    voice: bool
    voice_pitch: float


@dataclass(frozen=True)
class Ingest:
    ignore: tuple[str, ...]
    max_sidecar_bytes: int


@dataclass(frozen=True)
class Compilation:
    language: str
    year: int
    require_consent: bool
    max_total_seconds: float
    title_seconds: float
    end_seconds: float
    crossfade_seconds: float

    def resolved_year(self, today: date | None = None) -> int:
        """The year of the March 29 this compilation is for."""
        if self.year:
            return self.year
        today = today or date.today()
        return today.year if (today.month, today.day) <= (3, 29) else today.year + 1


@dataclass(frozen=True)
class Orchestration:
    max_parallel_encodes: int
    approval_timeout_hours: float
    storage_retries: int
    storage_retry_delay_seconds: float
    lock_wait_seconds: float
    lease_seconds: float


@dataclass(frozen=True)
class Storage:
    """How ``s3://`` sources and outputs are reached (credentials come from the AWS environment)."""

    presign_seconds: int
    staging_dir: str
    max_attempts: int
    connect_timeout_seconds: float
    read_timeout_seconds: float
    multipart_mb: int
    transfer_concurrency: int
    publish_logs: bool


@dataclass(frozen=True)
class Schedules:
    source: str
    out: str
    nightly_cron: str
    compilation_cron: str
    timezone: str


@dataclass(frozen=True)
class CardText:
    """What the title and end cards say in one language."""

    title: str
    subtitle: str
    end_title: str
    end_lines: tuple[str, ...]
    title_chapter: str
    end_chapter: str
    anonymous: str


@dataclass(frozen=True)
class Config:
    """All campaign settings. Build with :func:`load_config`."""

    campaign: Campaign
    output: Output
    loudness: Loudness
    limits: Limits
    quality: Quality
    captions: Captions
    anonymize: Anonymize
    ingest: Ingest
    compilation: Compilation
    orchestration: Orchestration
    storage: Storage
    schedules: Schedules
    cards: dict[str, CardText]
    source_file: Path | None = field(default=None, compare=False)

    def card_text(self) -> CardText:
        """The card texts in ``compilation.language``."""
        return self.cards[self.compilation.language]

    def render_fingerprint(self) -> str:
        """A short hash of every setting that changes how a clip is rendered.

        A cached clip made under another fingerprint is re-encoded.
        """
        relevant = {
            "pipeline": PIPELINE_VERSION,
            "campaign": asdict(self.campaign),
            "output": asdict(self.output),
            "loudness": asdict(self.loudness),
            "captions": asdict(self.captions),
            "anonymize": asdict(self.anonymize),
            "max_duration": self.limits.max_duration,
        }
        blob = json.dumps(relevant, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("source_file")
        return d

    def cards_fingerprint(self) -> str:
        """A short hash of what the cards depend on (their text, frame and codec)."""
        relevant = {
            "pipeline": PIPELINE_VERSION,
            "output": asdict(self.output),
            "captions_font": self.captions.font,
            "hashtag": self.campaign.hashtag,
            "compilation": asdict(self.compilation),
            "text": asdict(self.card_text()),
        }
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


_SECTIONS = {
    "campaign": Campaign,
    "output": Output,
    "loudness": Loudness,
    "limits": Limits,
    "quality": Quality,
    "captions": Captions,
    "anonymize": Anonymize,
    "ingest": Ingest,
    "compilation": Compilation,
    "orchestration": Orchestration,
    "storage": Storage,
    "schedules": Schedules,
}


def default_toml() -> str:
    """The documented defaults file, as text."""
    return resources.files("processing").joinpath("defaults.toml").read_text("utf-8")


def load_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Load the defaults, then ``path`` (if any), then ``overrides`` on top.

    Raises:
        ConfigError: The file is unreadable, not TOML, or has an unknown key or a
            value of the wrong type. The message names the key.
    """
    data = tomllib.loads(default_toml())
    if path is not None:
        try:
            user = tomllib.loads(Path(path).read_text("utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
        _merge(data, user, where=str(path))
    if overrides:
        _merge(data, overrides, where="overrides")
    return _build(data, path)


def _merge(base: dict[str, Any], extra: dict[str, Any], where: str) -> None:
    for section, values in extra.items():
        if section == "cards" and isinstance(values, dict):
            for lang, text in values.items():
                if not isinstance(text, dict):
                    raise ConfigError(f"{where}: [cards.{lang}] must be a table")
                base["cards"].setdefault(lang, {}).update(text)
            continue
        if section not in base:
            raise ConfigError(
                f"{where}: unknown section [{section}]; known sections: {', '.join(base)}"
            )
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: [{section}] must be a table")
        for key, value in values.items():
            if key not in base[section]:
                raise ConfigError(
                    f"{where}: unknown key {section}.{key}; see `reel config` for every key"
                )
            base[section][key] = value


def _build(data: dict[str, Any], path: Path | None) -> Config:
    built: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        values = {}
        for f in fields(cls):
            value = data[name][f.name]
            values[f.name] = _coerce(f"{name}.{f.name}", value, str(f.type))
        built[name] = cls(**values)
    cards = {}
    for lang, text in data["cards"].items():
        missing = [f.name for f in fields(CardText) if f.name not in text]
        unknown = [k for k in text if k not in {f.name for f in fields(CardText)}]
        if missing or unknown:
            raise ConfigError(
                f"[cards.{lang}]: missing {', '.join(missing) or 'nothing'}; "
                f"unknown {', '.join(unknown) or 'nothing'}"
            )
        cards[lang] = CardText(
            **{
                f.name: _coerce(f"cards.{lang}.{f.name}", text[f.name], str(f.type))
                for f in fields(CardText)
            }
        )
    cfg = Config(**built, cards=cards, source_file=path)
    _validate(cfg)
    return cfg


def _coerce(key: str, value: Any, type_name: str) -> Any:
    ok: bool
    if type_name == "bool":
        ok = isinstance(value, bool)
    elif type_name == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif type_name == "float":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif type_name == "str":
        ok = isinstance(value, str)
    elif type_name.startswith("tuple"):
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        value = tuple(value) if ok else value
    else:  # pragma: no cover - a new field type needs a branch here
        raise AssertionError(f"no coercion for {type_name}")
    if not ok:
        raise ConfigError(f"{key} must be a {type_name}, got {value!r}")
    return value


#: x264 presets whose clips pass their own output check (H.264 High), fastest first;
#: ``ultrafast`` writes Constrained Baseline (tests/test_small_defects.py encodes each).
X264_PRESETS = ("superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
                "veryslow", "placebo")  # fmt: skip


def _validate(cfg: Config) -> None:
    o, lim, loud = cfg.output, cfg.limits, cfg.loudness
    problems = []
    if o.width % 2 or o.height % 2 or not (16 <= o.width <= 7680 and 16 <= o.height <= 4320):
        problems.append("output.width and output.height must be even and between 16 and 7680x4320")
    if not 1 <= o.fps <= 120:
        problems.append("output.fps must be between 1 and 120")
    if o.sample_rate not in (44100, 48000):
        problems.append("output.sample_rate must be 44100 or 48000")
    if o.x264_preset == "ultrafast":  # no CABAC or 8x8 transform: x264 writes Baseline
        problems.append("output.x264_preset ultrafast makes H.264 Baseline, not High")
    elif o.x264_preset not in X264_PRESETS:
        problems.append(f"output.x264_preset must be one of {', '.join(X264_PRESETS)}")
    if lim.over_max not in ("trim", "reject"):
        problems.append('limits.over_max must be "trim" or "reject"')
    anon = cfg.anonymize
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
    if not 0 < lim.min_duration < lim.max_duration:
        problems.append("limits.min_duration must be positive and below limits.max_duration")
    if loud.target_tp >= 0 or loud.target_i >= 0:
        problems.append("loudness.target_i and loudness.target_tp must be negative")
    q = cfg.quality
    shares = (q.dark_luma, q.silent_fraction, q.freeze_noise, q.black_luma, q.black_pixels,
              q.face_fraction, q.duplicate_fraction)  # fmt: skip
    if not all(0 <= v <= 1 for v in shares) or not 0 <= q.duplicate_bits <= 64:
        problems.append(
            "quality: luma, fractions and freeze_noise must be between 0 and 1, "
            "duplicate_bits between 0 and 64"
        )
    st = cfg.storage
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
    orch = cfg.orchestration
    if orch.lock_wait_seconds < 0 or orch.lease_seconds < 10:
        problems.append(
            "orchestration.lock_wait_seconds must be 0 or more, lease_seconds at least 10"
        )
    if cfg.compilation.language not in cfg.cards:
        problems.append(
            f"compilation.language {cfg.compilation.language!r} has no [cards."
            f"{cfg.compilation.language}] table (have: {', '.join(sorted(cfg.cards))})"
        )
    if problems:
        raise ConfigError("; ".join(problems))
