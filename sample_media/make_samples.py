"""Regenerate the demo uploads in sample_media/ (``python sample_media/make_samples.py``).

Five small synthetic "supporter uploads" with the JSON sidecars contributors
send along, so ``make run`` shows the whole pipeline: a landscape clip, a
phone portrait clip stored rotated, a VP9/Opus webcam recording, a silent
.mov without a sidecar, and a truncated upload that must be rejected.
Everything is built with mediagen/__init__.py from lavfi sources; no real people.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import mediagen as mg  # noqa: E402

#: Sizes are kept small on purpose: every sample must stay well under 1 MB.
SMALL = (640, 360)


def _broken(path: Path) -> Path:
    """A 640x360 clip cut to its first 40 %: the index (moov) never arrived."""
    with tempfile.TemporaryDirectory(prefix="samples-") as tmp:
        src = mg.make_clip(
            Path(tmp) / "whole.mp4", duration=6, size=SMALL, crf=30, preset="veryfast"
        )
        return mg.make_truncated(path, src)


SAMPLES: list[tuple[str, Callable[[Path], Path], dict[str, object] | None]] = [
    (
        "aisha-landscape.mp4",
        lambda p: mg.make_clip(p, duration=6, size=SMALL, crf=30, preset="veryfast", lufs=-21),
        {
            "name": "Айшат из Грозного",
            "consent": True,
            "language": "ru",
            "message": "Мы помним каждого и требуем справедливости. #100forJustice",
        },
    ),
    (
        "maria-portrait.mp4",
        lambda p: mg.make_portrait_rotated(
            p, duration=6, size=(360, 640), crf=30, preset="veryfast", lufs=-28
        ),
        {
            "name": "Maria",
            "consent": True,
            "language": "en",
            "message": "Standing with every family still waiting for answers. #100forJustice",
        },
    ),
    (
        "karim-webcam.webm",
        lambda p: mg.make_webm(p, duration=6, size=SMALL, content="life", crf=48, lufs=-19),
        {
            "name": "كريم",
            "consent": True,
            "language": "ar",
            "message": "نقف معكم من أجل العدالة. #100forJustice",
        },
    ),
    (
        "alex-no-sidecar.mov",
        lambda p: mg.make_clip(
            p, duration=5, size=SMALL, content="gradients", audio=None, crf=30, preset="veryfast"
        ),
        None,
    ),
    (
        "broken-upload.mp4",
        _broken,
        {
            "name": "Lena",
            "consent": True,
            "language": "en",
            "message": "Remembering, and asking for justice. #100forJustice",
        },
    ),
]


def main(argv: list[str] | None = None) -> int:
    """Write every sample and its sidecar into ``--out`` (default: this folder)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=HERE, help="folder to write (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for name, make, sidecar in SAMPLES:
        start = time.monotonic()
        path = make(out / name)
        side = path.with_suffix(".json")
        if sidecar is None:
            side.unlink(missing_ok=True)
        else:
            side.write_text(json.dumps(sidecar, ensure_ascii=False, indent=2) + "\n", "utf-8")
        size_kb = path.stat().st_size / 1024
        print(f"{name:24} {size_kb:7.0f} KB  {time.monotonic() - start:4.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
