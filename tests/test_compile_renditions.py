"""Social renditions of the compilation: parts, loudness, frames, scrub, calls to action."""

from __future__ import annotations

import html
import json
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

import mediagen as mg
from processing.assemble import compile_remembrance
from processing.card_layout import card_frame
from processing.compilation_files import write_sidecars
from processing.config import Config, load_config
from processing.pipeline import process_batch
from processing.review import build_review
from processing.storage import LocalSource
from processing.timeline import Compilation, Segment, with_starts
from tests import measure
from tests.renditionkit import fake_clip_renditions
from tests.test_batch import MUXER_TAGS

DONATE = "https://campaign.test/donate?src=reel"
PETITION = "https://campaign.test/petition"
LIMIT = 11.5
#: Strings of the located upload's tags (mediagen.LOCATION_TAGS); none may reach an output.
SECRETS = [b"48.8577", b"iPhone", b"Apple", b"Exif\x00\x00", b"xmpmeta"]
needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract-ocr is installed by `make test`"
)


def social_config(**social: object) -> Config:
    """Short cards, both renditions, parts of at most LIMIT s, the 1:1 one at -18 LUFS."""
    return load_config(
        overrides={
            "compilation": {"title_seconds": 1.0, "end_seconds": 2.0},
            "social": {"renditions": ["9:16", "1:1"], "max_part_seconds": LIMIT,
                       "part_title_seconds": 1.0, "target_i_1x1": -18.0, **social},
            "cards": {"en": {"donate_link": DONATE, "petition_link": PETITION}},
        }
    )  # fmt: skip


@pytest.fixture(scope="module")
def social(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Config, dict]:
    """Three 2 s clips (one with GPS tags), each twice: 12 s of clips, so two parts."""
    root = tmp_path_factory.mktemp("social")
    src, out = root / "in", root / "out"
    src.mkdir()
    for i in range(2):
        mg.make_clip(src / f"c{i}.mp4", duration=2, size=(320, 180), lufs=-20 - 3 * i)
        (src / f"c{i}.json").write_text(json.dumps({"name": f"N{i}", "consent": True}))
    mg.make_with_location_tags(src / "located.mov", duration=2)
    (src / "located.json").write_text(json.dumps({"consent": True}))
    cfg = social_config()
    entries = process_batch(LocalSource(src), out, load_config())
    fake_clip_renditions(out, cfg, cfg.social.renditions)
    ids = sorted(e.id for e in entries if e.status == "accepted")
    assert len(ids) == 3
    compile_remembrance(out, cfg, order=ids * 2)
    report = json.loads((out / "report.json").read_text("utf-8"))
    return out, cfg, report["compilation"]


def _parts(summary: dict, aspect: str) -> list[dict]:
    return [r for r in summary["renditions"] if r["aspect"] == aspect]


@pytest.mark.parametrize("aspect", ["9:16", "1:1"])
def test_parts_are_under_the_limit_and_open_with_their_number(
    social: tuple[Path, Config, dict], aspect: str
) -> None:
    out, _, summary = social
    parts = _parts(summary, aspect)
    assert [p["part"] for p in parts] == [1, 2] and {p["parts"] for p in parts} == {2}
    clips = []
    for p in parts:
        data = measure.ffprobe_json(out / p["output"])
        assert float(data["format"]["duration"]) <= LIMIT
        titles = [c["tags"]["title"] for c in data["chapters"]]
        assert titles[0] == f"Part {p['part']}/2" and titles[-1] == "Call to action"
        clips += p["clips"]
    assert clips == [c for c in summary["clips"]], "every clip once, in order"


@pytest.mark.parametrize(("aspect", "target"), [("9:16", -14.0), ("1:1", -18.0)])
def test_each_rendition_is_at_its_loudness_target(
    social: tuple[Path, Config, dict], aspect: str, target: float
) -> None:
    out, _, summary = social
    for p in _parts(summary, aspect):
        integrated, peak = measure.loudness(out / p["output"])
        assert abs(integrated - target) <= 1.0, (p["output"], integrated)
        assert peak <= -1.0, (p["output"], peak)
        assert abs(p["checks"]["integrated"] - integrated) <= 0.5


@pytest.mark.parametrize(("aspect", "size"), [("9:16", (1080, 1920)), ("1:1", (1080, 1080))])
def test_frame_size_and_streams_end_together(
    social: tuple[Path, Config, dict], aspect: str, size: tuple[int, int]
) -> None:
    out, _, summary = social
    assert _parts(summary, aspect)
    for p in _parts(summary, aspect):
        path = out / p["output"]
        v = next(s for s in measure.ffprobe_json(path)["streams"] if s["codec_type"] == "video")
        assert (v["width"], v["height"], v["profile"]) == (*size, "High")
        video_end, audio_end = measure.stream_end_times(path)
        assert video_end is not None and audio_end is not None
        assert abs(video_end - audio_end) <= 1 / 30


