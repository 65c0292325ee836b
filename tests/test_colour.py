"""Colours of uploads that do not say which colour matrix they use.

Players read an untagged HD picture as BT.709 and an untagged SD one as
BT.601; the rendered clip is tagged BT.709. Whichever the upload was, the
clip must show the colours the contributor saw: decoded to RGB the way a
player decodes each, input and output agree.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from processing import runner
from processing.config import load_config
from processing.pipeline import process_batch
from processing.storage import LocalSource
from tests import measure

#: A saturated red and a skin tone: where BT.601 and BT.709 differ most visibly.
COLOURS = ("0xC03020", "0xE0A080")
#: Allowed difference per RGB channel (0-255), for x264 and 4:2:0 chroma at CRF 20.
TOLERANCE = 4.0


def _untagged(path: Path, colour: str, size: tuple[int, int]) -> None:
    w, h = size
    runner.run(
        [
            "-v", "error", "-f", "lavfi", "-i", f"color=c={colour}:s={w}x{h}:r=30:d=2",
            "-f", "lavfi", "-i", "sine=f=300:d=2:r=48000",
            "-c:v", "libx264", "-preset", "ultrafast", "-crf", "10", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-shortest", "-y", runner.input_path(path),
        ],
        timeout=120,
    )  # fmt: skip


def _rgb(path: Path, matrix: str) -> np.ndarray:
    """Mean RGB of the middle of the frame at 1 s, decoded with ``matrix`` as a player would."""
    data = measure._ffmpeg_bytes(
        [
            "-ss", "1", "-i", runner.input_path(path), "-frames:v", "1",
            "-vf", f"scale=160:90:in_color_matrix={matrix}:in_range=tv,format=rgb24",
            "-f", "rawvideo", "pipe:1",
        ]
    )  # fmt: skip
    frame = np.frombuffer(data, np.uint8).reshape(90, 160, 3).astype(np.float64)
    return frame[30:60, 50:110].reshape(-1, 3).mean(axis=0)


@pytest.mark.parametrize(
    ("size", "player_matrix"),
    [((1280, 720), "bt709"), ((640, 360), "bt601")],
    ids=["HD read as BT.709", "SD read as BT.601"],
)
def test_an_untagged_upload_keeps_the_colours_a_player_showed(
    tmp_path: Path, size: tuple[int, int], player_matrix: str
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for i, colour in enumerate(COLOURS):
        _untagged(src / f"c{i}.mp4", colour, size)
    assert measure.ffprobe_json(src / "c0.mp4")["streams"][0].get("color_space") is None
    cfg = load_config(overrides={"output": {"width": 640, "height": 360}})
    entries = process_batch(LocalSource(src), tmp_path / "out", cfg)
    by_source = {e.source: e for e in entries}
    for i in range(len(COLOURS)):
        entry = by_source[f"c{i}.mp4"]
        assert entry.output, entry.reason
        seen = _rgb(src / f"c{i}.mp4", player_matrix)
        shown = _rgb(tmp_path / "out" / entry.output, "bt709")
        assert np.abs(seen - shown).max() <= TOLERANCE, (COLOURS[i], seen, shown)
