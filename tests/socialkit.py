"""One batch of tiny uploads processed with social renditions on, shared by the social tests.

:func:`make_social_batch` runs the real :func:`process_batch` twice, as staff
would: a portrait clip (stored turned, with a display matrix, as a phone writes
it) without renditions, then with ``social.renditions = ["9:16", "1:1"]``
(:data:`SOCIAL_TOML`) beside a 16:9 clip of scikit-image's astronaut (a real
face) off-centre that jumps sideways faster than the window may move, carrying
a phone's location tags, and the same face clip asking to be anonymized.

The session fixture ``social_batch`` (tests/conftest.py) makes it once: the
per-clip tests (tests/test_social_clip.py) measure the clips' renditions, and
the compilation's tests (tests/test_compile_renditions.py) join those very
renditions. A test that changes the folders works on :func:`copy_batch`.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import mediagen as mg
from mediagen.faces import Person, Scene, make_face_clip
from processing import runner
from processing.config import Config, load_config
from processing.pipeline import process_batch
from processing.report import Entry
from processing.storage import LocalSource

FPS = 30
SRC = (640, 360)
PORTRAIT = (360, 640)
ASPECTS = ("9:16", "1:1")
#: 40 px of the 1080-wide output a frame: 7.5 px of the 202 px window on this 640x360 clip.
MAX_PAN = 40.0
PHOTO_SIDE = 300
HEAD_CENTRE = 225 / 512 * PHOTO_SIDE
#: The clips' settings (also a `reel --config` file): a small 16:9 clip and fast
#: presets keep the encodes short; renditions are 1080 wide whatever the clip's size,
#: and have their own preset and CRF, other than the clip's (tests tell them apart).
SOCIAL_TOML = f"""\
[output]
width = {SRC[0]}
height = {SRC[1]}
x264_preset = "veryfast"
crf = 20

[social]
renditions = {json.dumps(list(ASPECTS))}
max_pan_px = {MAX_PAN}
x264_preset = "superfast"
crf = 23
"""


def _jump(t: float) -> tuple[float, float, float, float]:
    """Head centre at 30 % of the width, then 160 px to the right in 0.1 s (16 px a frame)."""
    share = 0.30 + 0.25 * min(1.0, max(0.0, (t - 0.4) / 0.1))
    return share * SRC[0] - HEAD_CENTRE, 10, PHOTO_SIDE, 0.0


JUMP = Scene((Person(_jump),))


@dataclass(frozen=True)
class Made:
    """The processed batch: its folders, settings and the two runs' entries by source."""

    uploads: Path
    out: Path
    config: Path
    """:data:`SOCIAL_TOML`, written beside the folders."""
    cfg: Config
    before: dict[str, Entry]
    after: dict[str, Entry]


def _tagged(src: Path, dst: Path) -> Path:
    """``src`` remuxed with a phone's location, device and time tags."""
    args = ["-i", runner.input_path(src), "-c", "copy", "-movflags", "+use_metadata_tags"]
    for key, value in mg.LOCATION_TAGS.items():
        args += ["-metadata", f"{key}={value}"]
    runner.run([*args, "-y", runner.input_path(dst)], timeout=60)
    src.unlink()
    return dst


def make_social_batch(root: Path) -> Made:
    """Generate the uploads into ``root/uploads``, process them into ``root/out``."""
    uploads, out = root / "uploads", root / "out"
    uploads.mkdir()
    config = root / "social.toml"
    config.write_text(SOCIAL_TOML, "utf-8")
    make_face_clip(uploads / "tall.mp4", duration=2.0, size=PORTRAIT, clockwise=90)
    (uploads / "tall.json").write_text(json.dumps({"consent": True, "name": "Ada"}))
    cfg = load_config(config)
    base = load_config(config, overrides={"social": {"renditions": []}})
    before = {e.source: e for e in process_batch(LocalSource(uploads), out, base)}
    face = make_face_clip(root / "face.mp4", duration=2.0, size=SRC, scene=JUMP)
    _tagged(face, uploads / "face.mp4")
    (uploads / "face.json").write_text(json.dumps({"consent": True, "name": "Ada"}))
    anon = make_face_clip(root / "anon.mp4", duration=2.0, size=SRC, scene=JUMP)
    anon.rename(uploads / "anon.mp4")
    (uploads / "anon.json").write_text(json.dumps({"consent": True, "anonymize": True}))
    after = {e.source: e for e in process_batch(LocalSource(uploads), out, cfg)}
    return Made(uploads, out, config, cfg, before, after)


def copy_batch(made: Made, root: Path) -> Made:
    """The batch's uploads and output copied into ``root`` (times kept: the cache holds)."""
    root.mkdir(parents=True, exist_ok=True)
    uploads, out = root / "uploads", root / "out"
    shutil.copytree(made.uploads, uploads)
    shutil.copytree(made.out, out)
    config = root / "social.toml"
    shutil.copy2(made.config, config)
    return Made(uploads, out, config, made.cfg, made.before, made.after)
