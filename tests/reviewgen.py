"""A batch for the review tests: clean clips, one clip per quality problem, a rejection.

Every clip has its own base picture (testsrc2 in four orientations counts as
four: a perceptual hash sees a mirrored picture as a different one, but a
darkened or blurred testsrc2 as a copy of testsrc2), so only the deliberate copy
is a duplicate. Ground truth:

* ``clean-bars.mp4`` testsrc2; ``clean-fractal.mp4`` a zooming Mandelbrot in
  portrait (blurred fill beside it); ``clean-turned.mp4`` testsrc2 turned 180°;
  ``face.mp4`` scikit-image's astronaut photograph, slowly zoomed.
* ``dark.mp4`` mirrored testsrc2 with RGB levels capped at 25 % (mean luma ~0.1): dark, not black.
* ``blurry.mp4`` upside-down testsrc2 under a Gaussian blur of sigma 8.
* ``silent.mp4`` a cellular automaton with no audio track (silence is added).
* ``frozen.mp4`` one frame of a mirrored testsrc held for the whole clip.
* ``black.mp4`` a moving Sierpinski carpet, black from :data:`BLACK_FROM` to
  :data:`BLACK_TO` seconds.
* ``copy-of-bars.mp4`` ``clean-bars.mp4`` re-encoded at 640x360, CRF 32, other name.
* ``empty.mp4`` zero bytes: rejected.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import cv2
import pytest
from skimage import data

import mediagen as mg
from processing import runner
from processing.config import Config, load_config
from processing.pipeline import process_batch
from processing.report import Entry
from processing.storage import LocalSource

DURATION = 3.0
BLACK_FROM, BLACK_TO = 0.5, 2.5
TIMEOUT = 120.0

_BARS = "testsrc2=s={w}x{h}:r={fps}:d={d}"


def make_face(path: Path, duration: float = DURATION) -> Path:
    """The astronaut photo in a 720x720 clip, zooming in slowly, with a tone."""
    png = path.with_suffix(".astronaut.png")
    cv2.imwrite(str(png), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    try:
        runner.run(
            [
                "-y", "-v", "error", "-loop", "1", "-framerate", "30", "-i", runner.input_path(png),
                "-f", "lavfi", "-i", "sine=frequency=220:sample_rate=48000,volume=0.3",
                "-vf", "zoompan=z='1+0.002*on':x='iw/2-iw/zoom/2':y='ih/3-ih/zoom/3'"
                       ":d=1:s=720x720:fps=30,format=yuv420p",
                "-t", f"{duration:g}", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
                "-shortest", runner.input_path(path),
            ],
            timeout=TIMEOUT,
        )  # fmt: skip
    finally:
        png.unlink(missing_ok=True)
    return path


def make_copy(path: Path, original: Path) -> Path:
    """``original`` re-encoded smaller and worse: the same video uploaded again."""
    runner.run(
        [
            "-y", "-v", "error", "-i", runner.input_path(original), "-vf", "scale=640:360",
            "-c:v", "libx264", "-preset", "ultrafast", "-crf", "32", "-c:a", "aac",
            runner.input_path(path),
        ],
        timeout=TIMEOUT,
    )  # fmt: skip
    return path


def _clip(content: str, **kw: object) -> Callable[[Path], Path]:
    return lambda p: mg.make_clip(p, duration=DURATION, content=content, **kw)  # type: ignore[arg-type]


#: name → (maker, sidecar, flags it must raise besides no_face)
CLEAN: dict[str, tuple[Callable[[Path], Path], dict, set[str]]] = {
    "clean-bars.mp4": (
        _clip(_BARS),
        {
            "name": "Айшат из Грозного",
            "language": "ru",
            "consent": True,
            "message": "<script>alert('x')</script> & \"помним\" — <b>not bold</b>",
        },
        {"duplicate"},  # copy-of-bars.mp4 is a copy of it: both are flagged
    ),
    "clean-fractal.mp4": (
        _clip("mandelbrot=s={w}x{h}:r={fps},trim=duration={d}", size=(720, 1280)),
        {"name": "Maria", "language": "en", "consent": True, "message": "For Zelimkhan."},
        set(),
    ),
    "clean-turned.mp4": (
        _clip(_BARS + ",hflip,vflip"),
        {"name": "محمد", "language": "ar", "consent": True, "message": "لن ننسى"},
        set(),
    ),
}
FACE = {"face.mp4": (make_face, {"name": "Sam", "consent": True}, set())}
BAD: dict[str, tuple[Callable[[Path], Path], dict, set[str]]] = {
    "dark.mp4": (
        _clip(_BARS + ",hflip,colorlevels=romax=0.25:gomax=0.25:bomax=0.25"),
        {"name": "Dark", "consent": True},
        {"dark"},
    ),
    "blurry.mp4": (
        _clip(_BARS + ",vflip,gblur=sigma=8"),
        {"name": "Blurry", "consent": True},
        {"blurry"},
    ),
    "silent.mp4": (
        _clip(
            "cellauto=s={w}x{h}:r={fps}:rule=110:random_fill_ratio=0.5,trim=duration={d}",
            audio=None,
        ),
        {"name": "Silent", "consent": True},
        {"silent"},
    ),
    "frozen.mp4": (
        _clip("testsrc=s={w}x{h}:r={fps}:d=0.04,vflip,tpad=stop_duration={d}:stop_mode=clone"),
        {"name": "Frozen", "consent": True},
        {"frozen"},
    ),
    "black.mp4": (
        _clip(
            "sierpinski=s={w}x{h}:r={fps},trim=duration={d},drawbox=x=0:y=0:w=iw:h=ih:"
            f"color=black:t=fill:enable='between(t,{BLACK_FROM},{BLACK_TO})'"
        ),
        {"name": "Black", "consent": True},
        {"black"},
    ),
}
COPY = "copy-of-bars.mp4"
REJECTED = "empty.mp4"


def build_uploads(root: Path) -> Path:
    """Write every upload and its sidecar into ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for name, (make, sidecar, _) in {**CLEAN, **FACE, **BAD}.items():
        make(root / name)
        (root / name).with_suffix(".json").write_text(
            json.dumps(sidecar, ensure_ascii=False), "utf-8"
        )
    make_copy(root / COPY, root / "clean-bars.mp4")
    (root / COPY).with_suffix(".json").write_text(
        json.dumps({"name": "Someone else", "consent": True}), "utf-8"
    )
    mg.make_empty(root / REJECTED)
    return root