def test_no_tag_reaches_a_rendition_or_its_post(social: tuple[Path, Config, dict]) -> None:
    """Byte search of every rendition and post text for the located upload's tags."""
    out, _, summary = social
    upload = out.parent / "in" / "located.mov"
    located = measure.tags(upload)
    secrets = SECRETS + [
        v.encode() for k, v in located.items() if (k.partition(":")[2] or k) not in MUXER_TAGS
    ]
    assert b"+48.8577+002.2950/" in secrets
    files = [f for p in summary["renditions"] for f in p["files"]]
    assert len(files) >= 4 * 2
    for rel in files:
        data = (out / rel).read_bytes()
        found = [s for s in secrets if s in data]
        assert not found, f"{rel} holds {found}"
        if rel.endswith(".mp4"):
            own = {k.partition(":")[2] or k for k in measure.tags(out / rel)}
            assert own <= MUXER_TAGS, f"{rel}: {own - MUXER_TAGS}"


def test_post_text_beside_each_part_and_chapters_for_youtube(
    social: tuple[Path, Config, dict],
) -> None:
    out, _, summary = social
    for p in summary["renditions"]:
        post = (out / p["post"]).read_text("utf-8")
        assert DONATE in post and PETITION in post and "#100forJustice" in post
        assert "Donate" in post and "0:00" not in post, "Shorts and Reels have no chapters"
    manifest = json.loads((out / "compilation" / "manifest.json").read_text("utf-8"))
    main = out / manifest["output"]
    youtube = (main.parent / "post.txt").read_text("utf-8")
    # 2 s clips: too short for YouTube's 10 s chapters, so the list is left out (it would
    # make YouTube drop every chapter); see the test below for a long one.
    assert DONATE in youtube and "0:00" not in youtube
    assert f"{manifest['build']}/post.txt" in " ".join(manifest["files"])
    assert all(f in manifest["files"] for p in summary["renditions"] for f in p["files"])


def test_the_16_9_post_text_lists_youtube_chapters(tmp_path: Path) -> None:
    """Title 6 s, clips of 15, 12 and 20 s, end 8 s: the title folds into the first chapter."""
    cfg = social_config()
    lengths = [("title", 6.0, "Title card"), ("clip", 15.0, "Ana"), ("clip", 12.0, "Bo"),
               ("clip", 20.0, "Cy"), ("end", 8.0, "Call to action")]  # fmt: skip
    segments = with_starts([Segment(k, tmp_path / f"{n}.mp4", d, n) for k, d, n in lengths], 0)
    comp = Compilation(tmp_path / "remembrance-2027.mp4", 2027, segments)
    posts = write_sidecars(comp, tmp_path, cfg)
    text = (tmp_path / "post.txt").read_text("utf-8")
    assert tmp_path / "post.txt" in posts and (tmp_path / "post.ru.txt") in posts
    assert text.endswith("0:00 Ana\n0:21 Bo\n0:33 Cy\n"), text
    assert DONATE in text and "Donate" in text


def _end_frame(path: Path, end_seconds: float) -> np.ndarray:
    duration = float(measure.ffprobe_json(path)["format"]["duration"])
    return measure.frame_at(path, duration - end_seconds / 2)


def _read_text(frame: np.ndarray, box: tuple[int, int, int, int], tmp: Path) -> str:
    """What tesseract reads in ``box``: light text on the dark gradient, inverted and enlarged."""
    crop = frame[box[1] : box[3], box[0] : box[2]]
    img = np.where(crop.max(axis=2) > 150, 0, 255).astype(np.uint8)
    img = cv2.resize(img, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(tmp / "card.png"), img)
    result = subprocess.run(
        ["tesseract", str(tmp / "card.png"), "-", "--psm", "6", "-l", "eng"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return result.stdout


@needs_tesseract
@pytest.mark.parametrize("aspect", ["16:9", "9:16", "1:1"])
def test_end_card_says_donate_and_its_codes_open_the_links(
    social: tuple[Path, Config, dict], aspect: str, tmp_path: Path
) -> None:
    out, cfg, summary = social
    if aspect == "16:9":
        path = out / summary["output"]
    else:
        path = out / _parts(summary, aspect)[-1]["output"]
    frame = _end_frame(path, cfg.compilation.end_seconds)
    layout = card_frame(aspect, cfg, qr=True)
    text = _read_text(frame, layout.text, tmp_path).lower()
    # The lines, not only the links (which say "donate" and "petition" too).
    assert "donate to" in text and "sign the petition" in text, text
    # The hashtag's J reads as ")" now and then in the pink bold face: its digits do not.
    assert "#100for" in text.replace(" ", ""), text
    detector = cv2.QRCodeDetector()
    for box, link in zip(layout.qr, (PETITION, DONATE), strict=True):
        pad = 10
        crop = frame[box[1] - pad : box[3] + pad, box[0] - pad : box[2] + pad]
        decoded, _, _ = detector.detectAndDecode(crop)
        assert decoded == link
    # Nothing bright (text or code) outside the frame's safe zone.
    x0, y0, x1, y1 = layout.safe
    outside = frame.max(axis=2) > 150
    outside[y0:y1, x0:x1] = False
    assert int(outside.sum()) == 0, f"{int(outside.sum())} bright pixels outside the safe zone"


def test_review_page_shows_each_rendition_with_its_post_text(
    social: tuple[Path, Config, dict],
) -> None:
    out, _, summary = social
    page = build_review(out).read_text("utf-8")
    for p in summary["renditions"]:
        assert p["output"].rsplit("/", 1)[-1] in page
    assert page.count('class="rendition"') == len(summary["renditions"]) == 4
    assert page.count(html.escape(DONATE)) >= 5, "the 16:9 post text and each rendition's"
