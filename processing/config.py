"""Campaign settings: ``defaults.toml`` overlaid with the user's TOML file."""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

from .config_texts import CardText as CardText
from .config_texts import card_texts, coerce, upload_texts
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
    qr_codes: bool

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
    prepare_ahead: int


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
class Upload:
    """The contributor upload page (``reel upload serve``, :mod:`processing.upload`)."""

    target: str
    max_mb: int
    chunk_kb: int
    starts_per_hour: int
    mb_per_hour: int
    consent_version: str
    abandoned_days: int
    presign_seconds: int
    keep_originals_days: int
    """Days an original upload is kept after its clip was rendered; 0 keeps it forever."""


@dataclass(frozen=True)
class Social:
    """How vertical and square renditions follow the speaker (``processing.social``)."""

    max_pan_px: float
    still_share: float
    face_margin: float
    smooth_seconds: float
    apart_share: float
    renditions: tuple[str, ...]
    target_i: float
    max_part_seconds: float
    part_title_seconds: float
    target_i_9x16: float
    target_i_1x1: float
    x264_preset: str
    crf: int

    def target_for(self, aspect: str) -> float:
        """Integrated loudness of the ``aspect`` rendition (its own setting, else ``target_i``)."""
        own = {"9:16": self.target_i_9x16, "1:1": self.target_i_1x1}.get(aspect, 0.0)
        return own or self.target_i


@dataclass(frozen=True)
class Links:
    """Where staff and editors open what a run made, over http(s) (see ``[links]``)."""

    review_app_url: str
    files_url: str


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
    upload: Upload
    social: Social
    cards: dict[str, CardText]
    links: Links
    source_file: Path | None = field(default=None, compare=False)
    #: The upload page's texts by language (``[upload_text.<lang>]``), every key a string.
    upload_text: dict[str, dict[str, str]] = field(default_factory=dict)

    def card_text(self) -> CardText:
        """The card texts in ``compilation.language``."""
        return self.cards[self.compilation.language]

    def for_renditions(self) -> Config:
        """These settings with ``social``'s x264 preset and CRF in ``[output]``.

        What every segment of a 9:16 or 1:1 cut is encoded with (a clip's
        rendition and that frame's cards), so they join by stream copy.
        """
        s = self.social
        return replace(self, output=replace(self.output, x264_preset=s.x264_preset, crf=s.crf))

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
        if self.social.renditions:  # only then: turning them on re-renders, other keys stay
            s = self.social
            relevant["social"] = {
                "renditions": list(s.renditions), "max_pan_px": s.max_pan_px,
                "still_share": s.still_share, "face_margin": s.face_margin,
                "smooth_seconds": s.smooth_seconds, "apart_share": s.apart_share,
                "x264_preset": s.x264_preset, "crf": s.crf,
            }  # fmt: skip
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
            "part_title_seconds": self.social.part_title_seconds,
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
    "upload": Upload,
    "social": Social,
    "links": Links,
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
        if section in ("cards", "upload_text") and isinstance(values, dict):
            for lang, text in values.items():
                if not isinstance(text, dict):
                    raise ConfigError(f"{where}: [{section}.{lang}] must be a table")
                base[section].setdefault(lang, {}).update(text)
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


def _build(data: dict[str, Any], path: Path | None, validate: bool = True) -> Config:
    built: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        values = {}
        for f in fields(cls):
            value = data[name][f.name]
            values[f.name] = coerce(f"{name}.{f.name}", value, str(f.type))
        built[name] = cls(**values)
    cfg = Config(
        **built,
        cards=card_texts(data["cards"]),
        source_file=path,
        upload_text=upload_texts(data["upload_text"]),
    )
    from .config_check import value_problems  # it reads Config: imported here, not at the top

    problems = value_problems(cfg) if validate else []
    if problems:
        raise ConfigError("; ".join(problems))
    return cfg
