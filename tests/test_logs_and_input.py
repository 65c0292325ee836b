"""Logs carry no identifying metadata; hostile sidecars, decisions and folder layouts stop nothing.

Issue 12, items 6 and 7, met as a user meets them: real uploads carrying GPS,
device and artist tags go through ``reel process`` into a folder and into a
bucket (moto's S3 server process, as in ``tests/test_s3.py``), and every byte
that comes out is searched for those tags. Hostile sidecars and decisions files
go through the same entry points staff use.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import mediagen as mg
from flows.cli import main as reel
from processing import runner
from tests.test_s3 import s3, s3_server  # noqa: F401  (fixtures: the moto server)

REEL = Path(sys.executable).with_name("reel")

ARTIST = "Zarema Testova"
#: What the generated uploads carry and nothing we write may contain.
NEEDLES = {
    "location": mg.LOCATION_TAGS["location"].rstrip("/"),
    "ISO 6709 location": mg.LOCATION_TAGS["com.apple.quicktime.location.ISO6709"].rstrip("/"),
    "make": mg.LOCATION_TAGS["make"],
    "model": mg.LOCATION_TAGS["model"],
    "artist": ARTIST,
    "title": "Courtyard on Lenin street",
}
#: Small output frames: these tests are about what is written, not the picture.
CAMPAIGN = '[output]\nwidth = 640\nheight = 360\nx264_preset = "veryfast"\n'


def _config(folder: Path, storage: str = "") -> Path:
    path = folder / "campaign.toml"
    text = CAMPAIGN + f'[storage]\nstaging_dir = "{folder / "staging"}"\n{storage}'
    path.write_text(text, "utf-8")
    return path


def _leaks(blobs: dict[str, bytes]) -> list[str]:
    """``"<where>: <which tag>"`` for every blob holding one of :data:`NEEDLES`."""
    return [
        f"{where}: {what}"
        for where, data in blobs.items()
        for what, needle in NEEDLES.items()
        if needle.encode() in data
    ]


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _bucket(client: Any, bucket: str) -> dict[str, bytes]:
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return {k: client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


# ------------------------------------------------------------------ item 6: logs


@pytest.fixture(scope="module")
def tagged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Uploads as phones and editing apps leave them: GPS, device, artist and title tags.

    ``damaged.mov`` is ``located.mov`` with its media data corrupted: it is
    rejected after ffmpeg printed its tags, which is when a log matters most.
    """
    up = tmp_path_factory.mktemp("tagged")
    mg.make_with_location_tags(up / "located.mov")
    (up / "located.json").write_text('{"name": "Lena", "consent": true}', "utf-8")
    tags = {"artist": ARTIST, "title": NEEDLES["title"]}
    mg.make_clip(up / "artist.mp4", duration=2, size=(320, 240), tags=tags)
    mg.make_bitflipped(up / "damaged.mov", up / "located.mov", seed=3, count=2000)
    return up


def test_the_uploads_really_carry_the_tags(tagged: Path) -> None:
    found = {leak.split(": ", 1)[1] for leak in _leaks(_tree(tagged))}
    assert found == set(NEEDLES)
    for name in ("located.mov", "artist.mp4", "damaged.mov"):
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "format_tags", "-of", "json", name],
            cwd=tagged, capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert json.loads(probe.stdout)["format"]["tags"], name


