"""S3 storage against a real S3 server process (moto's server mode) over HTTP on 127.0.0.1.

Real boto3, real sockets, no mocks: the session starts ``python -m moto.server``
and every test talks to it through ``AWS_ENDPOINT_URL`` exactly as a worker
talks to MinIO or AWS. The fault test puts a TCP proxy in front of the server
and cuts it in the middle of a run, as a store that goes down would.

moto's server cannot store a key containing a newline (its URL routing refuses
it); newlines in keys are covered by :func:`test_local_names_never_leave_the_folder`.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mediagen as mg
from flows.cli import main as reel
from processing.config import Config, load_config
from processing.errors import Rejection
from processing.pipeline import identify, process_batch, process_safely
from processing.storage import StorageError, open_output, open_source
from processing.storage.s3client import S3Settings
from processing.storage.s3source import S3Source, local_name

REEL = Path(sys.executable).with_name("reel")
UPLOADS, RENDERS = "s3://uploads/2027/", "s3://renders/2027/"
CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".flac": "audio/flac",
    ".json": "application/json",
    ".vtt": "text/vtt",
    ".srt": "application/x-subrip",
    ".txt": "text/plain; charset=utf-8",
    ".log": "text/plain; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}


# ------------------------------------------------------------------ fixtures


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A moto S3 server process for the session; yields its endpoint URL."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        # No profile or config file of the machine running the tests may leak in.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the moto S3 server did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def s3(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An empty store (the server is reset) with the buckets ``uploads`` and ``renders``."""
    urllib.request.urlopen(
        urllib.request.Request(f"{s3_server}/moto-api/reset", method="POST"), timeout=10
    ).close()
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    client = boto3.client("s3", endpoint_url=s3_server)
    for bucket in ("uploads", "renders"):
        client.create_bucket(Bucket=bucket)
    return client


def _config(tmp_path: Path, staging: str = "staging", **extra: str) -> Path:
    """A campaign file: small frames, short cards, fast retries, staging under ``tmp_path``."""
    path = tmp_path / f"campaign-{staging}.toml"
    text = (
        "[output]\nwidth = 640\nheight = 360\n"
        "[compilation]\nyear = 2027\ntitle_seconds = 2.0\nend_seconds = 2.0\n"
        f'[storage]\nstaging_dir = "{tmp_path / staging}"\nmax_attempts = 2\n'
        "connect_timeout_seconds = 1.0\nread_timeout_seconds = 5.0\nmultipart_mb = 5\n"
        "[orchestration]\nstorage_retries = 1\nstorage_retry_delay_seconds = 0.5\n"
    )
    for section, body in extra.items():
        text += f"[{section}]\n{body}\n"
    path.write_text(text, "utf-8")
    return path


def _seed(
    client: Any, folder: Path, count: int, *, start: int = 0, prefix: str = "2027/"
) -> dict[str, bytes]:
    """``count`` distinct 2 s clips with consenting sidecars under ``uploads/prefix``."""
    folder.mkdir(parents=True, exist_ok=True)

    def one(i: int) -> tuple[str, bytes]:
        clip = mg.make_clip(folder / f"clip{i}.mp4", duration=2, size=(320, 180), lufs=-20 - i)
        key = f"{prefix}clip{i}.mp4"
        client.upload_file(str(clip), "uploads", key)
        sidecar = {"name": f"Supporter {i}", "consent": True}
        client.put_object(
            Bucket="uploads", Key=f"{prefix}clip{i}.json", Body=json.dumps(sidecar).encode()
        )
        return key, clip.read_bytes()

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(one, range(start, start + count)))


def _objects(client: Any, bucket: str, prefix: str = "") -> dict[str, dict[str, Any]]:
    """Every object under ``prefix``: key → {size, etag, modified}."""
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            found[o["Key"]] = {"size": o["Size"], "etag": o["ETag"], "modified": o["LastModified"]}
    return found


def _get(client: Any, key: str, bucket: str = "renders") -> bytes:
    return bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())


def _report(client: Any) -> dict[str, Any]:
    return dict(json.loads(_get(client, "2027/report.json")))


