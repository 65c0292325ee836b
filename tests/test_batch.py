"""The batch: every bad upload rejected with its reason, nothing lost, nothing changed."""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

import mediagen as mg
from processing import runner
from processing.config import load_config
from processing.errors import FFmpegInterrupted
from processing.pipeline import identify, process_batch, process_safely
from processing.storage import LocalSource
from tests import measure
from tests.conftest import BAD, GOOD, Batch, tree_hashes

REQUIRED_FIELDS = {"id", "source", "status", "reason", "output", "input", "output_i", "output_tp"}


@pytest.mark.parametrize(("key", "code"), [(name, code) for name, _, code in BAD])
def test_bad_upload_is_rejected_with_a_reason(batch: Batch, key: str, code: str) -> None:
    entry = batch.entries[key]
    assert (entry.status, entry.code) == ("rejected", code), entry.reason
    assert entry.reason and entry.reason[0].isupper() and len(entry.reason) > 20
    assert entry.output is None
    assert not list((batch.out / "clips").glob(f"{entry.id}.*"))


def test_every_good_upload_is_rendered_and_only_consented_ones_accepted(batch: Batch) -> None:
    for name, _, sidecar in GOOD:
        entry = batch.entries[name]
        consented = bool(sidecar and sidecar.get("consent") is True)
        assert entry.status == ("accepted" if consented else "excluded"), entry.reason
        assert entry.output and (batch.out / entry.output).is_file()
        if not consented:
            assert entry.code == "no_consent" and "consent" in (entry.reason or "")


def test_symlink_out_of_the_source_is_not_followed(batch: Batch) -> None:
    entry = batch.entries["escape.mp4"]
    assert (entry.status, entry.code) == ("rejected", "not_a_file")
    assert "symbolic link" in (entry.reason or "")


def test_originals_are_never_modified(batch: Batch) -> None:
    assert tree_hashes(batch.uploads) == batch.hashes_before


def test_no_partial_files_are_left_anywhere(batch: Batch) -> None:
    leftovers = [p for p in batch.out.rglob("*") if p.name.endswith(".part")]
    assert leftovers == []


def test_same_bytes_twice_are_one_submission(batch: Batch) -> None:
    assert batch.entries["mono.mp4"].duplicates == ["mono-again.mp4"]
    assert "mono-again.mp4" not in batch.entries


def test_ids_are_derived_from_content(batch: Batch) -> None:
    for key, entry in batch.entries.items():
        if entry.code == "not_a_file":
            continue
        digest = hashlib.sha256((batch.uploads / key).read_bytes()).hexdigest()
        assert entry.id == digest[:16]


def test_invalid_sidecar_warns_and_the_clip_is_still_processed(batch: Batch) -> None:
    entry = batch.entries["broken-sidecar.mp4"]
    assert entry.output is not None
    assert any("sidecar ignored" in w for w in entry.warnings)
    # It may have asked for anonymity or withheld consent: the most protective reading.
    assert entry.anonymize and entry.anonymization is not None
    assert entry.status == "excluded" and entry.code == "no_consent"


def test_report_has_one_complete_entry_per_submission(batch: Batch) -> None:
    report = json.loads((batch.out / "report.json").read_text("utf-8"))
    subs = report["submissions"]
    assert len(subs) == len(batch.entries) == len({s["id"] for s in subs})
    for s in subs:
        assert s.keys() >= REQUIRED_FIELDS
        if s["status"] in ("accepted", "excluded"):
            assert (batch.out / s["output"]).is_file()
            assert s["input"]["video"]["width"] > 0
            assert _leaked(batch.uploads / s["source"], batch.out / s["output"]) == []
    counts = report["counts"]
    assert counts["accepted"] + counts["excluded"] == len(GOOD) + 1  # + broken-sidecar.mp4
    assert counts["accepted"] == sum(1 for *_, sc in GOOD if sc and sc.get("consent"))
    sidecar = next(s for s in subs if s["source"] == "landscape.mp4")
    assert (sidecar["name"], sidecar["consent"], sidecar["language"]) == (
        "Айшат из Грозного", True, "ru",
    )  # fmt: skip


#: Tags ffmpeg's MP4 muxer writes into every output by itself.
MUXER_TAGS = {
    "major_brand", "minor_version", "compatible_brands", "encoder", "handler_name", "vendor_id",
    "language",
}  # fmt: skip


def _leaked(upload: Path, output: Path) -> list[str]:
    """The upload's tags found in the output: as its tags, or anywhere in its bytes."""
    own = measure.tags(output)
    foreign = sorted({k.partition(":")[2] or k for k in own} - MUXER_TAGS)
    data = output.read_bytes()
    own_values = set(own.values())
    found = [
        k for k, v in measure.tags(upload).items()
        if len(v) >= 5 and v not in own_values and v.encode() in data
    ]  # fmt: skip
    return foreign + found


