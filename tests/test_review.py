"""The review page and editors' decisions, down to a real browser playing every clip."""

from __future__ import annotations

import getpass
import html
import http.server
import json
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import cv2
import pytest

from processing.decisions import DecisionsError, apply_decisions, load_decisions
from processing.freshness import built_from
from processing.report import read_report
from processing.review import build_review
from processing.verify import image_metadata_problems
from tests import reviewgen as rg

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip

#: Plays every <video> muted for a moment and reports what the media element says.
PLAY_ALL = """async (selector) => {
  const out = [];
  for (const v of document.querySelectorAll(selector)) {
    v.muted = true;
    v.scrollIntoView();
    if (v.readyState < 1 && !v.error) {
      await new Promise((ok) => {
        v.addEventListener('loadedmetadata', ok, {once: true});
        v.addEventListener('error', ok, {once: true});
        setTimeout(ok, 15000);
      });
    }
    const t0 = v.currentTime;
    let playError = null;
    try { await v.play(); } catch (e) { playError = String(e); }
    const started = performance.now();
    while (v.currentTime < t0 + 0.4 && !v.error && performance.now() - started < 15000) {
      await new Promise((ok) => setTimeout(ok, 50));
    }
    v.pause();
    out.push({src: v.currentSrc, error: v.error ? v.error.code : null, playError,
              readyState: v.readyState, advanced: v.currentTime - t0,
              width: v.videoWidth, height: v.videoHeight, duration: v.duration,
              videoBytes: v.webkitVideoDecodedByteCount,
              audioBytes: v.webkitAudioDecodedByteCount});
  }
  return out;
}"""


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> rg.ReviewBatch:
    return rg.review_batch(tmp_path_factory)


@pytest.fixture
def out(batch: rg.ReviewBatch, tmp_path: Path) -> Path:
    """A private copy of the batch's output folder (decisions change it)."""
    copy = tmp_path / "out"
    shutil.copytree(batch.out, copy)
    return copy


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: run `make setup-test` (TEST_DEBS)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def _reel(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("reel")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=600)


def _rendered_ids(out: Path) -> list[str]:
    report = json.loads((out / "report.json").read_text("utf-8"))
    return [s["id"] for s in report["submissions"] if s.get("output")]


def _csp(page: str) -> str:
    found = re.search(r'Content-Security-Policy" content="([^"]*)"', page)
    assert found, "no Content-Security-Policy"
    return found.group(1)


def _decisions(ids: dict[str, str], order: list[str], editor: str = "Ada") -> dict[str, Any]:
    return {
        "version": 1,
        "editor": editor,
        "decided_at": "2027-03-20T18:00:00+00:00",
        "order": order,
        "decisions": ids,
    }


# ------------------------------------------------------------------ the page as a file


def test_the_page_is_self_contained_and_escapes_contributor_text(batch: rg.ReviewBatch) -> None:
    page = (batch.out / "review" / "index.html").read_text("utf-8")
    # Sidecar text is data: the contributor's markup arrives escaped, never as tags.
    assert "<script>alert" not in page and "<b>not bold</b>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;помним&quot;" in page
    # One inline style, one inline script, one JSON block: nothing loaded from elsewhere.
    assert re.findall(r"<script\b[^>]*\bsrc=", page) == []
    assert re.findall(r"<link\b", page) == []
    assert "@import" not in page and "url(" not in page
    srcs = re.findall(r'\b(?:src|poster|href)="([^"]*)"', page)
    local = ("data:image/jpeg;base64,", "../clips/", "#")
    external = [s for s in srcs if not s.startswith(local)]
    assert external == []
    csp = html.unescape(_csp(page))
    assert "default-src 'none'" in csp and "media-src 'self' file:;" in csp
    # Every rendered clip has a card with a player, a poster and a contact sheet.
    for cid in _rendered_ids(batch.out):
        card = page[page.index(f'id="c-{cid}"') :].split("</article>")[0]
        assert f'src="../clips/{cid}.mp4"' in card
        assert 'poster="data:image/jpeg;base64,' in card
        assert 'class="sheet" src="data:image/jpeg;base64,' in card
    rejected = page[page.index('id="rejected"') :]
    assert rg.REJECTED in rejected and "empty" in rejected