def _assert_report_consistent(client: Any, report: dict[str, Any]) -> None:
    """Every object the report names is in the bucket, complete (its record agrees)."""
    objects = _objects(client, "renders", "2027/")
    ids = [s["id"] for s in report["submissions"]]
    assert len(ids) == len(set(ids)), "a submission is listed twice"
    for s in report["submissions"]:
        if s.get("output"):
            assert f"2027/{s['output']}" in objects, s["output"]
            record = json.loads(_get(client, f"2027/clips/{s['id']}.json"))
            assert record["render_key"] == s["render_key"]
            assert f"2027/clips/{s['id']}.flac" in objects
    if "compilation" in report:
        assert f"2027/{report['compilation']['output']}" in objects


# -------------------------------------------------------------- round trip


@pytest.mark.slow
def test_bucket_to_bucket_round_trip_with_presigned_links(
    s3: Any, prefect_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clips = _seed(s3, tmp_path / "media", 3)
    mg.make_truncated(tmp_path / "media" / "broken.mp4")
    s3.upload_file(str(tmp_path / "media" / "broken.mp4"), "uploads", "2027/broken.mp4")
    uploads_before = _objects(s3, "uploads")
    config = _config(tmp_path)

    started = time.monotonic()
    run = subprocess.run(
        [str(REEL), "run", UPLOADS, "--out", RENDERS, "--approve-all", "--config", str(config)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    run_seconds = time.monotonic() - started
    assert run.returncode == 0, run.stderr
    printed = run.stdout
    built = re.search(r"^compilation: s3://renders/2027/(compilation/\S+/remembrance-2027\.mp4)$",
                      printed, re.M)  # fmt: skip
    assert built, printed

    # Exactly as with folders: accepted clips, the rejected upload with its reason,
    # the compilation with every accepted clip, and nothing pointing at a missing object.
    report = _report(s3)
    by_source = {s["source"]: s for s in report["submissions"]}
    assert sorted(by_source) == ["broken.mp4", "clip0.mp4", "clip1.mp4", "clip2.mp4"]
    assert by_source["broken.mp4"]["code"] == "truncated"
    assert all(by_source[k.removeprefix("2027/")]["status"] == "accepted" for k in clips)
    assert sorted(report["compilation"]["clips"]) == sorted(
        by_source[k.removeprefix("2027/")]["id"] for k in clips
    )
    _assert_report_consistent(s3, report)
    assert _objects(s3, "uploads") == uploads_before, "the uploads were changed"

    # Right content types; never a public grant.
    published = _objects(s3, "renders", "2027/")
    manifest = json.loads(_get(s3, "2027/compilation/manifest.json"))
    assert manifest["output"] == built[1]
    comp = "2027/" + built[1].removesuffix(".mp4")
    for key in (
        f"{comp}.mp4", f"{comp}.srt", f"{comp}.vtt", f"{comp}.chapters.txt", f"{comp}.credits.txt",
        "2027/compilation/manifest.json", "2027/report.json", "2027/review/index.html",
        *(f"2027/{s['output']}" for s in report["submissions"] if s.get("output")),
        *(f"2027/clips/{s['id']}.flac" for s in report["submissions"] if s.get("output")),
    ):  # fmt: skip
        assert key in published, key
        head = s3.head_object(Bucket="renders", Key=key)
        assert head["ContentType"] == CONTENT_TYPES[Path(key).suffix], key
    for key in published:
        grants = s3.get_object_acl(Bucket="renders", Key=key)["Grants"]
        assert all("URI" not in g["Grantee"] for g in grants), f"{key} has a group grant"

    # The printed links and every link on the review page download over HTTP,
    # byte for byte what the bucket holds, and expire after the default 7 days.
    link_line = r"^(review page|compilation) \(link valid 7 days\): (\S+)$"
    links = dict(re.findall(link_line, printed, re.M))
    assert set(links) == {"review page", "compilation"}
    page = urllib.request.urlopen(links["review page"], timeout=10).read()
    assert page == _get(s3, "2027/review/index.html")
    video = urllib.request.urlopen(links["compilation"], timeout=10).read()
    assert video == _get(s3, f"{comp}.mp4")
    urls = {html.unescape(u) for u in re.findall(r"https?://[^\s\"'<>]+", page.decode())}
    media = [u for u in urls if "/renders/2027/" in u]
    assert len(media) == len(clips) + 1, media  # every clip and the compilation
    for url in media:
        assert "X-Amz-Expires=604800" in url and "X-Amz-Signature=" in url
        key = url.split("/renders/", 1)[1].split("?", 1)[0]
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.headers["Content-Type"] == "video/mp4"
            assert response.read() == _get(s3, key)

    # Another worker with an empty staging folder skips everything that is done:
    # nothing is rendered again, no clip object is rewritten.
    clip_objects = {k: v for k, v in _objects(s3, "renders", "2027/clips/").items()}
    other = _config(tmp_path, staging="other-machine")
    assert reel(["process", UPLOADS, "--out", RENDERS, "--config", str(other), "-q"]) == 0
    assert "3 accepted (3 already rendered), 1 rejected" in capsys.readouterr().out
    assert _objects(s3, "renders", "2027/clips/") == clip_objects
    # An editor's decisions applied on a third machine reach a fourth, which
    # compiles from the bucket alone, in the editor's order.
    ids = [by_source[f"clip{i}.mp4"]["id"] for i in range(3)]
    decisions = tmp_path / "decisions.json"
    decisions.write_text(
        json.dumps({
            "version": 1, "editor": "Lena", "decided_at": "2027-03-20T10:00:00Z",
            "order": [ids[2], ids[0]],
            "decisions": {ids[2]: "approved", ids[0]: "approved", ids[1]: "rejected"},
        }),
        "utf-8",
    )  # fmt: skip
    third = _config(tmp_path, staging="third-machine")
    assert reel(["review", "apply", str(decisions), "--out", RENDERS, "--config", str(third)]) == 0
    assert "in s3://renders/2027/decisions.json" in capsys.readouterr().out
    fourth = _config(tmp_path, staging="fourth-machine")
    assert reel(["compile", "--out", RENDERS, "--config", str(fourth)]) == 0
    printed = capsys.readouterr().out
    rebuilt = json.loads(_get(s3, "2027/compilation/manifest.json"))
    assert f"s3://renders/2027/{rebuilt['output']}: 2 clips" in printed
    # One set in the bucket: the one the manifest names (the superseded set is gone).
    sets = {k for k in _objects(s3, "renders", "2027/compilation/") if "/cards/" not in k}
    assert sets == {"2027/compilation/manifest.json", *(f"2027/{f}" for f in rebuilt["files"])}
    report = _report(s3)
    assert report["compilation"]["clips"] == [ids[2], ids[0]]
    _assert_report_consistent(s3, report)
    print(f"round trip: reel run of 4 uploads bucket to bucket in {run_seconds:.1f} s")


def test_an_output_overlapping_the_uploads_is_refused(
    s3: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s3.put_object(Bucket="uploads", Key="2027/x.mp4", Body=b"x")
    config = _config(tmp_path)
    for out in ("s3://uploads/2027/renders/", "s3://uploads/", "s3://uploads/2027"):
        assert reel(["process", UPLOADS, "--out", out, "--config", str(config), "-q"]) == 2
        err = capsys.readouterr().err
        assert "overlaps the uploads" in err and "never overwritten" in err
    assert list(_objects(s3, "uploads")) == ["2027/x.mp4"]


def test_a_missing_bucket_says_what_to_do(s3: Any, tmp_path: Path) -> None:
    source = open_source("s3://no-such-bucket/2027/", cfg=load_config(_config(tmp_path)))
    with pytest.raises(StorageError, match="bucket does not exist; create it"):
        source.list_uploads()


# ------------------------------------------------------------------ listing


def test_listing_pages_through_more_than_a_thousand_keys(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,001 junk objects cost a listing page, not a download each."""
    junk = [f"2027/notes/note-{i:04d}.txt" for i in range(1001)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket="uploads", Key=k, Body=b"n"), junk))
    _seed(s3, tmp_path / "media", 1)  # uploads/2027/clip0.mp4 and its sidecar
    cfg = load_config(_config(tmp_path))

    everything = S3Source(UPLOADS)  # nothing ignored
    calls: Counter[str] = Counter()
    everything.client.meta.events.register(
        "before-call.s3.*", lambda model, **kw: calls.update([model.name])
    )
    listed = everything.list_uploads()
    assert len(listed) == 1002  # 1,001 notes and the clip (the sidecar is paired, not listed)
    assert calls["ListObjectsV2"] == 2, calls  # 1,003 keys: two pages of at most 1,000
    assert next(u for u in listed if u.key == "clip0.mp4").sidecar_key == "clip0.json"

    source = open_source(UPLOADS, ignore=cfg.ingest.ignore, cfg=cfg)
    assert isinstance(source, S3Source)
    calls.clear()
    source.client.meta.events.register(
        "before-call.s3.*", lambda model, **kw: calls.update([model.name])
    )
    started = time.monotonic()
    entries = process_batch(source, tmp_path / "out", cfg, workdir=tmp_path / "work")
    seconds = time.monotonic() - started
    assert [(e.source, e.status) for e in entries] == [("clip0.mp4", "accepted")]
    # Listing (2 pages), the digest, the sidecar and the download: junk is never read.
    assert calls == Counter({"ListObjectsV2": 2, "GetObject": 3}), calls
    print(f"1,003 keys listed and 1 clip processed in {seconds:.1f} s")


# ------------------------------------------------------------- hostile keys

HOSTILE_KEYS = [
    "../../etc/passwd.mp4",
    "/abs.mp4",
    "../",
    "x\\..\\..\\windows.mp4",
    "a/./b/../../c.mp4",
    "%2e%2e/%2e%2e/encoded.mp4",
    "ctl\x01\x1b[31m\x7f.mp4",
    "cr\rtab\t.mp4",
    "rtl\u202egnp.mp4",
    "-y -i x.mp4",
    "ü" * 400 + ".mp4",  # 800 bytes: over any file-name limit, within S3's 1,024
]


@given(st.text(min_size=1, max_size=300))
def test_local_names_never_leave_the_folder(key: str) -> None:
    name = local_name(key)
    assert re.fullmatch(r"[0-9a-f]{32}(\.[a-z0-9]{1,10})?", name), name
    assert local_name(key + "\n.mp4") != local_name(key + ".mp4")


def test_hostile_keys_never_escape_the_work_folder(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    media = tmp_path / "media"
    media.mkdir()
    real = {"../../etc/passwd.mp4", "rtl\u202egnp.mp4"}
    for i, rel in enumerate(HOSTILE_KEYS):
        if rel in real:
            path = mg.make_clip(media / f"{i}.mp4", duration=2, size=(320, 180), lufs=-20 - i)
            body = path.read_bytes()
            sidecar = {"name": f"Hostile {i}", "consent": True}
            s3.put_object(
                Bucket="uploads",
                Key="2027/" + rel.removesuffix(".mp4") + ".json",
                Body=json.dumps(sidecar).encode(),
            )
        else:
            body = f"not a video {i}".encode()
        s3.put_object(Bucket="uploads", Key="2027/" + rel, Body=body)
    cfg = load_config(_config(tmp_path))
    work = tmp_path / "sandbox" / "work"
    copies: list[Path] = []
    original = S3Source.local_copy

    def spy(self: S3Source, upload: Any, workdir: Path) -> Any:
        cm = original(self, upload, workdir)

        class Recording:
            def __enter__(self) -> Path:
                path = cm.__enter__()
                copies.append(path)
                assert path.is_file()
                return path

            def __exit__(self, *exc: object) -> Any:
                return cm.__exit__(*exc)

        return Recording()

    monkeypatch.setattr(S3Source, "local_copy", spy)
    source = open_source(UPLOADS, ignore=cfg.ingest.ignore, cfg=cfg)
    entries = {e.source: e for e in process_batch(source, tmp_path / "out", cfg, workdir=work)}

    # "../" is a folder marker, not an upload; every other key was downloaded once,
    # into the work folder, under a hash name, and is reported by its key.
    uploads = [k for k in HOSTILE_KEYS if not k.endswith("/")]
    assert sorted(entries) == sorted(uploads)
    assert len(copies) == len(uploads)
    for path in copies:
        assert path.resolve().parent.parent == work.resolve()
        assert re.fullmatch(r"[0-9a-f]{32}\.mp4", path.name), path.name
    for rel in real:
        assert entries[rel].status == "accepted", entries[rel].reason
    for rel in set(uploads) - real:
        assert entries[rel].code == "not_media", (rel, entries[rel].code)
    # Nothing was written outside the output and work folders; the copies are gone.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["media", "sandbox", "out", "campaign-staging.toml"]
    )
    assert [p.name for p in (tmp_path / "sandbox").iterdir()] == ["work"]
    assert not [p for p in work.rglob("*") if p.is_file()]
    assert not Path("/etc/passwd.mp4").exists() and not Path("/abs.mp4").exists()


# ------------------------------------------------------- changed under us


@pytest.mark.parametrize("size_mib", [0, 11], ids=["single-get", "multipart"])
def test_an_object_replaced_after_listing_is_detected(
    s3: Any, tmp_path: Path, size_mib: int
) -> None:
    body = os.urandom(size_mib * 2**20 + 1000)
    s3.put_object(Bucket="uploads", Key="2027/a.mp4", Body=body)
    settings = S3Settings(multipart_bytes=5 * 2**20, concurrency=2)
    source = S3Source(UPLOADS, settings=settings)
    (upload,) = source.list_uploads()
    assert upload.etag and upload.size == len(body)
    gets: list[dict[str, Any]] = []
    source.client.meta.events.register(
        "before-call.s3.GetObject", lambda params, **kw: gets.append(params)
    )

    # Unchanged: the managed transfer fetches it (in ranged parts when large).
    with source.local_copy(upload, tmp_path / "work") as path:
        assert path.read_bytes() == body
    assert len(gets) == (1 if size_mib == 0 else 3)
    assert all(g["headers"]["If-Match"] == upload.etag for g in gets)

    # Replaced (same size, other bytes) after the listing: refused, never mixed.
    s3.put_object(Bucket="uploads", Key="2027/a.mp4", Body=os.urandom(len(body)))
    with pytest.raises(Rejection) as caught, source.local_copy(upload, tmp_path / "work"):
        pass
    assert caught.value.code == "upload_changed"
    assert "next run" in caught.value.reason
    with pytest.raises(Rejection, match="replaced while this run"):
        source.digest(upload, tmp_path / "work")
    assert not [p for p in (tmp_path / "work").rglob("*") if p.is_file()]


def test_a_submission_replaced_mid_batch_is_rejected_for_the_next_run(
    s3: Any, tmp_path: Path
) -> None:
    _seed(s3, tmp_path / "media", 1)
    cfg = load_config(_config(tmp_path))
    source = open_source(UPLOADS, ignore=cfg.ingest.ignore, cfg=cfg)
    dest = open_output(RENDERS, cfg)
    subs, refused = identify(source, source.list_uploads(), cfg, tmp_path / "work")
    assert len(subs) == 1 and not refused
    s3.put_object(Bucket="uploads", Key="2027/clip0.mp4", Body=b"a different upload")
    entry = process_safely(subs[0], source, dest.root, cfg, tmp_path / "work", dest=dest)
    assert (entry.status, entry.code) == ("rejected", "upload_changed")
    assert not _objects(s3, "renders", "2027/clips/"), "nothing was published for it"


def test_large_files_are_published_in_parts_and_not_sent_twice(s3: Any, tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path))  # multipart_mb = 5
    dest = open_output(RENDERS, cfg)
    body = os.urandom(11 * 2**20)
    (dest.root / "compilation").mkdir(parents=True)
    (dest.root / "compilation" / "big.mp4").write_bytes(body)
    dest.publish(["compilation/big.mp4"])
    head = s3.head_object(Bucket="renders", Key="2027/compilation/big.mp4")
    assert head["ETag"].endswith('-3"'), head["ETag"]  # three parts of at most 5 MiB
    assert head["ContentType"] == "video/mp4"
    assert _get(s3, "2027/compilation/big.mp4") == body
    modified = head["LastModified"]
    time.sleep(1.1)
    dest.publish(["compilation/big.mp4"])  # same bytes: not uploaded again
    assert s3.head_object(Bucket="renders", Key="2027/compilation/big.mp4")["LastModified"] == (
        modified
    )
    # Fetched on another machine: the same bytes, through ranged GETs.
    other = open_output(RENDERS, load_config(_config(tmp_path, staging="other")))
    other.fetch(["compilation/big.mp4"])
    assert (other.root / "compilation" / "big.mp4").read_bytes() == body
    assert not [p for p in other.root.rglob("*") if p.name.startswith(".")]


# -------------------------------------------------------------------- faults


class Proxy:
    """A TCP proxy in front of the S3 server that can be stopped and started again.

    Stopping closes the listening socket (new connections are refused, as by a
    stopped server) and resets every open connection mid-transfer.
    """

    def __init__(self, target: int):
        self.target = target
        self.port = _free_port()
        self.lock = threading.Lock()
        self.conns: set[socket.socket] = set()
        self.listener: socket.socket | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        with self.lock:
            if self.listener is not None:
                # shutdown() wakes the thread blocked in accept(); close() alone would not.
                with contextlib.suppress(OSError):
                    self.listener.shutdown(socket.SHUT_RDWR)
                self.listener.close()
                self.listener = None
            for conn in self.conns:
                # SO_LINGER 0: close with a reset, like a server that died.
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
            self.conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def proxy(s3_server: str) -> Iterator[Proxy]:
    p = Proxy(int(s3_server.rsplit(":", 1)[1]))
    yield p
    p.stop()


def test_a_short_outage_is_absorbed_by_retries(
    s3: Any, proxy: Proxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    cfg = load_config(_config(tmp_path), overrides={"storage": {"max_attempts": 6}})
    dest = open_output(RENDERS, cfg)
    (dest.root / "clips").mkdir(parents=True)
    (dest.root / "clips" / "x.json").write_text("{}", "utf-8")
    proxy.stop()
    threading.Timer(0.5, proxy.start).start()
    dest.publish(["clips/x.json"])  # refused at first, then the store is back
    assert _get(s3, "2027/clips/x.json") == b"{}"


@pytest.mark.slow
def test_a_store_down_mid_run_fails_cleanly_and_a_rerun_completes(
    s3: Any, proxy: Proxy, prefect_server: str, tmp_path: Path
) -> None:
    clips = _seed(s3, tmp_path / "media", 4)
    uploads_before = _objects(s3, "uploads")
    config = _config(tmp_path)
    cmd = [str(REEL), "run", UPLOADS, "--out", RENDERS, "--approve-all", "--config", str(config)]
    env = {**os.environ, "AWS_ENDPOINT_URL": proxy.url}

    # Run 1: the store goes away as soon as the first clip is published.
    first = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while not any(k.endswith(".json") for k in _objects(s3, "renders", "2027/clips/")):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "no clip was ever published"
            time.sleep(0.05)
        proxy.stop()
        down_at = time.monotonic()
        out, err = first.communicate(timeout=180)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    failed_after = time.monotonic() - down_at
    assert first.returncode == 2, (out, err)
    last = err.strip().splitlines()[-1]
    assert last.startswith("reel: error: the object store at "), err
    assert "did not answer" in last and "run again" in last, last

    # Nothing half-published: no report, no compilation, every published record
    # has its clip and master; no multipart upload left open.
    published = _objects(s3, "renders", "2027/")
    assert "2027/report.json" not in published
    assert not [k for k in published if "/compilation/" in k]
    records = [k for k in published if k.startswith("2027/clips/") and k.endswith(".json")]
    assert 1 <= len(records) < len(clips), "the store went down in the middle of the run"
    for key in records:
        record = json.loads(_get(s3, key))
        assert key.replace(".json", ".mp4") in published
        assert key.replace(".json", ".flac") in published
        assert record["rendered_by"].endswith(f":{first.pid}")
    assert not s3.list_multipart_uploads(Bucket="renders").get("Uploads")
    before_rerun = {k: published[k] for k in published if k.startswith("2027/clips/")}
    # Clips rendered in run 1 whether or not they could be published (a task that met
    # the dead store before rendering rendered nothing).
    staged = open_output(RENDERS, load_config(config)).root / "clips"
    rendered_1 = {p.stem: p.stat().st_mtime_ns for p in staged.glob("*.mp4")}

    # Run 2, with the store back: completes; nothing lost, nothing done twice.
    proxy.start()
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    report = _report(s3)
    sources = [s["source"] for s in report["submissions"]]
    assert sorted(sources) == sorted(k.removeprefix("2027/") for k in clips)
    assert all(s["status"] == "accepted" for s in report["submissions"])
    _assert_report_consistent(s3, report)
    after = _objects(s3, "renders", "2027/clips/")
    for key, obj in before_rerun.items():
        assert after[key] == obj, f"{key} was published again"
    # Every clip was rendered exactly once: what run 1 rendered (published or only
    # staged) run 2 reused untouched; run 2 rendered only the rest.
    for s in report["submissions"]:
        pid = int(s["rendered_by"].rsplit(":", 1)[1])
        if s["id"] in rendered_1:
            assert (pid, s["cached"]) == (first.pid, True), s["source"]
            assert (staged / f"{s['id']}.mp4").stat().st_mtime_ns == rendered_1[s["id"]]
        else:
            assert pid != first.pid and not s["cached"], s["source"]
    assert len(report["compilation"]["clips"]) == len(clips)
    assert _objects(s3, "uploads") == uploads_before
    print(
        f"store down after {len(records)}/{len(clips)} clips published "
        f"({len(rendered_1)} rendered); run 1 failed {failed_after:.1f} s later; "
        f"run 2 rendered {len(clips) - len(rendered_1)}"
    )


def test_credentials_never_reach_the_config_or_prefect_parameters() -> None:
    """Endpoint and keys come from the environment: the settings have no place for them."""
    cfg: Config = load_config()
    fields = " ".join(vars(cfg.storage))
    assert not re.search(r"key|secret|token|endpoint|password", fields, re.I)
    from flows.params import CampaignParams

    assert set(CampaignParams.model_fields) == {
        "out", "config", "source", "dask_address", "approve_all"
    }  # fmt: skip


# ------------------------------------------------------------------ the bucket lease


def test_one_writer_per_bucket_output_by_a_conditional_lease(s3: Any, tmp_path: Path) -> None:
    """``If-None-Match: *`` takes the lease, ``If-Match`` renews, releases and takes it over."""
    from processing.state import StateLocked
    from processing.state.lease import LEASE_NAME, bucket_lease

    def output() -> Any:
        return open_output(
            RENDERS, load_config(overrides={"storage": {"staging_dir": str(tmp_path)}})
        )

    with bucket_lease(output(), "first run", 5, 30):
        held = json.loads(s3.get_object(Bucket="renders", Key="2027/" + LEASE_NAME)["Body"].read())
        assert held["command"] == "first run" and held["holder"].endswith(f":{os.getpid()}")
        started = time.monotonic()
        with (
            pytest.raises(StateLocked, match=r"in use by .*\(first run, since "),
            bucket_lease(output(), "second run", 1, 30),
        ):
            pass
        assert time.monotonic() - started >= 1
    with bucket_lease(output(), "second run", 1, 30):  # released: free again
        pass
    assert "Contents" not in s3.list_objects_v2(Bucket="renders", Prefix="2027/" + LEASE_NAME)

    # A holder that crashed (stopped renewing) is taken over once its lease expires,
    # and learns it lost the lease instead of overwriting the new holder's.
    from processing.state.lease import BucketLease

    crashed = BucketLease(output(), "crashed run", 2)
    crashed.acquire(0)
    crashed._stop.set()  # its renewing thread dies with it
    with bucket_lease(output(), "rescue run", 10, 30):
        assert crashed._put(if_match=crashed.etag) is False
        held = json.loads(s3.get_object(Bucket="renders", Key="2027/" + LEASE_NAME)["Body"].read())
        assert held["command"] == "rescue run"


@pytest.mark.slow
def test_a_withdrawal_deletes_every_object_that_showed_the_person(s3: Any, tmp_path: Path) -> None:
    """Consent withdrawn: her clip, master, record, posters and the compilation leave the bucket."""
    _seed(s3, tmp_path / "media", 2)
    config = _config(tmp_path)
    assert reel(["process", UPLOADS, "--out", RENDERS, "--config", str(config), "-q"]) == 0
    assert reel(["compile", "--out", RENDERS, "--config", str(config)]) == 0
    ids = {s["source"]: s["id"] for s in _report(s3)["submissions"]}
    gone = ids["clip1.mp4"]

    def naming(name: bytes) -> list[str]:
        return [k for k in _objects(s3, "renders", "2027/") if name in _get(s3, k)]

    def showing(sid: str) -> list[str]:
        return [k for k in _objects(s3, "renders", "2027/") if sid in k]

    assert naming(b"Supporter 1") and showing(gone)
    body = json.dumps({"name": "Supporter 1", "consent": False}).encode()
    s3.put_object(Bucket="uploads", Key="2027/clip1.json", Body=body)
    assert reel(["process", UPLOADS, "--out", RENDERS, "--config", str(config), "-q"]) == 0

    # The report keeps her entry for staff (withdrawn, no output); nothing else shows her.
    assert [k for k in naming(b"Supporter 1") if not k.endswith("report.json")] == []
    assert showing(gone) == []
    [entry] = [s for s in _report(s3)["submissions"] if s["id"] == gone]
    assert (entry["code"], entry["output"]) == ("consent_withdrawn", None)
    assert naming(b"Supporter 0"), "the other contributor is still published"


@pytest.mark.slow
def test_the_review_app_serves_a_bucket_output(s3: Any, tmp_path: Path) -> None:
    """Editors review an s3:// output: clips by presigned link, decisions saved in the bucket."""
    from playwright.sync_api import sync_playwright

    from processing.web import accounts
    from tests import reviewapp as rv

    _seed(s3, tmp_path / "media", 2)
    config = _config(tmp_path)
    assert reel(["process", UPLOADS, "--out", RENDERS, "--config", str(config), "-q"]) == 0
    first, second = sorted(s["id"] for s in _report(s3)["submissions"])
    users = tmp_path / "editors.json"
    accounts.add_editor(users, "ada", rv.PASSWORDS["ada"], rv.NAMES["ada"])
    staged = open_output(RENDERS, load_config(config)).root
    with (
        rv.serve(staged, users, uri=RENDERS, cfg=load_config(config)) as app,
        sync_playwright() as p,
    ):
        browser = p.chromium.launch(executable_path=str(rv.CHROMIUM), args=rv.CHROMIUM_ARGS)
        context, page = rv.sign_in(browser, app, "ada", rv.DESKTOP)
        # A clip is a short-lived presigned link to the bucket, which answers a range request.
        media = page.request.get(f"{app.url}/media/clips/{first}.mp4", max_redirects=0)
        assert media.status == 302, media.status
        link = media.headers["location"]
        assert link.startswith(os.environ["AWS_ENDPOINT_URL"]) and "Signature=" in link, link
        part = page.request.get(link, headers={"Range": "bytes=0-99"})
        assert part.status == 206 and part.body() == _get(s3, f"2027/clips/{first}.mp4")[:100]
        outside = page.request.get(f"{app.url}/media/report.json/../../uploads", max_redirects=0)
        assert outside.status == 404
        # A decision is saved at once in the bucket's campaign state, with who.
        page.click(f"#c-{second} button[data-act=reject]")
        rv.saved(page, "Rejected")
        page.click(f"#c-{first} button[data-act=approve]")
        rv.saved(page, "number")
        stored = json.loads(_get(s3, "2027/decisions.json"))
        saved = stored["current"]
        assert saved["decisions"] == {first: "approved", second: "rejected"}, saved
        assert saved["order"] == [first] and saved["applied_by"] == rv.NAMES["ada"], saved
        assert len(stored["history"]) == 2, "every click is one recorded change"
        assert page.problems == []  # type: ignore[attr-defined]
        context.close()
        browser.close()