def test_a_second_run_encodes_nothing(batch: Batch, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(batch.out, out)
    clips = {p: p.stat().st_mtime_ns for p in (out / "clips").glob("*.mp4")}
    started = time.monotonic()
    entries = process_batch(LocalSource(batch.uploads, batch.cfg.ingest.ignore), out, batch.cfg)
    rendered = [e for e in entries if e.output]
    assert len(rendered) > 10 and all(e.cached for e in rendered)
    assert {p: p.stat().st_mtime_ns for p in clips} == clips
    assert time.monotonic() - started < 60


def _one_clip_source(tmp_path: Path) -> Path:
    src = tmp_path / "in"
    src.mkdir()
    mg.make_clip(src / "clip.mp4", duration=2, size=(640, 360))
    return src


def test_changing_a_caption_setting_re_encodes(tmp_path: Path) -> None:
    src = _one_clip_source(tmp_path)
    out = tmp_path / "out"
    first = process_batch(LocalSource(src), out, load_config())[0]
    changed = load_config(overrides={"campaign": {"hashtag": "#NeverAgain"}})
    second = process_batch(LocalSource(src), out, changed)[0]
    assert first.output and second.output
    assert not second.cached and second.render_key != first.render_key


def test_only_a_render_takes_an_encode_slot(tmp_path: Path) -> None:
    source = LocalSource(_one_clip_source(tmp_path))
    out, work, cfg = tmp_path / "out", tmp_path / "work", load_config()
    subs, _ = identify(source, source.list_uploads(), cfg, work)
    taken: list[str] = []

    @contextlib.contextmanager
    def slot() -> Iterator[None]:
        taken.append("slot")
        yield

    first = process_safely(subs[0], source, out, cfg, work, slot=slot)
    again = process_safely(subs[0], source, out, cfg, work, slot=slot)
    assert first.output and not first.cached
    assert again.cached and again.output == first.output
    assert taken == ["slot"]  # the re-run reused the clip without waiting for a slot


def test_a_stuck_encode_is_stopped_and_rejected_as_timed_out(tmp_path: Path) -> None:
    src = _one_clip_source(tmp_path)
    cfg = load_config(overrides={"limits": {"timeout_base_seconds": 0.05, "timeout_factor": 0.0}})
    entry = process_batch(LocalSource(src), tmp_path / "out", cfg)[0]
    assert (entry.status, entry.code) == ("rejected", "timeout")
    assert "too long" in (entry.reason or "")


def test_an_encode_killed_midway_leaves_nothing_at_the_final_path(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    mg.make_clip(src / "clip.mp4", duration=5, size=(1280, 720))
    out = tmp_path / "out"
    killed = threading.Event()

    def killer() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed.is_set():
            # Kill only the encode (the one writing a .part file), not the health check.
            if list((out / "clips").glob(".*.part")) and runner.kill_all_children():
                killed.set()
            time.sleep(0.02)

    t = threading.Thread(target=killer)
    t.start()
    # A killed ffmpeg is an interrupted run (run again), not a bad upload to reject.
    with pytest.raises(FFmpegInterrupted, match="SIGKILL"):
        process_batch(LocalSource(src), out, load_config())
    killed.set()
    t.join()
    assert list((out / "clips").iterdir()) == []
    # The next run completes the clip.
    again = process_batch(LocalSource(src), out, load_config())[0]
    assert again.output and (out / again.output).is_file()


def _reel(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("reel")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=300)


def test_cli_processes_a_folder_and_prints_a_summary(tmp_path: Path) -> None:
    src = _one_clip_source(tmp_path)
    mg.make_empty(src / "empty.mp4")
    result = _reel("process", str(src), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "1 excluded" in result.stdout and "1 rejected" in result.stdout
    assert "empty" in result.stderr  # the progress bar's rejection line


def test_cli_explains_a_missing_source_folder(tmp_path: Path) -> None:
    result = _reel("process", str(tmp_path / "nope"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "does not exist" in result.stderr


def test_cli_config_prints_valid_defaults_and_checks_files(tmp_path: Path) -> None:
    result = _reel("config")
    assert tomllib.loads(result.stdout)["campaign"]["hashtag"] == "#100forJustice"
    bad = tmp_path / "bad.toml"
    bad.write_text("[output]\nwidht = 1280\n", "utf-8")
    result = _reel("config", "--check", str(bad))
    assert result.returncode == 2 and "output.widht" in result.stderr
