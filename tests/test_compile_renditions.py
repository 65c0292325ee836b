"""Social renditions of the compilation: parts, loudness, frames, scrub, calls to action.

The compilation joins the clips' own renditions, made by the real batch with
``social.renditions = ["9:16", "1:1"]`` (the session's ``social_batch``,
tests/socialkit.py: a face that jumps sideways with a phone's location tags, the
same face anonymized, a portrait clip), so their reframing and safe-zone
captions are what each part shows.
"""

from __future__ import annotations

import html
import json
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from flows.cli import main as reel
from processing.assemble import compile_remembrance
from processing.card_layout import card_frame
from processing.clip.files import ClipFiles
from processing.compilation_files import write_sidecars
from processing.config import Config, load_config
from processing.fsutil import sha256_file
from processing.review import build_review
from processing.social.layout import layout_for
from processing.timeline import Compilation, Segment, with_starts
from tests import measure
from tests.socialkit import Made, copy_batch
from tests.test_batch import MUXER_TAGS

DONATE = "https://campaign.test/donate?src=reel"
PETITION = "https://campaign.test/petition"
#: Each of the three 2 s clips twice (12 s), a 1 s part title and a 2 s end card: two parts
#: (the shortest limit the config allows is 10 s more than the part title).
LIMIT = 11.5
#: The uploads in the compilation's order (the face with location tags first), each twice.
ORDER = ("face.mp4", "tall.mp4", "anon.mp4")
#: Strings of the located upload's tags (mediagen.LOCATION_TAGS); none may reach an output.
SECRETS = [b"48.8577", b"iPhone", b"Apple", b"Exif\x00\x00", b"xmpmeta"]
needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract-ocr is installed by `make test`"
)
#: The compilation's settings on top of the clips' (tests/socialkit.py SOCIAL_TOML): short
#: cards, parts of at most LIMIT s, the 1:1 rendition at -18 LUFS, links to act on.
COMPILE = {
    "compilation": {"title_seconds": 1.0, "end_seconds": 2.0},
    "social": {"max_part_seconds": LIMIT, "part_title_seconds": 1.0, "target_i_1x1": -18.0},
    "cards": {"en": {"donate_link": DONATE, "petition_link": PETITION}},
}


def social_config(made: Made) -> Config:
    """The batch's settings with :data:`COMPILE` on top."""
    return load_config(made.config, overrides=COMPILE)


@pytest.fixture(scope="module")
def social(
    social_batch: Made, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Config, dict]:
    """The session's clips and their renditions, compiled in :data:`ORDER` (in a copy)."""
    made = copy_batch(social_batch, tmp_path_factory.mktemp("social-compile"))
    cfg = social_config(made)
    assert all(made.after[n].status == "accepted" for n in ORDER), made.after
    ids = [made.after[n].id for n in ORDER]
    compile_remembrance(made.out, cfg, order=ids * 2)
    report = json.loads((made.out / "report.json").read_text("utf-8"))
    return made.out, cfg, report["compilation"]


def _parts(summary: dict, aspect: str) -> list[dict]:
    """The parts of ``aspect``; a rendition left out fails with its reason."""
    mine = [r for r in summary["renditions"] if r["aspect"] == aspect]
    assert not [r["skipped"] for r in mine if "skipped" in r], mine
    return mine


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


def _clip_starts(out: Path, part: dict) -> list[tuple[str, float, float]]:
    """``(clip id, start, duration)`` of each clip in the part, from its chapters."""
    chapters = measure.ffprobe_json(out / part["output"])["chapters"]
    kept = [c for c in chapters if c["tags"]["title"] not in ("Call to action",)]
    if part["parts"] > 1:
        kept = kept[1:]  # the "Part n/N" title
    assert len(kept) == len(part["clips"]), (chapters, part["clips"])
    return [
        (cid, float(c["start_time"]), float(c["end_time"]) - float(c["start_time"]))
        for cid, c in zip(part["clips"], kept, strict=True)
    ]


@pytest.mark.parametrize("aspect", ["9:16", "1:1"])
def test_each_part_shows_the_clips_own_renditions(
    social: tuple[Path, Config, dict], aspect: str
) -> None:
    """Mid-clip, the part's picture is the clip's reframed rendition, pixel for pixel."""
    out, _, summary = social
    seen = 0
    for p in _parts(summary, aspect):
        for cid, start, duration in _clip_starts(out, p):
            own = ClipFiles(out, cid).rendition(aspect)
            for share in (0.25, 0.75):
                joined = measure.frame_at(out / p["output"], start + share * duration)
                alone = measure.frame_at(own, share * duration)
                assert joined.shape == alone.shape
                diff = np.abs(joined.astype(int) - alone.astype(int)).max()
                assert diff <= 2, f"{p['output']} at {cid}: differs by {diff}"
                seen += 1
    assert seen == 2 * len(summary["clips"])


