"""Metadata scrub: nothing but one picture and one sound leaves the pipeline.

Uploads carry what phones and cameras leave behind: QuickTime ISO 6709
location, ``location``, ``make``/``model`` and creation-time tags, a cover
picture whose EXIF holds GPS coordinates, camera and software, a thumbnail
track, an attachment and subtitles with an address. The rendered clip must
carry none of it, in its tags or anywhere in its bytes.
"""

from __future__ import annotations

import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, PngImagePlugin

import mediagen as mg
from processing import runner
from processing.config import load_config
from processing.pipeline import process_batch
from processing.probe import probe
from processing.report import Entry
from processing.storage import LocalSource
from processing.verify import image_metadata_problems, scrub_check, scrub_problems
from tests import measure

#: Strings from the EXIF, the subtitles and the tags; none may appear in an output byte.
SECRETS = [b"Exif\x00\x00", b"Canon", b"EOS R5", b"SecretCam", b"Lenina"]
#: Location and device tags only Matroska keeps next to a cover (see :func:`make_covered`).
DEVICE = [b"48.8577", b"iPhone", b"Apple"]
ADDRESS = "Recorded at 12 Lenina St, Grozny"


def exif_jpeg(size: tuple[int, int] = (320, 240)) -> bytes:
    """A JPEG whose EXIF says where (GPS), with what (make, model, software) and when."""
    img = Image.new("RGB", size, (190, 60, 60))
    exif = Image.Exif()
    exif[0x010F] = "Canon"  # Make
    exif[0x0110] = "Canon EOS R5"  # Model
    exif[0x0131] = "SecretCam 2.1"  # Software
    exif[0x0132] = "2027:03:01 10:00:00"  # DateTime
    exif.get_ifd(0x8825).update({1: "N", 2: (55.0, 45.0, 21.0), 3: "E", 4: (37.0, 37.0, 4.0)})
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif)
    return out.getvalue()


def make_covered(path: Path, tmp: Path) -> Path:
    """A location-tagged clip with an EXIF picture and subtitles added.

    MP4: the picture is an attached cover (``covr``); ffmpeg cannot write the
    QuickTime ``mdta`` keys (location, make, model) next to it, so only the
    creation time stays (``located.mov`` in the main batch has the keys).
    Matroska: every tag, and
    the picture both as a second video track (a thumbnail track) and as an
    attached file.
    """
    tagged = mg.make_with_location_tags(tmp / f"tagged{path.suffix}", duration=2)
    cover = tmp / "cover.jpg"
    cover.write_bytes(exif_jpeg())
    subs = tmp / "subs.srt"
    subs.write_text(f"1\n00:00:00,000 --> 00:00:01,500\n{ADDRESS}\n", "utf-8")
    args = ["-v", "error", "-i", runner.input_path(tagged), "-i", runner.input_path(cover)]
    args += ["-i", runner.input_path(subs), "-map", "0", "-map", "1", "-map", "2", "-c", "copy"]
    args += ["-map_metadata", "0"]
    if path.suffix == ".mp4":
        args += ["-c:s", "mov_text", "-disposition:v:1", "attached_pic"]
    else:
        args += ["-attach", runner.input_path(cover), "-metadata:s:t", "mimetype=image/jpeg"]
    runner.run([*args, "-y", runner.input_path(path)], timeout=mg.TIMEOUT)
    return path


@dataclass(frozen=True)
class Scrubbed:
    uploads: Path
    out: Path
    entries: dict[str, Entry]


KEYS = ["covered.mp4", "covered.mkv"]


@pytest.fixture(scope="module")
def scrubbed(tmp_path_factory: pytest.TempPathFactory) -> Scrubbed:
    src = tmp_path_factory.mktemp("uploads")
    for key in KEYS:
        make_covered(src / key, tmp_path_factory.mktemp("work"))
        (src / key).with_suffix(".json").write_text(json.dumps({"consent": True}), "utf-8")
    out = tmp_path_factory.mktemp("out")
    cfg = load_config(overrides={"output": {"width": 640, "height": 360}})
    entries = process_batch(LocalSource(src), out, cfg)
    return Scrubbed(src, out, {e.source: e for e in entries})


