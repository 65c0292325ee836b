"""Session fixtures: the input zoo is generated once, the batch is processed once.

Most tests assert on what one real ``process_batch`` run produced from a folder
of mixed good and broken uploads, exactly as staff would run it.
"""

from __future__ import annotations

import os
import tempfile

# Prefect reads these when it is first imported: keep its database out of ~/.prefect.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="reel-prefect-home-")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "1")

import hashlib
import logging
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

import mediagen as mg
from processing.config import Config, load_config
from processing.pipeline import process_batch
from processing.report import Entry
from processing.storage import LocalSource
from tests.socialkit import Made, make_social_batch

#: Longest clip the batch config keeps; the "long" fixture is trimmed to it.
BATCH_MAX_DURATION = 5.0

HOSTILE_NAME = '-y O\'Brien "quoted"\nnewline.mp4'
LITERAL_NAME = 'O\'Brien: 100% "x" \\ {\\an8} $(rm -rf /)'
ARABIC_NAME = "محمد"


def _good(name: str, make: Callable[[Path], Path], sidecar: dict | None = None) -> tuple:
    return name, make, sidecar


#: Uploads that must be accepted, with what makes each one hard.
GOOD = [
    _good(
        "landscape.mp4",
        lambda p: mg.make_clip(p, duration=4, sync_marker=True),
        {"name": "Айшат из Грозного", "consent": True, "language": "ru"},
    ),
    _good(
        "portrait.mp4",
        lambda p: mg.make_portrait_rotated(p, duration=4),
        {"name": "Maria", "consent": True, "language": "en"},
    ),
    _good("vfr.mp4", lambda p: mg.make_vfr(p, duration=5), {"consent": True}),
    _good("hdr-pq.mp4", lambda p: mg.make_hdr(p, transfer="pq", duration=3)),
    _good("hdr-hlg.mp4", lambda p: mg.make_hdr(p, transfer="hlg", duration=3)),
    _good("hevc10.mp4", lambda p: mg.make_hevc_10bit(p)),
    _good("webcam.webm", lambda p: mg.make_webm(p), {"name": ARABIC_NAME, "language": "ar"}),
    _good("silent-video.mp4", lambda p: mg.make_clip(p, duration=3, audio=None)),
    _good("surround.mp4", lambda p: mg.make_clip(p, duration=3, audio="5.1", lufs=-30)),
    _good("mono.mp4", lambda p: mg.make_clip(p, duration=3, audio="mono", lufs=-12)),
    _good("two-seconds.mp4", lambda p: mg.make_clip(p, duration=2, lufs=-28)),
    _good("tiny.mp4", lambda p: mg.make_clip(p, duration=2, size=(160, 120))),
    _good(
        "uhd.mp4", lambda p: mg.make_clip(p, duration=1.5, size=(3840, 2160), preset="ultrafast")
    ),
    _good("anamorphic.mp4", lambda p: mg.make_anamorphic(p)),
    _good(
        "located.mov", lambda p: mg.make_with_location_tags(p, duration=2), {"name": LITERAL_NAME}
    ),
    _good("long.mp4", lambda p: mg.make_clip(p, duration=7, size=(640, 360))),
    _good(
        HOSTILE_NAME,
        lambda p: mg.make_clip(p, duration=2, size=(640, 360)),
        {"name": "Sam 🏳️‍🌈 李明"},
    ),
]

#: Uploads that must be rejected, with the reason code each must get.
BAD = [
    ("empty.mp4", mg.make_empty, "empty"),
    ("notes.mp4", mg.make_text_as_mp4, "not_media"),
    ("photo.mp4", mg.make_image_as_mp4, "not_video"),
    ("truncated.mp4", lambda p: mg.make_truncated(p), "truncated"),
    ("bitflipped.mp4", None, "corrupt"),  # built from landscape.mp4 below
    ("voice-memo.m4a", mg.make_audio_only, "no_video"),
    ("huge.y4m", mg.make_huge_dimensions, "bad_frame_size"),
    ("blink.mp4", mg.make_too_short, "too_short"),
]