def test_contact_sheets_and_posters_are_small_jpegs_built_once(batch: rg.ReviewBatch) -> None:
    media = batch.out / "review" / "media"
    sheets = sorted(media.glob("*-sheet.jpg"))
    assert len(sheets) == len(_rendered_ids(batch.out))
    for picture in media.iterdir():
        data = picture.read_bytes()
        assert data[:3] == b"\xff\xd8\xff" and len(data) < 120_000
        assert image_metadata_problems(data) == []  # no EXIF, comments or encoder names
    before = {p: p.stat().st_mtime_ns for p in media.iterdir()}
    build_review(batch.out)
    assert {p: p.stat().st_mtime_ns for p in media.iterdir()} == before


def test_a_url_hook_can_point_every_file_elsewhere(out: Path) -> None:
    """What the S3 backend does: presigned URLs for the clips and the pictures."""

    def presign(key: str) -> str:
        return f"https://bucket.s3.example/{key}?X-Amz-Signature=abc&X-Amz-Expires=3600"

    page = build_review(out, url_for=presign, inline_images=False).read_text("utf-8")
    assert "data:image/jpeg" not in page
    srcs = re.findall(r'\b(?:src|poster)="([^"]*)"', page)
    assert srcs and all(s.startswith("https://bucket.s3.example/") for s in srcs)
    assert "&amp;X-Amz-Expires" in page  # attribute-escaped
    csp = html.unescape(_csp(page))
    assert "media-src https://bucket.s3.example;" in csp
    assert "img-src data: https://bucket.s3.example;" in csp


def test_a_damaged_or_partial_manifest_does_not_break_the_page(out: Path) -> None:
    comp = out / "compilation"
    comp.mkdir()
    (comp / "manifest.json").write_text("{not json", "utf-8")
    assert "No compilation yet" in build_review(out).read_text("utf-8")
    (comp / "manifest.json").write_text(
        json.dumps(
            {
                "output": "compilation/remembrance-2027.mp4",
                "built_from": built_from(read_report(out), [], out),
                "segments": [
                    {"kind": "title", "start": 0, "duration": 6, "label": "Title <card>"},
                    {"kind": "clip", "id": "x", "start": "bad"},
                    "junk",
                    {"kind": "end", "start": 6.5, "label": None},
                ],
            }
        ),
        "utf-8",
    )
    page = build_review(out).read_text("utf-8")
    assert 'data-seek="0.000"' in page and "Title &lt;card&gt;" in page
    assert 'data-seek="6.500"' in page and page.count("data-seek=") == 2
    # A manifest that does not say what it was built from is never previewed.
    legacy = json.loads((comp / "manifest.json").read_text("utf-8"))
    del legacy["built_from"]
    (comp / "manifest.json").write_text(json.dumps(legacy), "utf-8")
    page = build_review(out).read_text("utf-8")
    assert 'id="compilation-video"' not in page and "data-seek=" not in page
    assert "older version that did not record its inputs" in page


# ------------------------------------------------------------------ decisions


def test_decisions_are_validated_with_clear_messages(batch: rg.ReviewBatch, out: Path) -> None:
    ids = _rendered_ids(out)
    a, b = ids[0], ids[1]
    with pytest.raises(DecisionsError, match=r"unknown clip id deadbeefdeadbeef"):
        apply_decisions(_decisions({a: "approved", "deadbeefdeadbeef": "rejected"}, [a]), out)
    with pytest.raises(DecisionsError, match=r"approved clips missing from order: " + b):
        apply_decisions(_decisions({a: "approved", b: "approved"}, [a]), out)
    with pytest.raises(DecisionsError, match=r"order lists clips that are not approved"):
        apply_decisions(_decisions({a: "rejected"}, [a]), out)
    with pytest.raises(DecisionsError, match=r'must be "approved" or "rejected", got \'maybe\''):
        apply_decisions(_decisions({a: "maybe"}, []), out)
    empty = batch.id(rg.REJECTED)
    with pytest.raises(DecisionsError, match=r"cannot be approved, it was rejected"):
        apply_decisions(_decisions({empty: "approved"}, [empty]), out)
    assert not (out / "decisions.json").exists()
    assert load_decisions(out) is None