@dataclass(frozen=True)
class ReviewBatch:
    """The review uploads processed once by :func:`processing.pipeline.process_batch`."""

    uploads: Path
    out: Path
    cfg: Config
    entries: dict[str, Entry]
    """By upload name."""

    def id(self, name: str) -> str:
        return self.entries[name].id


_batch: ReviewBatch | None = None


def review_batch(tmp_path_factory: pytest.TempPathFactory) -> ReviewBatch:
    """Build and process the uploads once per test session (shared by test modules).

    x264's ``superfast`` preset (still High profile, so the output checks
    pass) halves the encode time; everything else is the default config.
    """
    global _batch
    if _batch is None:
        root = tmp_path_factory.mktemp("review")
        uploads = build_uploads(root / "uploads")
        cfg = load_config(overrides={"output": {"x264_preset": "superfast"}})
        entries = process_batch(LocalSource(uploads, cfg.ingest.ignore), root / "out", cfg)
        _batch = ReviewBatch(uploads, root / "out", cfg, {e.source: e for e in entries})
    return _batch


class AnonymizationShown(HTMLParser):
    """What a review page shows in each card's anonymization block.

    ``cards[id]`` holds ``"kind"`` (the block's ``data-kind``) and, per
    ``data-key``, the texts of those elements in page order (a span's times
    repeat), with ``hidden_share`` read from its ``data-value``.
    """

    def __init__(self, page: str) -> None:
        super().__init__()
        self.cards: dict[str, dict[str, list[str] | str]] = {}
        self._card: str | None = None
        self._key: str | None = None
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "article":
            self._card = a.get("data-id")
            return
        if self._card is None:
            return
        shown = self.cards.setdefault(self._card, {})
        if a.get("data-kind"):
            shown["kind"] = str(a["data-kind"])
        key = a.get("data-key")
        if key == "hidden_share":
            shown.setdefault(key, []).append(str(a.get("data-value")))  # type: ignore[union-attr]
        elif key:
            self._key = key

    def handle_data(self, data: str) -> None:
        if self._card is not None and self._key is not None:
            self.cards[self._card].setdefault(self._key, []).append(data.strip())  # type: ignore[union-attr]
            self._key = None