@dataclass(frozen=True)
class Batch:
    """One processed batch: where things are and what the report said."""

    uploads: Path
    out: Path
    cfg: Config
    entries: dict[str, Entry]
    """By source key."""
    hashes_before: dict[str, str]

    def clip(self, key: str) -> Path:
        entry = self.entries[key]
        assert entry.status in ("accepted", "excluded"), f"{key}: {entry.status}: {entry.reason}"
        assert entry.output is not None
        return self.out / entry.output


def tree_hashes(root: Path) -> dict[str, str]:
    """SHA-256 of every regular file below ``root`` (symlinks by their target text)."""
    hashes = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = Path(dirpath, name)
            rel = str(p.relative_to(root))
            if p.is_symlink():
                hashes[rel] = "link:" + os.readlink(p)
            else:
                hashes[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return hashes


@pytest.fixture(scope="session")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of uploads as they arrive: good, broken, duplicated, hostile."""
    root = tmp_path_factory.mktemp("uploads")

    def build(item: tuple) -> None:
        name, make, sidecar = item
        make(root / name)
        if sidecar is not None:
            (root / Path(name).with_suffix(".json")).write_text(
                __import__("json").dumps(sidecar, ensure_ascii=False), "utf-8"
            )

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(build, GOOD))
        list(pool.map(lambda b: b[1](root / b[0]), [b for b in BAD if b[1] is not None]))
    mg.make_bitflipped(root / "bitflipped.mp4", root / "landscape.mp4", seed=7)
    shutil.copyfile(root / "mono.mp4", root / "mono-again.mp4")  # same bytes twice
    (root / "broken-sidecar.json").write_text("{not json", "utf-8")
    mg.make_clip(root / "broken-sidecar.mp4", duration=2, size=(640, 360), lufs=-20)
    outside = tmp_path_factory.mktemp("outside") / "secret.mp4"
    shutil.copyfile(root / "tiny.mp4", outside)
    (root / "escape.mp4").symlink_to(outside)
    return root


@pytest.fixture(scope="session")
def batch_config() -> Config:
    return load_config(overrides={"limits": {"max_duration": BATCH_MAX_DURATION}})


@pytest.fixture(scope="session")
def batch(zoo: Path, batch_config: Config, tmp_path_factory: pytest.TempPathFactory) -> Batch:
    """The whole zoo processed once, as ``reel process`` does."""
    before = tree_hashes(zoo)
    out = tmp_path_factory.mktemp("out")
    source = LocalSource(zoo, ignore=batch_config.ingest.ignore)
    entries = process_batch(source, out, batch_config)
    return Batch(zoo, out, batch_config, {e.source: e for e in entries}, before)


@pytest.fixture(scope="session")
def social_batch(tmp_path_factory: pytest.TempPathFactory) -> Made:
    """Three tiny uploads processed with 9:16 and 1:1 renditions (tests/socialkit.py), once.

    Shared by the per-clip and the compilation's rendition tests: 1080-wide
    renditions are the dearest encodes of the suite. Do not change its folders
    (use :func:`tests.socialkit.copy_batch`).
    """
    return make_social_batch(tmp_path_factory.mktemp("social"))


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[str]:
    """One real Prefect server (SQLite) for the whole session; yields its API URL."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        url = PREFECT_API_URL.value()
        os.environ["PREFECT_API_URL"] = url  # for subprocesses: `reel serve`, Dask workers
        yield url
        os.environ.pop("PREFECT_API_URL", None)


@pytest.fixture(autouse=True)
def _fail_on_error_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """A test that logged at ERROR without saying it expects to fails."""
    caplog.set_level(logging.INFO)
    yield
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR]
    if errors:
        pytest.fail("unexpected ERROR log: " + "; ".join(r.getMessage() for r in errors))