def test_applying_keeps_who_when_and_the_history(out: Path) -> None:
    a, b, c = _rendered_ids(out)[:3]
    first = apply_decisions(_decisions({a: "approved", b: "approved"}, [b, a], "Ada"), out)
    second = apply_decisions(_decisions({a: "approved", c: "rejected"}, [a], editor=""), out)
    assert first.applied_by == "Ada"
    assert second.applied_by == getpass.getuser()  # no editor named: the OS user
    loaded = load_decisions(out)
    assert loaded is not None
    assert loaded.order == (a,) and loaded.rejected == (c,)
    stored = json.loads((out / "decisions.json").read_text("utf-8"))
    assert [h["order"] for h in stored["history"]] == [[b, a], [a]]
    assert [h["applied_by"] for h in stored["history"]] == ["Ada", getpass.getuser()]
    assert stored["current"] == stored["history"][-1]
    for h in stored["history"]:
        assert datetime.fromisoformat(h["applied_at"]).tzinfo is not None


def test_cli_apply_explains_an_unknown_id(out: Path, tmp_path: Path) -> None:
    bad = tmp_path / "decisions.json"
    bad.write_text(json.dumps(_decisions({"0123456789abcdef": "approved"}, ["0123456789abcdef"])))
    result = _reel("review", "apply", str(bad), "--out", str(out))
    assert result.returncode == 2
    assert "unknown clip id 0123456789abcdef" in result.stderr
    assert "report.json" in result.stderr


# ------------------------------------------------------------------ in a real browser


