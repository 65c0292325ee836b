"""The per-clip stages as values: planning decides the anonymization, the plan is what renders.

Small inputs (2 s, 320x180), real ffmpeg: :func:`processing.clip.stages.plan`
is the one place a render is decided, so the bench and the driver get the
same answer from it.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import mediagen as mg
from processing.clip import stages
from processing.clip.files import ClipFiles
from processing.clip.intake import Submission, identify
from processing.config import load_config
from processing.storage import LocalSource


def _submission(folder: Path, sidecar: dict[str, object]) -> tuple[Path, Submission]:
    src = folder / "up" / "clip.mp4"
    src.parent.mkdir(parents=True)
    mg.make_clip(src, duration=2, size=(320, 180), lufs=-20)
    src.with_suffix(".json").write_text(json.dumps(sidecar), "utf-8")
    source = LocalSource(src.parent, ignore=[])
    subs, refused = identify(source, source.list_uploads(), load_config(), folder / "work")
    assert not refused and len(subs) == 1
    return src, subs[0]


def test_the_plan_of_an_anonymous_clip_carries_its_mask_and_voice(tmp_path: Path) -> None:
    cfg = load_config(overrides={"anonymize": {"voice": True}})
    src, sub = _submission(tmp_path, {"name": "Aminat", "anonymize": True})
    seen = stages.inspect(src, sub, cfg)
    with contextlib.ExitStack() as stack:
        planned = stages.plan(src, sub, seen, cfg, tmp_path / "work", stack)
        mask = planned.render.face_mask
        assert planned.faces is not None and mask == planned.faces.path
        assert mask is not None and mask.is_file()
        assert planned.render.voice_pitch == cfg.anonymize.voice_pitch == seen.voice
        assert planned.render.captions.name == "Anonymous"
    assert not mask.exists()  # the mask lives as long as the plan's stack


def test_a_named_clip_is_planned_without_mask_and_renders_where_its_files_say(
    tmp_path: Path,
) -> None:
    cfg = load_config()
    src, sub = _submission(tmp_path, {"name": "Aminat", "consent": True})
    seen = stages.inspect(src, sub, cfg)
    with contextlib.ExitStack() as stack:
        planned = stages.plan(src, sub, seen, cfg, tmp_path / "work", stack)
    assert planned.faces is None and planned.render.face_mask is None
    assert planned.render.voice_pitch is None and planned.render.captions.name == "Aminat"
    files = ClipFiles(tmp_path / "out", sub.id)
    files.clip.parent.mkdir(parents=True)
    stages.render(src, files, planned, seen, cfg, None)
    checked = stages.verify(files, planned, seen, cfg)
    assert files.clip.is_file() and files.master.is_file()
    assert checked.file[0] == files.clip.stat().st_size
    assert round(checked.info.duration, 1) == round(planned.render.duration, 1)
