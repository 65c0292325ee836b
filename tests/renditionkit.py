"""Stand-in per-clip social renditions, until the clip encode makes them (helper socialclip).

:func:`fake_clip_renditions` writes ``ClipFiles.rendition(aspect)`` for every
accepted clip of a processed output folder: the finished 16:9 clip fitted into
the rendition's frame (letterboxed), encoded with exactly
:func:`processing.normalize.encoder_args`, as the contract in the brief says the
real ones are. Same frames, same sound, so the compilation can join them by
stream copy. Tests only: the real renditions are reframed on the face.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from processing.clip.files import ClipFiles
from processing.config import Config
from processing.normalize import encoder_args
from processing.social.layout import layout_for


def fake_clip_renditions(out: Path, cfg: Config, aspects: tuple[str, ...]) -> list[Path]:
    """Write each accepted clip's ``aspects`` renditions from its 16:9 clip; return them."""
    report = json.loads((out / "report.json").read_text("utf-8"))
    made = []
    for entry in report["submissions"]:
        if entry.get("status") != "accepted" or not entry.get("output"):
            continue
        files = ClipFiles(out, entry["id"])
        for aspect in aspects:
            w, h = layout_for(aspect).safe.frame
            dst = files.rendition(aspect)
            fit = f"scale={w}:{h}:force_original_aspect_ratio=decrease,"
            fit += f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,setsar=1"
            subprocess.run(
                ["ffmpeg", "-v", "error", "-y", "-i", str(files.clip), "-map", "0:v:0",
                 "-map", "0:a:0", "-vf", fit, *encoder_args(cfg), "-f", "mp4", str(dst)],
                check=True, timeout=300,
            )  # fmt: skip
            made.append(dst)
    return made