def _allowed(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("file", "data", "blob") or parts.hostname == "127.0.0.1"


@pytest.mark.slow
def test_editors_review_approve_reorder_and_export_in_a_real_browser(
    out: Path, browser: Any, tmp_path: Path
) -> None:
    ids = _rendered_ids(out)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    requests: list[str] = []
    problems: list[str] = []
    context.on("request", lambda r: requests.append(r.url))
    page = context.new_page()
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.goto((out / "review" / "index.html").as_uri())

    # Every clip plays: metadata loads, time advances, video and audio are decoded.
    played = page.evaluate(PLAY_ALL, "article.card video")
    assert len(played) == len(ids)
    for v in played:
        assert v["error"] is None and v["playError"] is None, v
        assert v["readyState"] >= 2 and v["advanced"] >= 0.4, v
        assert (v["width"], v["height"]) == (1920, 1080), v
        assert v["duration"] == pytest.approx(rg.DURATION, abs=0.05), v
        assert v["videoBytes"] > 0 and v["audioBytes"] > 0, v

    # The keyboard alone: Tab to the name field, then shortcuts on the focused card.
    page.keyboard.press("Tab")  # skip link
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "editor"
    page.keyboard.type("Ada Lovelace")
    page.keyboard.press("Tab")  # the export button: shortcuts work again
    for key in ["j", "a", "j", "a", "j", "r", "j", "a"]:
        page.keyboard.press(key)
    focused = page.evaluate("document.activeElement.dataset.id")
    assert focused == ids[3]
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"  # the focused card is visibly marked
    page.keyboard.press("[")  # ids[3] one earlier: 0, 3, 1
    for _ in range(3):
        page.keyboard.press("k")
    assert page.evaluate("document.activeElement.dataset.id") == ids[0]
    page.keyboard.press("Alt+ArrowDown")  # ids[0] one later: 3, 0, 1
    # A real button in the running order, pressed with Enter: ids[3] one later: 0, 3, 1.
    button = page.locator(f"#order-list li[data-id='{ids[3]}'] button[data-order-act='later']")
    button.focus()
    page.keyboard.press("Enter")
    expected = [ids[0], ids[3], ids[1]]
    assert page.eval_on_selector_all("#order-list li", "els => els.map(e => e.dataset.id)") == (
        expected
    )
    assert page.evaluate("document.activeElement.dataset.orderAct") == "later"
    assert page.locator(f"#c-{ids[2]}").get_attribute("data-decision") == "rejected"
    assert "Approved, number 2 of 3" in page.locator(f"#c-{ids[3]} .decision-state").inner_text()

    page.screenshot(path=str(tmp_path / "review-wide.png"), full_page=True)
    with page.expect_download() as download:
        page.keyboard.press("e")
    exported = tmp_path / "decisions.json"
    download.value.save_as(exported)
    assert download.value.suggested_filename == "decisions.json"
    data = json.loads(exported.read_text("utf-8"))
    assert data["version"] == 1 and data["editor"] == "Ada Lovelace"
    assert data["order"] == expected
    assert data["decisions"] == {i: "approved" for i in expected} | {ids[2]: "rejected"}
    assert datetime.fromisoformat(data["decided_at"].replace("Z", "+00:00"))

    result = _reel("review", "apply", str(exported), "--out", str(out))
    assert result.returncode == 0, result.stderr
    recorded = load_decisions(out)
    assert recorded is not None
    assert list(recorded.order) == expected and recorded.applied_by == "Ada Lovelace"

    # The rebuilt page opens, in a fresh browser profile, with those decisions in force.
    fresh = browser.new_context(viewport={"width": 390, "height": 844})
    fresh.on("request", lambda r: requests.append(r.url))
    phone = fresh.new_page()
    phone.goto((out / "review" / "index.html").as_uri())
    assert phone.eval_on_selector_all("#order-list li", "els => els.map(e => e.dataset.id)") == (
        expected
    )
    assert "applied by Ada Lovelace" in phone.locator("#status").inner_text()
    # Phone width: nothing wider than the screen.
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    phone.screenshot(path=str(tmp_path / "review-phone.png"))
    phone.locator(f"#c-{ids[0]}").screenshot(path=str(tmp_path / "review-phone-card.png"))
    fresh.close()
    context.close()

    assert problems == []
    assert [u for u in requests if not _allowed(u)] == []
    assert any(u.endswith(f"/clips/{ids[0]}.mp4") for u in requests)


@pytest.mark.slow
def test_the_page_works_from_a_web_server_too(out: Path, browser: Any) -> None:
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        context = browser.new_context()
        requests: list[str] = []
        context.on("request", lambda r: requests.append(r.url))
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/review/index.html")
        played = page.evaluate(PLAY_ALL, "article.card video")
        assert played and all(v["error"] is None and v["advanced"] >= 0.4 for v in played)
        context.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert [u for u in requests if not _allowed(u)] == []


@pytest.mark.slow
def test_the_compilation_obeys_the_editors_and_previews_on_the_page(
    batch: rg.ReviewBatch, out: Path, browser: Any, tmp_path: Path
) -> None:
    """From a rendered batch to an approved, reordered compilation, checked in the browser."""
    pytest.importorskip("processing.assemble", reason="the compilation is not in this tree yet")
    a, b = batch.id("clean-turned.mp4"), batch.id("face.mp4")
    c = batch.id("clean-fractal.mp4")
    apply_decisions(_decisions({b: "approved", a: "approved", c: "rejected"}, [b, a]), out)
    config = tmp_path / "campaign.toml"
    config.write_text('[output]\nx264_preset = "superfast"\n', "utf-8")  # as the clips
    result = _reel("compile", "--out", str(out), "--config", str(config))
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "compilation" / "manifest.json").read_text("utf-8"))
    clips = [s for s in manifest["segments"] if s["kind"] == "clip"]
    assert [s["id"] for s in clips] == [b, a]

    result = _reel("review", "build", "--out", str(out))
    assert result.returncode == 0, result.stderr
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    context.on("request", lambda r: requests.append(r.url))
    page = context.new_page()
    page.goto((out / "review" / "index.html").as_uri())
    played = page.evaluate(PLAY_ALL, "#compilation-video")
    assert played[0]["error"] is None and played[0]["advanced"] >= 0.4, played
    assert played[0]["duration"] == pytest.approx(manifest["duration"], abs=0.1)
    # The second clip's chapter button, pressed with the keyboard, seeks to its start.
    second = page.locator(f'#compilation button[data-seek="{clips[1]["start"]:.3f}"]')
    assert clips[1]["label"] in second.inner_text()
    second.focus()
    page.keyboard.press("Enter")
    page.wait_for_function(
        "t => document.getElementById('compilation-video').currentTime >= t",
        arg=clips[1]["start"],
        timeout=15000,
    )
    page.screenshot(path=str(tmp_path / "review-compilation.png"))
    context.close()
    assert 'class="stale"' not in (out / "review" / "index.html").read_text("utf-8")
    # New decisions make the preview stale, and the page says so (apply rebuilds it).
    exported = tmp_path / "decisions.json"
    exported.write_text(json.dumps(_decisions({a: "approved"}, [a]) | {"editor": "Bo"}))
    assert _reel("review", "apply", str(exported), "--out", str(out)).returncode == 0
    assert 'class="stale"' in (out / "review" / "index.html").read_text("utf-8")
    assert [u for u in requests if not _allowed(u)] == []


