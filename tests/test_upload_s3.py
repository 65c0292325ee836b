"""The upload page with an ``s3://`` target: bytes from the phone straight to the bucket.

Real parts only: ``reel upload serve`` in its own process, Debian's Chromium at
phone width running the vendored Uppy (``@uppy/aws-s3``), moto's S3 server
process (tests/test_s3.py's fixtures), and a TCP proxy between the browser and
the bucket that is cut in the middle of a part. moto does not verify
signatures, so a presigned URL's expiry and its signed ``Content-Length`` are
not tested here; the server's own checks (part plan, HEAD size, sniffed bytes,
nothing left behind) are, with a client that breaks the rules on purpose.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright import sync_api as pw

import mediagen as mg
from processing.config import load_config
from processing.storage import open_source
from processing.storage.s3client import S3Settings
from processing.upload.s3store import S3Store
from tests import test_s3
from tests.uploadkit import REEL, Proxy, Site

CHROMIUM = "/usr/bin/chromium"
PHONE = {"width": 390, "height": 844}
TARGET = "s3://uploads/2027/"
MIB = 1 << 20

s3_server = test_s3.s3_server  # the moto server process, started once per session
s3 = test_s3.s3  # an empty store with the buckets uploads and renders


@pytest.fixture(scope="module")
def browser() -> Any:
    with pw.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def _phone(browser: Any) -> Any:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    return context.new_page()


def _site(tmp_path: Path, s3: Any, endpoint: str, **upload: Any) -> Site:
    """The page for :data:`TARGET`, reaching the bucket at ``endpoint``; the bucket allows it."""
    site = Site(tmp_path, env={"AWS_ENDPOINT_URL": endpoint}, s3_target=TARGET, **upload)
    s3.put_bucket_cors(
        Bucket="uploads",
        CORSConfiguration={
            "CORSRules": [
                {
                    "AllowedOrigins": [site.url],
                    "AllowedMethods": ["PUT", "POST", "DELETE"],
                    "AllowedHeaders": ["*"],
                    "ExposeHeaders": ["ETag"],
                }
            ]
        },
    )
    return site


def _objects(s3: Any) -> dict[str, int]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket="uploads")
    return {o["Key"]: o["Size"] for page in pages for o in page.get("Contents", [])}


def _open_multipart(s3: Any) -> list[str]:
    return [u["Key"] for u in s3.list_multipart_uploads(Bucket="uploads").get("Uploads", [])]


def _video(tmp_path: Path, size: int) -> Path:
    """A real clip padded with random bytes to ``size`` (its first bytes stay a video's)."""
    clip = mg.make_clip(tmp_path / "clip.mp4", duration=2, size=(320, 240))
    data = clip.read_bytes()
    path = tmp_path / "phone.mp4"
    path.write_bytes(data + os.urandom(size - len(data)))
    return path


def _fetch(page: Any, path: str, body: dict[str, Any], csrf: bool = True) -> dict[str, Any]:
    """A JSON POST from inside the page (its cookie goes along): status and JSON body."""
    token = page.get_attribute("#upload", "data-csrf") if csrf else ""
    return dict(
        page.evaluate(
            """async ([path, token, body]) => {
                const r = await fetch(path, {method: 'POST', body, headers:
                    {'Content-Type': 'application/json', 'X-CSRF-Token': token}});
                let json = null; try { json = await r.json(); } catch (e) {}
                return {status: r.status, body: json};
            }""",
            [path, token, json.dumps(body)],
        )
    )


def test_cut_connection_resumes_and_sidecar_holds_what_was_entered(
    s3: Any, s3_server: str, browser: Any, tmp_path: Path
) -> None:
    bucket = Proxy(int(urlsplit(s3_server).port or 0), cut_after=7 * MIB)
    bucket.start()
    site = _site(tmp_path, s3, f"http://127.0.0.1:{bucket.port}", max_mb=12)
    try:
        video = _video(tmp_path, 11 * MIB + 12345)  # parts of 5, 5 and 1 MiB
        size = video.stat().st_size
        page = _phone(browser)
        requests: list[tuple[str, str]] = []
        page.on("request", lambda r: requests.append((r.resource_type, r.url)))
        given = datetime.now(UTC).replace(microsecond=0)
        page.goto(site.url + "/?lang=ru")
        page.set_input_files("#video", str(video))
        page.fill("#name", "Алия  Б.")
        page.fill("#message", "Мы помним.\nМы с вами.")
        page.select_option("#language", "ce")
        page.check("#consent")
        page.check("#anonymize")
        page.click("#send")
        page.wait_for_selector("#retry", state="visible", timeout=90_000)
        staged = [k for k in _objects(s3) if "/staging/" in k]
        [open_upload] = _open_multipart(s3)
        parts = s3.list_parts(
            Bucket="uploads", Key=open_upload,
            UploadId=s3.list_multipart_uploads(Bucket="uploads")["Uploads"][0]["UploadId"],
        ).get("Parts", [])  # fmt: skip
        assert [p["Size"] for p in parts] == [5 * MIB], "the cut should fall in the second part"
        assert staged == [] and not [k for k in _objects(s3) if "/web/" in k]

        bucket.start()  # the network is back
        page.click("#retry")
        page.wait_for_selector("#done", state="visible", timeout=90_000)
        assert bucket.sent_up < size - 4 * MIB, "the first part was sent again"

        objects = _objects(s3)
        [video_key] = [k for k in objects if k.startswith("2027/web/") and k.endswith(".mp4")]
        got = s3.get_object(Bucket="uploads", Key=video_key)
        assert got["Body"].read() == video.read_bytes() and got["ContentType"] == "video/mp4"
        sidecar_key = video_key[: -len(".mp4")] + ".json"
        sidecar = json.loads(s3.get_object(Bucket="uploads", Key=sidecar_key)["Body"].read())
        assert datetime.fromisoformat(sidecar.pop("consent_time")) >= given
        assert sidecar == {
            "name": "Алия Б.", "message": "Мы помним. Мы с вами.", "language": "ce",
            "consent": True, "anonymize": True, "consent_version": "2027-1",
            "via": "upload page",
        }  # fmt: skip
        rest = sorted(k for k in objects if k not in (video_key, sidecar_key))
        assert len(rest) == 1 and rest[0].startswith("2027/.reel-upload/links/"), rest
        assert _open_multipart(s3) == []
        # The pipeline sees one upload, with its sidecar.
        [listed] = open_source(TARGET).list_uploads()
        assert (listed.key, listed.sidecar_key) == (video_key[5:], sidecar_key[5:])

        # Only this host is loaded from; the bucket is only sent to (and listed) by script.
        page_host = urlsplit(site.url).netloc
        elsewhere = {(kind, urlsplit(u).netloc) for kind, u in requests}
        elsewhere -= {(kind, page_host) for kind, _ in requests}
        assert elsewhere == {("xhr", f"127.0.0.1:{bucket.port}")}, elsewhere
        with urllib.request.urlopen(site.url + "/") as r:
            csp = r.headers["Content-Security-Policy"]
        assert f"connect-src 'self' http://127.0.0.1:{bucket.port};" in csp
        assert "script-src 'self';" in csp and "default-src 'none'" in csp

        # The private link reaches the sidecar in the bucket.
        page.goto(site.url + str(page.get_attribute("#link", "href")))
        page.click("#withdraw")
        page.wait_for_selector("#notice")
        changed = json.loads(s3.get_object(Bucket="uploads", Key=sidecar_key)["Body"].read())
        assert changed["consent"] is False and changed["changed"][0]["what"] == "withdraw"

        stats = subprocess.run(
            [str(REEL), "upload", "stats", "--target", TARGET, "--config", str(site.config)],
            check=True, capture_output=True, text=True,
            env={**os.environ, "AWS_ENDPOINT_URL": s3_server},
        )  # fmt: skip
        shown = json.loads(stats.stdout)
        assert shown["count"] == 1 and datetime.fromisoformat(shown["last"]) >= given
    finally:
        site.stop()
        bucket.kill()


def test_a_lone_sidecar_or_staged_upload_is_never_an_upload(s3: Any) -> None:
    s3.put_object(Bucket="uploads", Key="2027/web/a/a.json", Body=b'{"consent": true}')
    s3.put_object(Bucket="uploads", Key="2027/.reel-upload/staging/abc", Body=b"video bytes")
    assert open_source(TARGET).list_uploads() == []
    s3.put_object(Bucket="uploads", Key="2027/web/a/a.mp4", Body=b"video bytes")
    [upload] = open_source(TARGET).list_uploads()
    assert upload.sidecar_key == "web/a/a.json"


def test_refusals_leave_nothing_in_the_bucket(
    s3: Any, s3_server: str, browser: Any, tmp_path: Path
) -> None:
    site = _site(tmp_path, s3, s3_server, max_mb=6)
    try:
        page = _phone(browser)
        head = mg.make_clip(tmp_path / "head.mp4", duration=2, size=(320, 240)).read_bytes()[:4096]
        text = tmp_path / "notes.mp4"
        text.write_text("These are my notes, not a video.\n" * 400, "utf-8")
        big = tmp_path / "big.mp4"
        big.write_bytes(head + b"\0" * (7 * MIB))
        ru = load_config(site.config).upload_text["ru"]
        for path, expected in ((big, ru["too_large"]), (text, ru["not_video"])):
            page.goto(site.url + "/?lang=ru")
            page.evaluate("document.getElementById('upload').dataset.max = '999999999'")
            page.set_input_files("#video", str(path))
            page.check("#consent")
            page.click("#send")
            page.wait_for_function("() => document.getElementById('status').className === 'error'")
            assert page.inner_text("#status") == expected
            assert _objects(s3) == {} and _open_multipart(s3) == []

        # A client that lies: a video's first bytes at /start, then text, or more bytes
        # than declared, sent to the bucket. The server's checks on completion refuse it.
        for body, declared, code in (
            (b"not a video at all " * 400, 7600, (415, "not_video")),
            (head + os.urandom(9000), 6000, (413, "too_large")),
        ):
            page.goto(site.url + "/?lang=en")
            started = _fetch(
                page, "/start",
                {"consent": True, "size": declared, "head": base64.b64encode(head[:189]).decode()},
            )  # fmt: skip
            assert started["status"] == 200 and started["body"]["part"] == 5 * MIB
            ticket = started["body"]["ticket"]
            assert _objects(s3) and _open_multipart(s3) == []  # the ticket only

            def sign(method: str, ticket: str = ticket, **more: Any) -> dict[str, Any]:
                return _fetch(page, "/s3/sign", {"ticket": ticket, "method": method, **more})

            created = sign("POST")["body"]["url"]
            xml = urllib.request.urlopen(urllib.request.Request(created, method="POST")).read()
            upload_id = xml.split(b"<UploadId>")[1].split(b"</UploadId>")[0].decode()
            assert sign("PUT", uploadId=upload_id, partNumber=2) == {
                "status": 413, "body": {"error": "too_large"}
            }, "a part beyond the plan was signed"  # fmt: skip
            assert sign("PUT", uploadId="someone-else", partNumber=1)["status"] == 403
            assert sign("PUT", ticket="made-up", uploadId=upload_id, partNumber=1)["status"] == 403
            assert _fetch(page, "/s3/sign", {"ticket": ticket}, csrf=False)["status"] == 403
            part_url = sign("PUT", uploadId=upload_id, partNumber=1)["body"]["url"]
            assert "content-length" in part_url.split("X-Amz-SignedHeaders=")[1].split("&")[0]
            put = urllib.request.Request(
                part_url, data=body, method="PUT",
                headers={"Content-Type": "application/octet-stream"},
            )  # fmt: skip
            etag = urllib.request.urlopen(put).headers["ETag"]
            done = sign("POST", uploadId=upload_id)["body"]["url"]
            complete = (
                "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>"
                f"<ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
            ).encode()
            urllib.request.urlopen(
                urllib.request.Request(
                    done, data=complete, method="POST", headers={"Content-Type": "application/xml"}
                )
            )
            assert any("/staging/" in k for k in _objects(s3))
            finished = _fetch(page, "/s3/finish", {"ticket": ticket})
            assert finished == {"status": code[0], "body": {"error": code[1]}}
            assert _objects(s3) == {} and _open_multipart(s3) == [], "a refused upload stayed"
    finally:
        site.stop()


def test_abandoned_multipart_uploads_are_aborted_and_finished_ones_kept(s3: Any) -> None:
    store = S3Store(TARGET, S3Settings(), max_bytes=MIB, presign_seconds=60)
    s3.put_object(Bucket="uploads", Key="2027/web/a/a.mp4", Body=b"a finished upload")
    s3.put_object(Bucket="uploads", Key="2027/web/a/a.json", Body=b"{}")
    ticket, _, _ = store.start({"name": "Someone"}, 6000, 0)
    created = store.sign(ticket, "POST", None, None)
    xml = urllib.request.urlopen(urllib.request.Request(created, method="POST")).read()
    upload_id = xml.split(b"<UploadId>")[1].split(b"</UploadId>")[0].decode()
    part = urllib.request.Request(
        store.sign(ticket, "PUT", upload_id, 1), data=b"x" * 6000, method="PUT",
        headers={"Content-Type": "application/octet-stream"},
    )  # fmt: skip
    urllib.request.urlopen(part).close()
    assert [p["PartNumber"] for p in store.parts(ticket)] == [1]
    before = _objects(s3)

    assert store.sweep(3600) == 0, "a fresh upload was swept"
    assert _objects(s3) == before and len(_open_multipart(s3)) == 1
    assert store.sweep(0) == 2  # the multipart upload and the ticket (with the name)
    assert _open_multipart(s3) == []
    assert sorted(_objects(s3)) == ["2027/web/a/a.json", "2027/web/a/a.mp4"]
