"""The contributor upload page, driven in Debian's Chromium at phone width (Playwright).

Real parts only: ``reel upload serve`` runs as its own process (uvicorn,
Starlette, tuspyserver), the browser runs the vendored tus-js-client, a TCP
proxy between them is cut in the middle of an upload, and the uploads are
processed by the pipeline itself (``process_batch``) on tiny clips.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright import sync_api as pw

import mediagen as mg
from processing.config import Config, load_config
from processing.pipeline import process_batch
from processing.sidecar import parse_sidecar
from processing.storage import open_source
from tests.uploadkit import REEL, Proxy, Site

CHROMIUM = "/usr/bin/chromium"
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with pw.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path)
    yield s
    s.stop()


def _phone(browser: Any) -> Any:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    return context.new_page()


def _clip(tmp_path: Path, name: str, content: str = "testsrc2", duration: float = 2) -> Path:
    return mg.make_clip(tmp_path / name, duration=duration, size=(320, 240), content=content)


def _fill(page: Any, video: Path, **form: Any) -> None:
    page.set_input_files("#video", str(video))
    if form.get("name"):
        page.fill("#name", form["name"])
    if form.get("message"):
        page.fill("#message", form["message"])
    if form.get("language"):
        page.select_option("#language", form["language"])
    if form.get("consent"):
        page.check("#consent")
    if form.get("anonymize"):
        page.check("#anonymize")


def _send(page: Any, video: Path, timeout: float = 60_000, **form: Any) -> str:
    """Upload through the page; returns the private link shown at the end."""
    _fill(page, video, **form)
    page.click("#send")
    page.wait_for_selector("#done", state="visible", timeout=timeout)
    return str(page.get_attribute("#link", "href"))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _sidecar_of(upload: Path) -> dict[str, Any]:
    return dict(json.loads((upload / f"{upload.name}.json").read_text("utf-8")))


# ---------------------------------------------------------------------- tests


def test_cut_connection_resumes_and_sidecar_holds_what_was_entered(
    site: Site, browser: Any, tmp_path: Path
) -> None:
    video = _clip(tmp_path, "phone.mp4")
    size = video.stat().st_size
    assert size > 6 * 32 * 1024, "the clip must span several chunks"
    proxy = Proxy(site.port, cut_after=size // 2)
    proxy.start()
    page = _phone(browser)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    given = datetime.now(UTC).replace(microsecond=0)
    page.goto(f"http://127.0.0.1:{proxy.port}/?lang=ru")
    assert "Отправьте своё видео" in page.inner_text("h1")
    assert "мы удаляем его через 30 дн." in page.inner_text("body")  # upload.keep_originals_days
    _fill(page, video, name="Алия  Б.", message="Мы помним.\nМы с вами.", language="ce",
          consent=True, anonymize=True)  # fmt: skip
    page.click("#send")
    page.wait_for_selector("#retry", state="visible", timeout=60_000)
    assert "продолжится с места остановки" in page.inner_text("#status")
    partial = [p for p in (site.target / ".reel-upload" / "tus").iterdir() if "." not in p.name]
    assert len(partial) == 1
    kept = partial[0].stat().st_size
    assert 0 < kept < size, f"the server should hold part of the file, has {kept} of {size}"
    assert site.arrived() == []

    proxy.start()  # the network is back
    page.click("#retry")
    page.wait_for_selector("#done", state="visible", timeout=60_000)
    assert proxy.sent_up < size - kept // 2, "the retry sent the file again from the start"
    [upload] = site.arrived()
    [arrived_video] = [p for p in upload.iterdir() if p.suffix != ".json"]
    assert arrived_video.suffix == ".mp4" and _sha(arrived_video) == _sha(video)
    sidecar = _sidecar_of(upload)
    assert datetime.fromisoformat(sidecar.pop("consent_time")) >= given
    assert sidecar == {
        "name": "Алия Б.", "message": "Мы помним. Мы с вами.", "language": "ce",
        "consent": True, "anonymize": True, "consent_version": "2027-1",
        "via": "upload page",
    }  # fmt: skip
    parsed, warnings = parse_sidecar((upload / f"{upload.name}.json").read_bytes(), max_bytes=9999)
    assert warnings == [] and parsed.consent is True and parsed.anonymize is True
    hosts = {urlsplit(u).netloc for u in requests}
    assert hosts == {f"127.0.0.1:{proxy.port}"}, f"requests to other hosts: {hosts}"
    working = [p for p in site.stored() if p.startswith(".reel-upload/")]
    assert len(working) == 1 and working[0].startswith(".reel-upload/links/"), working
    proxy.kill()


def _fetch(page: Any, path: str, *, method: str = "POST", headers: dict[str, str] | None = None,
           body: str | None = None) -> dict[str, Any]:  # fmt: skip
    """A request from inside the page (its cookie goes along); returns status and JSON body."""
    return dict(
        page.evaluate(
            """async ([path, method, headers, body]) => {
                const r = await fetch(path, {method, headers, body});
                let json = null; try { json = await r.json(); } catch (e) {}
                return {status: r.status, body: json};
            }""",
            [path, method, headers or {}, body],
        )
    )


def _token(page: Any) -> str:
    return str(page.get_attribute("#upload", "data-csrf"))


def _start(page: Any, head: bytes, size: int, csrf: str | None = None) -> dict[str, Any]:
    form = {"name": "x", "consent": True, "size": size, "head": base64.b64encode(head).decode()}
    headers = {"Content-Type": "application/json"}
    if csrf is not None:
        headers["X-CSRF-Token"] = csrf
    return _fetch(page, "/start", headers=headers, body=json.dumps(form))


def test_refusals_are_clear_and_store_nothing(site: Site, browser: Any, tmp_path: Path) -> None:
    page = _phone(browser)
    page.goto(site.url + "/?lang=en")
    texts = load_config(site.config).upload_text["en"]
    assert "we delete it 30 days after your clip is made" in page.inner_text("body")

    big = tmp_path / "big.mp4"  # a real container header, 1.5 MiB: over upload.max_mb = 1
    big.write_bytes(_clip(tmp_path, "head.mp4").read_bytes()[:64] + b"\0" * (3 << 19))
    text = tmp_path / "notes.mp4"
    text.write_text("These are my notes, not a video.\n" * 200, "utf-8")
    for video, expected in ((big, "too_large"), (text, "not_video")):
        page.goto(site.url + "/?lang=en")
        page.evaluate(
            "document.getElementById('upload').dataset.max = '999999999'"
        )  # skip the page's own check
        _fill(page, video, name="Someone", consent=True)
        page.click("#send")
        page.wait_for_function(
            "t => document.getElementById('status').textContent === t", arg=texts[expected]
        )
        assert "error" in str(page.get_attribute("#status", "class"))
        assert site.stored() == [], f"{video.name} left files behind"

    # A client that lies about the first bytes at /start is stopped at its first chunk.
    good_head = _clip(tmp_path, "head.mp4").read_bytes()[:189]
    started = _start(page, good_head, 6000, _token(page))
    assert started["status"] == 200
    tus = {"Tus-Resumable": "1.0.0", "X-CSRF-Token": _token(page)}
    meta = "ticket " + base64.b64encode(started["body"]["ticket"].encode()).decode()
    created = page.evaluate(
        """async ([headers]) => {
            const r = await fetch('/files/', {method: 'POST', headers});
            return {status: r.status, location: r.headers.get('Location')};
        }""",
        [
            {
                **tus,
                "Upload-Length": "6000",
                "Upload-Metadata": meta + ",filename dg==,filetype dg==",
            }
        ],
    )
    assert created["status"] == 201, created
    patched = _fetch(
        page, urlsplit(created["location"]).path, method="PATCH",
        headers={**tus, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
        body="not a video at all " * 300,
    )  # fmt: skip
    assert patched == {"status": 415, "body": {"error": "not_video"}}
    assert site.stored() == [], "the refused upload or its ticket stayed"

    # An Upload-Length over the limit is refused before anything is created.
    started = _start(page, good_head, 6000, _token(page))
    meta = "ticket " + base64.b64encode(started["body"]["ticket"].encode()).decode()
    over = _fetch(
        page, "/files/", headers={**tus, "Upload-Length": str(5 << 20), "Upload-Metadata": meta}
    )
    assert over == {"status": 413, "body": {"error": "too_large"}}
    assert site.stored() == []

    # Without the CSRF token (or with a stale one) nothing starts.
    assert _start(page, good_head, 6000)["status"] == 403
    assert _start(page, good_head, 6000, "0" * 64) == {
        "status": 403,
        "body": {"error": "bad_token"},
    }
    no_token = _fetch(page, "/files/", headers={"Tus-Resumable": "1.0.0", "Upload-Length": "10"})
    assert no_token == {"status": 403, "body": {"error": "bad_token"}}
    page.goto(site.url + "/?lang=en")
    page.evaluate("document.getElementById('upload').dataset.csrf = 'stale'")
    _fill(page, _clip(tmp_path, "head.mp4"), name="Someone")
    page.click("#send")
    page.wait_for_function(
        "t => document.getElementById('status').textContent === t", arg=texts["bad_token"]
    )
    assert site.stored() == []

    # No listing, no download: only what tus needs is answered.
    for path in ("/files/", "/files/" + "a" * 32):
        assert _fetch(page, path, method="GET")["status"] == 405


def test_burst_over_the_rate_limit_is_refused(browser: Any, tmp_path: Path) -> None:
    site = Site(tmp_path, starts_per_hour=3)
    try:
        page = _phone(browser)
        page.goto(site.url + "/?lang=ru")
        head = _clip(tmp_path, "head.mp4").read_bytes()[:189]
        answers = [_start(page, head, 6000, _token(page))["status"] for _ in range(5)]
        assert answers == [200, 200, 200, 429, 429]
        before = site.stored()
        _fill(page, _clip(tmp_path, "head.mp4"), consent=True)
        page.click("#send")
        ru = load_config(site.config).upload_text["ru"]["rate_limited"]
        page.wait_for_function("t => document.getElementById('status').textContent === t", arg=ru)
        assert site.stored() == before
    finally:
        site.stop()


def test_page_security_headers(site: Site) -> None:
    with urllib.request.urlopen(site.url + "/?lang=en") as r:
        csp = r.headers["Content-Security-Policy"]
        assert r.headers["Referrer-Policy"] == "no-referrer"
        assert (
            "HttpOnly" in r.headers["Set-Cookie"] and "SameSite=strict" in r.headers["Set-Cookie"]
        )
        html = r.read().decode()
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "<script>" not in html and "style=" not in html


@pytest.mark.slow
def test_consent_anonymity_and_withdrawal_reach_the_pipeline(
    site: Site, browser: Any, tmp_path: Path
) -> None:
    cfg: Config = load_config(site.config)
    page = _phone(browser)
    page.goto(site.url + "/?lang=en")
    link = _send(page, _clip(tmp_path, "given.mp4"), name="Dana", consent=True, anonymize=True)
    page.goto(site.url + "/?lang=ru")
    later = _send(page, _clip(tmp_path, "not-given.mp4", content="smptebars"), name="Ира")
    out = tmp_path / "renders"
    # The language select follows the page's language: en for one, ru for the other.
    entries = {e.language: e for e in process_batch(open_source(site.target), out, cfg)}
    given, not_given = entries["en"], entries["ru"]
    assert given.status != "excluded" and given.consent is True
    assert given.anonymize and given.anonymization, "anonymity asked on the page was not applied"
    assert not_given.status == "excluded" and not_given.code == "no_consent"
    assert (out / "clips" / f"{not_given.id}.mp4").is_file(), (
        "no-consent clip not rendered for review"
    )
    clip = out / "clips" / f"{given.id}.mp4"
    assert clip.is_file()

    page.goto(site.url + link)
    page.click("#withdraw")
    page.wait_for_selector("#notice")
    assert "will not be used" in page.inner_text("#notice")
    assert page.query_selector("#withdraw") is None
    page.goto(site.url + later)  # the other contributor asks to be hidden, in Russian
    page.click("#hide")
    page.wait_for_selector("#notice")
    assert page.inner_text("#notice") == cfg.upload_text["ru"]["hidden"]
    again = {e.id: e for e in process_batch(open_source(site.target), out, cfg)}
    assert again[given.id].code == "consent_withdrawn"
    assert not clip.exists(), "the withdrawn clip is still in the output"
    assert again[not_given.id].code == "no_consent"
    assert not not_given.anonymize and again[not_given.id].anonymize
    assert again[not_given.id].anonymization, "anonymity asked through the link was not applied"

    stranger = _phone(browser)
    stranger.goto(site.url + "/l/" + "A" * 43)
    assert (
        stranger.inner_text("#unknown")
        == load_config(site.config).upload_text["en"]["unknown_link"]
    )


def test_abandoned_uploads_are_swept_and_staff_see_arrivals(
    site: Site, browser: Any, tmp_path: Path
) -> None:
    page = _phone(browser)
    page.goto(site.url + "/?lang=en")
    before = datetime.now(UTC).replace(microsecond=0)
    _send(page, _clip(tmp_path, "arrives.mp4"), consent=True)
    head = _clip(tmp_path, "arrives.mp4").read_bytes()[:189]
    assert _start(page, head, 6000, _token(page))["status"] == 200  # started, never sent
    [ticket] = (site.target / ".reel-upload" / "tickets").iterdir()
    site.stop()
    stats = json.loads(
        subprocess.run(
            [str(REEL), "upload", "stats", "--target", str(site.target)],
            check=True, capture_output=True, text=True,
        ).stdout
    )  # fmt: skip
    assert stats["count"] == 1 and datetime.fromisoformat(stats["last"]) >= before
    # The same count heads the review app and the nightly run's summary.
    from processing.upload.store import arrivals

    line = arrivals(site.target)
    assert line.startswith("1 uploads through the upload page, the last at "), line
    assert arrivals(site.target / "no-such-folder") == ""

    fresh = Site(tmp_path, target=site.target)  # a restart sweeps; this ticket is too young
    fresh.stop()
    assert ticket.is_file()
    two_days_ago = time.time() - 2 * 86400 - 60
    os.utime(ticket, (two_days_ago, two_days_ago))
    Site(tmp_path, target=site.target).stop()
    assert not ticket.exists(), "an abandoned upload's form (a name, a message) was kept"
    assert len(site.arrived()) == 1, "a finished upload was swept"