def _streams(path: Path) -> list[dict]:
    return measure.ffprobe_json(path)["streams"]


@pytest.mark.parametrize("key", KEYS)
def test_the_upload_really_carries_exif_subtitles_and_tags(scrubbed: Scrubbed, key: str) -> None:
    """Guards the tests below."""
    path = scrubbed.uploads / key
    data = path.read_bytes()
    expected = SECRETS + (DEVICE if key.endswith(".mkv") else [])
    assert [s for s in expected if s not in data] == []
    streams = _streams(path)
    kinds = [(s["codec_type"], s["codec_name"]) for s in streams]
    assert any(k == "subtitle" for k, _ in kinds)
    covers = [s for s in streams if s["disposition"].get("attached_pic")]
    assert len(covers) == 1 and covers[0]["codec_name"] == "mjpeg"
    if key.endswith(".mkv"):  # and a thumbnail track that is a plain video stream
        assert kinds.count(("video", "mjpeg")) == 2


@pytest.mark.parametrize("key", KEYS)
def test_only_one_picture_and_one_sound_leave(scrubbed: Scrubbed, key: str) -> None:
    entry = scrubbed.entries[key]
    assert entry.status == "accepted", entry.reason
    clip = scrubbed.out / str(entry.output)
    streams = _streams(clip)
    assert [(s["codec_type"], s["codec_name"]) for s in streams] == [
        ("video", "h264"),
        ("audio", "aac"),
    ]
    assert not any(s["disposition"].get("attached_pic") for s in streams)
    assert measure.ffprobe_json(clip).get("chapters", []) == []


@pytest.mark.parametrize("key", KEYS)
def test_no_byte_of_the_metadata_survives(scrubbed: Scrubbed, key: str) -> None:
    data = (scrubbed.out / str(scrubbed.entries[key].output)).read_bytes()
    assert [s for s in SECRETS + DEVICE if s in data] == []
    assert b"mjpeg" not in data.lower() and b"\xff\xd8\xff\xe1" not in data


#: What a leaking encoder is made to hide in the clip: the upload's own location tag.
PLANTED = mg.LOCATION_TAGS["location"]


def _with_box(src: Path, dst: Path, payload: bytes) -> Path:
    """``src`` with a top-level ``free`` box holding ``payload``: ffprobe shows none of it."""
    dst.write_bytes(src.read_bytes() + (8 + len(payload)).to_bytes(4, "big") + b"free" + payload)
    return dst


@pytest.mark.parametrize("key", KEYS)
def test_scrub_check_finds_tags_planted_where_ffprobe_does_not_look(
    scrubbed: Scrubbed, key: str, tmp_path: Path
) -> None:
    clip = scrubbed.out / str(scrubbed.entries[key].output)
    upload_tags = probe(scrubbed.uploads / key).tags
    assert scrub_check(clip, probe(clip), upload_tags) == []
    planted = _with_box(clip, tmp_path / "planted.mp4", f"pos={PLANTED};".encode())
    assert scrub_problems(probe(planted)) == [], "guard: the tag check alone cannot see it"
    found = scrub_check(planted, probe(planted), upload_tags)
    assert any("location" in p.lower() for p in found), found
    assert not any(PLANTED in p for p in found), "the value itself is never named"
    exif = _with_box(clip, tmp_path / "exif.mp4", exif_jpeg())
    assert "EXIF block found in the output's bytes" in scrub_check(exif, probe(exif), ())