@needs_tesseract
@pytest.mark.parametrize("aspect", ["9:16", "1:1"])
def test_the_clips_captions_are_inside_the_safe_zone_of_each_part(
    social: tuple[Path, Config, dict], aspect: str, tmp_path: Path
) -> None:
    """OCR of the safe zone's top and bottom bands, mid-clip: the hashtag, then the name."""
    out, _, summary = social
    face = summary["clips"][0]
    part = next(p for p in _parts(summary, aspect) if face in p["clips"])
    start, duration = next((s, d) for c, s, d in _clip_starts(out, part) if c == face)
    frame = measure.frame_at(out / part["output"], start + duration / 2)
    lay = layout_for(aspect)
    x0, y0, x1, y1 = lay.safe.box
    band = 2 * lay.pad + round(1.6 * lay.tag_size)
    top = _read_text(frame, (x0, y0, x1, y0 + band), tmp_path, white=True)
    assert "#100for" in top.replace(" ", ""), top
    band = 2 * lay.pad + round(1.6 * lay.name_size)
    bottom = _read_text(frame, (x0, y1 - band, x1, y1), tmp_path, white=True)
    assert "Ada" in bottom, bottom


def test_no_tag_reaches_a_rendition_or_its_post(social: tuple[Path, Config, dict]) -> None:
    """Byte search of every rendition and post text for the located upload's tags."""
    out, _, summary = social
    upload = out.parent / "uploads" / ORDER[0]
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
    cfg = load_config(overrides=COMPILE)
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


def _read_text(
    frame: np.ndarray, box: tuple[int, int, int, int], tmp: Path, *, white: bool = False
) -> str:
    """What tesseract reads in ``box``: light text, enlarged, then inverted to black on white.

    Enlarged before the threshold, so the strokes of the small 16:9 card (the
    clips' 640x360) stay whole. ``white``: only near-white text counts (a caption
    box over the picture, which has light parts of its own).
    """
    crop = frame[box[1] : box[3], box[0] : box[2]]
    grey = crop.min(axis=2) if white else crop.max(axis=2)
    grey = cv2.resize(grey, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    img = np.where(grey > (235 if white else 150), 0, 255).astype(np.uint8)
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
    # Under each code, what it opens: a viewer can tell the two apart.
    said = [_read_text(frame, strip, tmp_path).lower() for strip in layout.labels]
    assert "petition" in said[0] and "donate" not in said[0], said
    assert "donate" in said[1] and "petition" not in said[1], said
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


def test_reel_run_approve_all_makes_the_renditions_from_the_clips_own(
    social_batch: Made, prefect_server: str, tmp_path: Path
) -> None:
    """`reel run uploads --approve-all` (the Prefect flow): every part and its post.txt, listed."""
    made = copy_batch(social_batch, tmp_path)
    config = tmp_path / "run.toml"
    # SOCIAL_TOML ends in its [social] table: these keys go on in it.
    config.write_text(
        made.config.read_text("utf-8")
        + f"max_part_seconds = {LIMIT}\npart_title_seconds = 1.0\n\n"
        + "[compilation]\ntitle_seconds = 1.0\nend_seconds = 2.0\n\n"
        + f'[cards.en]\ndonate_link = "{DONATE}"\npetition_link = "{PETITION}"\n',
        "utf-8",
    )
    owns = sorted((made.out / "clips").glob("*.*x*.mp4"))
    before = {f: (f.stat().st_mtime_ns, sha256_file(f)) for f in owns}
    assert len(before) == 2 * 3
    code = reel(["run", str(made.uploads), "--out", str(made.out), "--config", str(config),
                 "--approve-all"])  # fmt: skip
    assert code == 0
    # The clips' renditions were reused as they were: the run encoded no clip again.
    assert {f: (f.stat().st_mtime_ns, sha256_file(f)) for f in owns} == before
    summary = json.loads((made.out / "report.json").read_text("utf-8"))["compilation"]
    manifest = json.loads((made.out / "compilation" / "manifest.json").read_text("utf-8"))
    for aspect, size in (("9:16", (1080, 1920)), ("1:1", (1080, 1080))):
        parts = _parts(summary, aspect)
        # Each clip once (--approve-all): 8 s, one part with no part title.
        assert [(p["part"], p["parts"]) for p in parts] == [(1, 1)], summary["renditions"]
        for p in parts:
            v = next(s for s in measure.ffprobe_json(made.out / p["output"])["streams"]
                     if s["codec_type"] == "video")  # fmt: skip
            assert (v["width"], v["height"]) == size
            assert float(v["duration"]) <= LIMIT + 0.05
            post = (made.out / p["post"]).read_text("utf-8")
            assert DONATE in post and PETITION in post
            assert p["output"] in manifest["files"] and p["post"] in manifest["files"]
            assert p["output"].startswith(f"compilation/{manifest['build']}/")
        assert [c for p in parts for c in p["clips"]] == summary["clips"]