def test_a_long_enough_clip_shows_its_keyframes_decoding_nothing_else(tmp_path: Path) -> None:
    """The clip task's pictures: each tile the keyframe nearest its slice's middle, alone."""
    import numpy as np

    from processing import sheets

    clip = tmp_path / "clip.mp4"
    # Keyframes every 0.5 s (15 frames), 6 s: 12 keyframes, a slice of 0.75 s holds one.
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=320x180:r=30:d=6",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "15", "-keyint_min", "15",
         "-sc_threshold", "0", "-pix_fmt", "yuv420p", str(clip)],
        check=True,
    )  # fmt: skip
    log = tmp_path / "clip.log"
    th = sheets.thumbs(
        clip, tmp_path / "pics", "k", frame=(320, 180), duration=6.0,
        keyframe_seconds=0.5, log_file=log,
    )  # fmt: skip
    assert th.times == (0.5, 1.0, 2.0, 2.5, 3.5, 4.0, 5.0, 5.5)
    assert "-skip_frame nokey" in log.read_text("utf-8")
    # Each tile is the frame at its time (the poster too), decoded here the slow, sure way.
    w, h = sheets.POSTER_WIDTH, 270
    tiles = sheets.contact_sheet([np.zeros((h, w, 3), np.uint8)] * 8, th.times).shape
    poster = cv2.imread(str(th.poster))[:, :, ::-1].astype(int)
    sheet = cv2.imread(str(th.sheet))[:, :, ::-1].astype(int)
    assert sheet.shape == tiles

    def at(t: float) -> np.ndarray:  # an accurate seek: exactly the frame at t
        raw = subprocess.run(
            ["ffmpeg", "-v", "error", "-ss", f"{t}", "-i", str(clip), "-frames:v", "1",
             "-vf", f"scale={w}:{h}:flags=area", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
            capture_output=True, check=True,
        ).stdout  # fmt: skip
        return np.frombuffer(raw, np.uint8).reshape(h, w, 3).astype(int)

    t = th.times[2]  # the poster is the third tile
    off = {dt: float(np.abs(poster - at(t + dt)).mean()) for dt in (-0.5, 0.0, 0.5)}
    assert min(off, key=off.__getitem__) == 0.0 and off[0.0] < 8, off
    # Every tile of the sheet likewise (tiles are the frame at 240 wide, timestamp drawn low).
    tw, th_ = tiles[1] // sheets.SHEET_COLUMNS, tiles[0] // 2

    def tile_off(picture: np.ndarray, i: int, t: float) -> float:
        tile = picture[(i // 4) * th_ : (i // 4 + 1) * th_, (i % 4) * tw : (i % 4 + 1) * tw]
        ref = cv2.resize(at(t).astype(np.uint8), (tw, th_), interpolation=cv2.INTER_AREA)
        top = slice(0, th_ * 2 // 3)  # above the drawn timestamp
        return float(np.abs(tile[top] - ref[top].astype(int)).mean())

    for i, t in enumerate(th.times):
        assert tile_off(sheet, i, t) < 12, (i, t)
    # A clip too short for a keyframe in every slice is decoded frame by frame: each
    # tile is still the frame at its label, all eight of them.
    short = sheets.thumbs(clip, tmp_path / "short", "s", frame=(320, 180), duration=6.0,
                          keyframe_seconds=2.0, log_file=log)  # fmt: skip
    assert short.times == (0.38, 1.12, 1.88, 2.62, 3.38, 4.12, 4.88, 5.62)
    short_sheet = cv2.imread(str(short.sheet))[:, :, ::-1].astype(int)
    assert short_sheet.shape == tiles
    for i, t in enumerate(short.times):
        assert tile_off(short_sheet, i, t) < 12, (i, t)