#: A real ffmpeg that, like a muxer leaking a tag into a box ffprobe skips, appends
#: the planted value to every clip it encodes (the clip's temporary ``.part`` file).
LEAKY_FFMPEG = """#!{python}
import subprocess, sys
code = subprocess.call([{ffmpeg!r}, *sys.argv[1:]])
for arg in sys.argv[1:]:
    path = arg.removeprefix("file:")
    if code == 0 and "/clips/." in path and ".mp4." in path and path.endswith(".part"):
        payload = {payload!r}
        with open(path, "ab") as fh:
            fh.write((8 + len(payload)).to_bytes(4, "big") + b"free" + payload)
sys.exit(code)
"""


def test_a_clip_whose_encode_leaked_a_tag_is_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    mg.make_with_location_tags(src / "located.mov", duration=2)
    (src / "located.json").write_text(json.dumps({"consent": True}), "utf-8")
    leaky = tmp_path / "ffmpeg"
    payload = f"pos={PLANTED};".encode()
    leaky.write_text(
        LEAKY_FFMPEG.format(python=sys.executable, ffmpeg=runner.FFMPEG, payload=payload), "utf-8"
    )
    leaky.chmod(0o755)
    monkeypatch.setattr(runner, "FFMPEG", str(leaky))
    cfg = load_config(overrides={"output": {"width": 640, "height": 360}})
    (entry,) = process_batch(LocalSource(src), out, cfg)
    assert (entry.status, entry.code) == ("rejected", "output_check_failed"), entry.reason
    assert "location" in str(entry.reason) and PLANTED not in str(entry.reason)
    assert list((out / "clips").glob("*.mp4")) == [], "no leaking clip is left to publish"
    logs = "".join(p.read_text("utf-8") for p in (out / "logs").glob("*.log"))
    assert PLANTED not in logs


def test_the_scrub_check_catches_what_it_is_for(scrubbed: Scrubbed) -> None:
    """The same check on the *upload* reports every identifying tag."""
    found = " ".join(scrub_problems(probe(scrubbed.uploads / "covered.mkv"))).lower()
    for tag in ("location", "iso6709", "make=apple", "model=iphone", "creation_time"):
        assert tag in found, tag


# --------------------------------------------------------------------------- images


def _jpeg_cv2() -> bytes:
    ok, buf = cv2.imencode(".jpg", np.full((90, 160, 3), 128, np.uint8))
    assert ok
    return buf.tobytes()


def _ffmpeg_jpeg(tmp: Path, bitexact: bool) -> bytes:
    clip = mg.make_clip(tmp / "c.mp4", duration=1, size=(160, 90), audio=None)
    args = ["-v", "error", "-i", runner.input_path(clip), "-frames:v", "1", "-map_metadata", "-1"]
    if bitexact:
        args += ["-flags:v", "+bitexact"]
    runner.run([*args, "-y", runner.input_path(tmp / "p.jpg")], timeout=mg.TIMEOUT)
    return (tmp / "p.jpg").read_bytes()


def _png(text: bool) -> bytes:
    info = PngImagePlugin.PngInfo()
    if text:
        info.add_text("Comment", ADDRESS)
    out = io.BytesIO()
    Image.new("RGB", (16, 16)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def test_image_check_flags_exif_comments_and_text_chunks(tmp_path: Path) -> None:
    assert any("APP1" in p and "Exif" in p for p in image_metadata_problems(exif_jpeg()))
    # ffmpeg's JPEG encoder names itself in a comment unless told to be bit-exact.
    assert any("Lavc" in p for p in image_metadata_problems(_ffmpeg_jpeg(tmp_path, False)))
    assert image_metadata_problems(_png(text=True)) == ["PNG tEXt chunk"]
    assert image_metadata_problems(b"GIF89a...") != []


def test_image_check_passes_clean_images(tmp_path: Path) -> None:
    """What OpenCV writes (posters and contact sheets), bit-exact ffmpeg and a plain PNG."""
    assert image_metadata_problems(_jpeg_cv2()) == []
    assert image_metadata_problems(_ffmpeg_jpeg(tmp_path, True)) == []
    assert image_metadata_problems(_png(text=False)) == []
