"""A supporter's still photo and message become a short zooming clip the pipeline accepts.

A real photo (scikit-image's ``astronaut``) is saved as a JPEG carrying a
planted GPS position and camera make in its EXIF; the clip made from it, and
the pipeline's finished clip, must hold none of those bytes, must zoom in
by :data:`processing.photo.ZOOM` and show the message.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
from PIL import Image

from processing import photo
from processing.config import load_config
from processing.errors import Rejection
from processing.frames import FrameSpec, read_frames
from processing.pipeline import process_batch
from processing.storage import LocalSource

CFG = load_config(overrides={"output": {"width": 640, "height": 360, "x264_preset": "veryfast"}})
MAKE = "PlantedCam Z9"
#: The planted GPS position as EXIF stores it (rationals) and as text a reader would show.
GPS = {1: "N", 2: (43.0, 19.0, 5.5), 3: "E", 4: (45.0, 41.0, 12.25)}
MESSAGE = "محمد — мы помним"
SECONDS = 2.0


def _tagged_photo(path: Path) -> Path:
    exif = Image.Exif()
    exif[0x010F] = MAKE  # Make
    exif.get_ifd(0x8825).update(GPS)  # the GPS IFD
    Image.fromarray(skimage.data.astronaut()).save(path, "JPEG", quality=92, exif=exif.tobytes())
    return path


def _leaks(data: bytes) -> list[str]:
    needles = [MAKE.encode(), b"Exif", b"GPS", b"PlantedCam"]
    return [n.decode() for n in needles if n in data]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("photo")
    src = _tagged_photo(folder / "astronaut.jpg")
    with_text = photo.photo_clip(src, folder / "up" / "msg.mp4", CFG, message=MESSAGE,
                                 seconds=SECONDS)  # fmt: skip
    plain = photo.photo_clip(src, folder / "plain.mp4", CFG, seconds=SECONDS)
    return {"src": src, "msg": with_text, "plain": plain, "folder": folder}


def test_the_photo_really_carries_the_planted_tags(made: dict[str, Path]) -> None:
    data = made["src"].read_bytes()
    assert MAKE.encode() in data and b"Exif" in data
    gps = Image.open(made["src"]).getexif().get_ifd(0x8825)
    assert gps[2] == GPS[2] and gps[1] == "N"


def test_no_tag_of_the_photo_reaches_the_clip(made: dict[str, Path]) -> None:
    assert _leaks(made["msg"].read_bytes()) == []
    assert _leaks(made["plain"].read_bytes()) == []


def _frames(path: Path) -> list[np.ndarray]:
    return list(read_frames(path, FrameSpec(360, 360, CFG.output.fps, gray=False), timeout=60))


def test_the_view_zooms_in_by_zoom_about_the_centre(made: dict[str, Path]) -> None:
    frames = _frames(made["plain"])
    assert len(frames) == round(SECONDS * CFG.output.fps)
    first, last = frames[0].astype(np.float32), frames[-1].astype(np.float32)
    # The last frame is the first one seen 1 + ZOOM closer, within a frame's easing.
    errors = {
        round(float(z), 2): float(np.mean(np.abs(cv2.resize(_centre(first, z), (360, 360)) - last)))
        for z in np.arange(1.0, 1.2, 0.01)
    }
    zoom = min(errors, key=errors.__getitem__)
    assert abs(zoom - (1 + photo.ZOOM)) <= 0.015, errors
    assert errors[zoom] < 0.3 * errors[1.0], errors  # a clear match, not the least bad guess


def _centre(img: np.ndarray, zoom: float) -> np.ndarray:
    h, w = img.shape[:2]
    ch, cw = round(h / zoom), round(w / zoom)
    y, x = (h - ch) // 2, (w - cw) // 2
    return img[y : y + ch, x : x + cw]


def test_the_message_fades_in_over_the_middle(made: dict[str, Path]) -> None:
    text, plain = _frames(made["msg"]), _frames(made["plain"])
    band = slice(150, 210)  # the middle of the 360 px high picture
    before = float(np.mean(np.abs(text[5][band].astype(int) - plain[5][band])))
    after = float(np.mean(np.abs(text[-1][band].astype(int) - plain[-1][band])))
    assert before < 1.5  # not yet faded in at 0.17 s
    assert after > 8.0  # white letters with a black outline over the photo


def test_the_pipeline_accepts_the_photo_clip_and_publishes_no_tag(made: dict[str, Path]) -> None:
    up = made["msg"].parent
    (up / "msg.json").write_text(json.dumps({"consent": True, "name": "Amina"}), "utf-8")
    out = made["folder"] / "out"
    (entry,) = process_batch(LocalSource(up), out, CFG)
    assert entry.status == "accepted", entry.reason
    assert abs((entry.duration or 0) - SECONDS) < 0.05
    for path in out.rglob("*"):
        if path.is_file():
            assert _leaks(path.read_bytes()) == [], path


@pytest.mark.parametrize(
    ("name", "data"),
    [("text.jpg", b"not a photo at all"), ("anim.gif", None)],
)
def test_what_is_not_a_jpeg_or_png_gets_a_one_line_reason(
    tmp_path: Path, name: str, data: bytes | None
) -> None:
    path = tmp_path / name
    if data is None:
        Image.new("RGB", (32, 32)).save(path, "GIF")
    else:
        path.write_bytes(data)
    with pytest.raises(Rejection) as caught:
        photo.photo_clip(path, tmp_path / "out.mp4", CFG)
    assert caught.value.code == "not_photo" and "\n" not in caught.value.reason
    assert not (tmp_path / "out.mp4").exists()
