"""A supporter's still photo and message become a short zooming clip the pipeline accepts.

A real photo (scikit-image's ``astronaut``) is saved as a JPEG carrying a
planted GPS position and camera make in its EXIF; the clip made from it, and
the pipeline's finished clip, must hold none of those bytes, must zoom in
by :data:`processing.photo.ZOOM` and show the message.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import skimage.data
from PIL import Image

from processing import photo
from processing.clip import still
from processing.clip.intake import Submission, render_key
from processing.config import load_config
from processing.errors import Rejection
from processing.frames import FrameSpec, read_frames
from processing.pipeline import process_batch
from processing.probe import probe
from processing.sidecar import Sidecar
from processing.storage import LocalSource, Upload
from processing.verify import scrub_check

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
    # GPS tags by their names as a reader prints them: a bare b"GPS" is three bytes
    # that compressed pictures spell by chance (once in ~16 million positions).
    needles = [MAKE.encode(), b"Exif", b"GPSLatitude", b"GPSInfo", b"PlantedCam"]
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
    assert _published_leaks(out) == []


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


# --- A photo upload through a real batch: made into a clip by the driver ---------------------

_DATA_URI = re.compile(rb"data:[a-z/+]+;base64,([A-Za-z0-9+/=]+)")
#: The planted latitude as decimal degrees, as :func:`photo.exif_values` spells it.
LATITUDE = f"{43 + 19 / 60 + 5.5 / 3600:.4f}"


def _published_leaks(out: Path) -> list[str]:
    """``"<file>: <needle>"`` for every file under ``out`` holding a planted value.

    Images inlined in a page (``data:`` URIs) are searched decoded: their base64
    text can spell ``GPS`` by chance, and would hide an EXIF block.
    """
    found = []
    for path in sorted(out.rglob("*")):
        if path.is_file():
            data = _DATA_URI.sub(lambda m: base64.b64decode(m[1]), path.read_bytes())
            found += [f"{path.relative_to(out)}: {n}" for n in _leaks(data)]
            found += [f"{path.relative_to(out)}: latitude"] if LATITUDE.encode() in data else []
    return found


@pytest.fixture(scope="module")
def photo_batch(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """One batch of photo uploads: tagged with a message, anonymous, not an image, truncated."""
    folder = tmp_path_factory.mktemp("photo-batch")
    up = folder / "up"
    up.mkdir()
    _tagged_photo(up / "amina.jpg")
    sidecar = {"consent": True, "name": "Amina", "message": "We remember"}
    (up / "amina.json").write_text(json.dumps(sidecar), "utf-8")
    exif = Image.Exif()
    exif[0x010F] = MAKE
    exif.get_ifd(0x8825).update(GPS)
    face = np.ascontiguousarray(skimage.data.astronaut()[:, ::-1])  # other bytes, same face
    Image.fromarray(face).save(up / "hidden.png", "PNG", exif=exif.tobytes())
    (up / "hidden.json").write_text(json.dumps({"consent": True, "anonymize": True}), "utf-8")
    (up / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a photo\n")
    whole = folder / "whole.png"
    Image.fromarray(skimage.data.astronaut()).save(whole, "PNG")
    (up / "truncated.png").write_bytes(whole.read_bytes()[:4000])
    out = folder / "out"
    entries = {Path(e.source).stem: e for e in process_batch(LocalSource(up), out, CFG)}
    again = {Path(e.source).stem: e for e in process_batch(LocalSource(up), out, CFG)}
    return {"up": up, "out": out, "entries": entries, "again": again}


def test_a_photo_upload_becomes_a_captioned_clip_of_photo_seconds(
    photo_batch: dict[str, Any],
) -> None:
    e = photo_batch["entries"]["amina"]
    assert e.status == "accepted", e.reason
    assert abs((e.duration or 0) - photo.PHOTO_SECONDS) < 0.05
    assert still.NOTE in e.warnings
    clip = photo_batch["out"] / e.output
    assert probe(clip).video is not None and probe(clip).video.width == CFG.output.width
    again = photo_batch["again"]["amina"]
    assert again.cached and again.render_key == e.render_key  # reused, not made again


def test_no_exif_of_a_photo_upload_reaches_any_published_byte(
    photo_batch: dict[str, Any],
) -> None:
    src = (photo_batch["up"] / "amina.jpg").read_bytes()
    assert MAKE.encode() in src and b"Exif" in src  # the needles are really there to find
    exif = photo.exif_values(photo_batch["up"] / "amina.jpg")
    assert ("Make", MAKE) in exif and ("GPSLatitude", LATITUDE) in exif
    assert _published_leaks(photo_batch["out"]) == []
    for e in photo_batch["entries"].values():
        if e.output:
            clip = photo_batch["out"] / e.output
            assert scrub_check(clip, probe(clip), exif) == [], e.source


def test_an_anonymous_photo_goes_through_the_face_mask(photo_batch: dict[str, Any]) -> None:
    e = photo_batch["entries"]["hidden"]
    assert e.status == "accepted", e.reason
    anon = e.anonymization or {}
    assert anon["looks_with_faces"] > 0 and not anon["whole_frame_blurred"], anon
    assert anon["hidden_share"] > 0, anon


def test_a_broken_image_gets_one_line_and_the_batch_goes_on(photo_batch: dict[str, Any]) -> None:
    entries = photo_batch["entries"]
    for stem in ("broken", "truncated"):
        e = entries[stem]
        assert e.status == "rejected" and e.code == "not_photo", (stem, e.reason)
        assert "\n" not in e.reason and str(photo_batch["up"]) not in e.reason, e.reason
    assert {entries[s].status for s in ("amina", "hidden")} == {"accepted"}
    assert not [p for p in photo_batch["out"].rglob("*") if p.name.startswith(".photo-")]


def test_a_photo_render_key_holds_the_message_and_settings_a_video_key_does_not() -> None:
    def sub(key: str, message: str, anonymize: bool = False) -> Submission:
        upload = Upload(key=key, size=1, modified=datetime(2026, 1, 1, tzinfo=UTC))
        return Submission("ab" * 8, upload, Sidecar(message=message, anonymize=anonymize))

    assert render_key(sub("p.jpg", "one"), CFG) != render_key(sub("p.jpg", "two"), CFG)
    assert render_key(sub("v.mp4", "one"), CFG) == render_key(sub("v.mp4", "two"), CFG)
    # An anonymous photo shows no message, so its message cannot change the render.
    assert render_key(sub("p.JPG", "one", True), CFG) == render_key(sub("p.jpg", "two", True), CFG)
    before = render_key(sub("p.webp", "one"), CFG)
    photo.STYLE += 1
    try:
        assert render_key(sub("p.webp", "one"), CFG) != before
    finally:
        photo.STYLE -= 1


def test_the_photo_exif_check_refuses_a_clip_holding_a_planted_value(
    made: dict[str, Path], tmp_path: Path
) -> None:
    exif = photo.exif_values(made["src"])
    clean = made["plain"]
    still.check_scrubbed(clean, probe(clean), exif)  # the real clip passes
    planted = tmp_path / "planted.mp4"
    planted.write_bytes(clean.read_bytes() + b"\x00" + LATITUDE.encode() + b"\x00")
    with pytest.raises(Rejection) as caught:
        still.check_scrubbed(planted, probe(planted), exif)
    assert "GPSLatitude" in caught.value.reason and LATITUDE not in caught.value.reason


def test_a_webp_photo_is_read_upright_and_a_video_name_is_not_a_photo(tmp_path: Path) -> None:
    tall = np.zeros((40, 20, 3), np.uint8)
    tall[:10] = 255  # white on top
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the picture is to be turned 90° clockwise
    Image.fromarray(tall).save(tmp_path / "p.webp", "WEBP", lossless=True, exif=exif.tobytes())
    rgb = photo.load_photo(tmp_path / "p.webp", CFG.limits.max_pixels)
    assert rgb.shape == (20, 40, 3)  # turned as its tag says
    assert rgb[:, -5:].mean() > 200 and rgb[:, :5].mean() < 50  # the white top is now right
    assert [photo.is_photo(k) for k in ("a.WEBP", "b.jpeg", "c.mp4", "d.jpg.mov")] == [
        True, True, False, False,
    ]  # fmt: skip