@pytest.fixture(scope="module")
def local_run(tagged: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``reel -v process`` of the tagged uploads into a folder; returns the folder."""
    work = tmp_path_factory.mktemp("local-run")
    out = work / "out"
    config = str(_config(work))
    assert reel(["-v", "process", str(tagged), "--out", str(out), "--config", config, "-q"]) == 0
    return out


def _report(out: Path) -> dict[str, dict[str, Any]]:
    report = json.loads((out / "report.json").read_text("utf-8"))
    return {s["source"]: s for s in report["submissions"]}


def test_no_byte_under_out_holds_a_tag(local_run: Path) -> None:
    subs = _report(local_run)
    assert {k: s["status"] for k, s in subs.items()} == {
        "located.mov": "accepted",
        "artist.mp4": "excluded",  # no consent in a sidecar: rendered for review only
        "damaged.mov": "rejected",
    }
    tree = _tree(local_run)
    logs = [k for k in tree if k.startswith("logs/")]
    assert len(logs) == 3, tree.keys()
    for name in logs:  # the logs are not empty: ffmpeg's description of each input is kept
        text = tree[name].decode()
        assert "Input #0" in text and "Stream #0:0" in text and "Metadata:" in text, name
    assert _leaks(tree) == []


def test_a_rejected_upload_still_has_a_useful_log(local_run: Path) -> None:
    entry = _report(local_run)["damaged.mov"]
    assert entry["code"] == "corrupt"
    log = (local_run / "logs" / f"{entry['id']}.log").read_text("utf-8")
    assert f"rejected: {entry['reason']}" in log
    assert "Video: h264" in log and "Duration: 00:00:02.00" in log
    assert "Error while decoding stream" in log or "error while decoding MB" in log
    assert "[exit 0]" in log


def test_the_logged_commands_hold_no_tag(
    tagged: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``-metadata`` values never reach a log, nor does a tag split over several lines."""
    caplog.set_level("DEBUG", logger="processing.runner")
    multiline = tmp_path / "multiline.mkv"
    log_file = tmp_path / "run.log"
    runner.run(
        ["-i", runner.input_path(tagged / "located.mov"), "-t", "0.2",
         "-metadata", f"artist={ARTIST}", "-metadata:s:v:0", f"title={NEEDLES['title']}",
         "-metadata", f"comment=first line\n{NEEDLES['make']} {NEEDLES['model']}\r{ARTIST}",
         "-y", str(multiline)],
        log_file=log_file,
    )  # fmt: skip
    runner.run(
        ["-loglevel", "level+info", "-i", runner.input_path(multiline), "-f", "null", "-"],
        log_file=log_file,
    )
    written = log_file.read_bytes()
    assert written.count(b"-metadata") == 3 and written.count(b"Input #0") == 2
    assert _leaks({"log": written, "python log": caplog.text.encode()}) == []
    assert "first line" not in written.decode()


def test_a_tag_line_split_by_another_thread_does_not_leak() -> None:
    """What ffmpeg prints when a decoder thread logs in the middle of the output dump."""
    stderr = (
        "[info] Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'file:/u/a.mov':\n"
        "[info]   Metadata:\n"
        f"[info]     artist          : {ARTIST}\n"
        f"[info]     com.apple.quicktime.location.ISO6709: {NEEDLES['ISO 6709 location']}/\n"
        "[info]   Duration: 00:00:02.00, start: 0.000000, bitrate: 894 kb/s\n"
        "[info] Output #0, null, to 'pipe:':\n"
        "[info]   Metadata:\n"
        "[h264 @ 0x55dc2fafc840] [error] error while decoding MB 5 0\n"
        "[info]     artist          : [aac @ 0x5] [error] invalid band type\n"
        f"[info] {ARTIST}\n"
        f"[info]     com.apple.quicktime.location.ISO6709: {NEEDLES['ISO 6709 location']}/\n"
        "[info]   Stream #0:0: Video: wrapped_avframe, yuv420p, 320x240\n"
    )
    kept = runner.redact_tags(stderr)
    assert _leaks({"redacted": kept.encode()}) == []
    # A message printed whole between two tag lines is kept; one inside a tag line goes with it.
    assert "error while decoding MB 5 0" in kept and "invalid band type" not in kept
    assert "Duration: 00:00:02.00" in kept and "Stream #0:0: Video" in kept


@pytest.fixture
def bucket_run(tagged: Path, s3: Any, tmp_path: Path) -> tuple[Path, Any]:  # noqa: F811
    """``reel process`` of the tagged uploads into ``s3://renders/2027/``."""
    config = _config(tmp_path)
    out = "s3://renders/2027/"
    assert reel(["process", str(tagged), "--out", out, "--config", str(config), "-q"]) == 0
    return tmp_path, s3


def test_no_object_in_the_bucket_holds_a_tag_and_logs_stay_home(
    bucket_run: tuple[Path, Any],
) -> None:
    work, client = bucket_run
    objects = _bucket(client, "renders")
    assert "2027/report.json" in objects and any(k.endswith(".mp4") for k in objects)
    assert [k for k in objects if "/logs/" in k] == []
    staged = _tree(work / "staging")
    assert sum("/logs/" in k for k in staged) == 3, staged.keys()  # kept on the worker
    assert _leaks(objects) == []
    assert _leaks(staged) == []


def test_publish_logs_sends_the_logs_and_they_are_clean(
    tagged: Path, bucket_run: tuple[Path, Any]
) -> None:
    work, client = bucket_run
    config = _config(work, "publish_logs = true\n")  # the same staging folder: nothing re-encoded
    args = ["process", str(tagged), "--out", "s3://renders/2027/", "--config", str(config), "-q"]
    assert reel(args) == 0
    objects = _bucket(client, "renders")
    logs = {k: v for k, v in objects.items() if "/logs/" in k}
    assert len(logs) == 3 and all(b"Input #0" in v for v in logs.values())
    assert _leaks(objects) == []


# ------------------------------------------------------------------ item 7: hostile input

#: Sidecars that once stopped the batch or could not be written back, with the warning each gets.
HOSTILE_SIDECARS = {
    "nested": (b"[" * 10_000, "nested deeper than"),
    "long-number": (b'{"name": "A", "consent": ' + b"7" * 5000 + b"}", "a number too long"),
    "latin1": ('{"name": "Zoë"}'.encode("latin-1"), "not UTF-8"),
}


@pytest.fixture(scope="module")
def hostile_batch(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A batch where three of five sidecars are hostile; ``reel process`` run as a subprocess."""
    root = tmp_path_factory.mktemp("hostile-sidecars")
    up, out = root / "uploads", root / "out"
    up.mkdir()
    for i, (stem, (raw, _)) in enumerate(HOSTILE_SIDECARS.items()):
        mg.make_clip(up / f"{stem}.mp4", duration=2, size=(160, 120), lufs=-20 - i)
        (up / f"{stem}.json").write_bytes(raw)
    mg.make_clip(up / "surrogate.mp4", duration=2, size=(160, 120), lufs=-26)
    (up / "surrogate.json").write_text('{"name": "\\ud800Ali", "consent": true}', "ascii")
    mg.make_clip(up / "fine.mp4", duration=2, size=(160, 120), lufs=-27)
    (up / "fine.json").write_text('{"name": "Maria", "consent": true}', "utf-8")
    config = _config(root)
    done = subprocess.run(
        [str(REEL), "process", str(up), "--out", str(out), "--config", str(config), "-q"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return up, out


def test_a_hostile_sidecar_costs_only_its_own_warning(hostile_batch: tuple[Path, Path]) -> None:
    _, out = hostile_batch
    subs = _report(out)
    assert set(subs) == {f"{s}.mp4" for s in (*HOSTILE_SIDECARS, "surrogate", "fine")}
    for key, sub in subs.items():  # every clip rendered, however bad its sidecar
        assert sub["output"] and (out / sub["output"]).is_file(), key
    for stem, (_, warning) in HOSTILE_SIDECARS.items():
        sub = subs[f"{stem}.mp4"]
        assert any(w.startswith("sidecar ignored:") and warning in w for w in sub["warnings"]), sub
        assert sub["name"] is None and sub["consent"] is None
        assert sub["anonymize"] is True, "an unreadable sidecar is read as the most protective"
    assert subs["surrogate.mp4"]["name"] == "Ali" and subs["surrogate.mp4"]["consent"] is True
    assert subs["fine.mp4"]["name"] == "Maria" and subs["fine.mp4"]["warnings"] == []


def _apply(out: Path, decisions: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REEL), "review", "apply", str(decisions), "--out", str(out), "--by", "Sam"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"[" * 10_000, "nested deeper than"),
        (b'{"version": ' + b"[" * 500 + b"]" * 500 + b"}", "nested deeper than"),
        (b'{"version": 1, "editor": "\\udc00"}', "unpaired surrogate"),
        (b'{"version": ' + b"9" * 5000 + b"}", "a number too long"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b" " * (5 << 20), "over 4194304 bytes"),
    ],
    ids=["nested", "nested-500", "surrogate", "long-number", "utf16", "huge"],
)
def test_an_unusable_decisions_file_is_refused_in_one_line(
    hostile_batch: tuple[Path, Path], tmp_path: Path, raw: bytes, reason: str
) -> None:
    _, out = hostile_batch
    before = _tree(out)
    bad = tmp_path / "decisions.json"
    bad.write_bytes(raw)
    done = _apply(out, bad)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith("reel: error: ") and reason in done.stderr
    # Nothing recorded (the lock file only says who held the folder last).
    lock = ".work/lock"
    assert {k: v for k, v in _tree(out).items() if k != lock} == {
        k: v for k, v in before.items() if k != lock
    }


def test_decisions_with_wrong_types_are_refused_with_reasons(
    hostile_batch: tuple[Path, Path], tmp_path: Path
) -> None:
    _, out = hostile_batch
    bad = tmp_path / "decisions.json"
    wrong = {"version": "1" * 300, "editor": [], "decided_at": {}, "order": [1], "decisions": []}
    bad.write_text(json.dumps(wrong), "utf-8")
    done = _apply(out, bad)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "version must be 1, got '1111" in done.stderr and "1" * 100 not in done.stderr
    assert "editor must be a string" in done.stderr and "order must be a list" in done.stderr


def test_a_damaged_recorded_decisions_file_is_one_line(hostile_batch: tuple[Path, Path]) -> None:
    _, out = hostile_batch
    root = out.parent / "damaged-copy"
    shutil.copytree(out, root, symlinks=True)
    (root / "decisions.json").write_bytes(b'{"current": ' + b"[" * 10_000)
    built = subprocess.run(
        [str(REEL), "review", "build", "--out", str(root)], capture_output=True, text=True
    )  # the page is still built, without decisions, and says why
    assert built.returncode == 0 and "Traceback" not in built.stderr, built.stderr
    assert "ignoring decisions" in built.stderr and "nested deeper" in built.stderr
    err = _refused("compile", "--out", str(root))
    assert "decisions.json is damaged" in err and "nested deeper" in err


# ------------------------------------------------------------------ item 7: OUT and SOURCE


@pytest.fixture
def uploads(tmp_path: Path) -> Iterator[Path]:
    up = tmp_path / "uploads"
    up.mkdir()
    mg.make_clip(up / "a.mp4", duration=2, size=(160, 120))
    yield up


def _refused(*args: str) -> str:
    done = subprocess.run([str(REEL), *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    return done.stderr


@pytest.mark.parametrize("command", ["process", "run"])
def test_an_out_inside_the_uploads_is_refused(uploads: Path, command: str) -> None:
    before = _tree(uploads)
    extra = ["--approve-all"] if command == "run" else []
    err = _refused(command, str(uploads), "--out", str(uploads / "renders"), *extra)
    assert "is inside the uploads folder" in err
    err = _refused(command, str(uploads), "--out", str(uploads), *extra)
    assert "is the uploads folder" in err
    assert _tree(uploads) == before and not (uploads / "renders").exists()


@pytest.mark.parametrize("command", ["process", "run"])
def test_uploads_inside_the_out_are_refused(uploads: Path, tmp_path: Path, command: str) -> None:
    extra = ["--approve-all"] if command == "run" else []
    err = _refused(command, str(uploads), "--out", str(tmp_path), *extra)
    assert "the uploads folder" in err and "is inside the output folder" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["uploads"]  # nothing written


def test_a_link_into_the_uploads_is_seen_through(uploads: Path, tmp_path: Path) -> None:
    (uploads / "renders").mkdir()
    os.symlink(uploads / "renders", tmp_path / "looks-elsewhere")
    err = _refused("process", str(uploads), "--out", str(tmp_path / "looks-elsewhere"))
    assert "is inside the uploads folder" in err
    assert list((uploads / "renders").iterdir()) == []


def test_a_failed_scrub_check_names_the_tags_without_their_values(tagged: Path) -> None:
    """What a rejection (report and log) says if a tag ever survived an encode."""
    from processing.probe import probe
    from processing.verify import scrub_problems

    names = scrub_problems(probe(tagged / "located.mov"), values=False)
    assert {"location", "make", "model"} <= {n.lower() for n in names}
    assert _leaks({"reason": " ".join(names).encode()}) == []


def test_a_sidecar_that_cannot_be_read_is_the_most_protective(tmp_path: Path) -> None:
    """Root reads every file, so the refusal comes from a source whose disk says no."""
    from processing.clip.intake import identify
    from processing.config import load_config
    from processing.storage import LocalSource

    class Unreadable(LocalSource):
        def read_sidecar(self, upload: object, max_bytes: int) -> bytes | None:
            raise PermissionError(13, "Permission denied")

    up = tmp_path / "up"
    up.mkdir()
    mg.make_clip(up / "a.mp4", duration=1, size=(160, 120))
    (up / "a.json").write_text('{"consent": true, "name": "Visible"}')
    cfg = load_config()
    source = Unreadable(up, ignore=cfg.ingest.ignore)
    [sub], refused = identify(source, source.list_uploads(), cfg, tmp_path)
    assert refused == []
    assert sub.sidecar.anonymize is True and sub.sidecar.consent is None
    assert sub.sidecar.name is None
    assert any("could not be read (Permission denied)" in w for w in sub.warnings)
