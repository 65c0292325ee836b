"""Raw uploads do not live forever: originals go ``upload.keep_originals_days`` after rendering.

One tiny clip is rendered once (module fixture); each test copies the uploads
and the output, moves the record's ``rendered_at`` into the past and runs the
real :func:`process_batch` again.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import mediagen as mg
from processing import retention
from processing.config import Config, load_config
from processing.pipeline import process_batch
from processing.report import Entry
from processing.storage import LocalOutput, LocalSource, open_output, open_source
from processing.storage.base import RETIRED_SUFFIX
from tests import test_s3


@dataclass
class Campaign:
    uploads: Path
    out: Path
    cfg: Config

    def run(self) -> dict[str, Entry]:
        entries = process_batch(LocalSource(self.uploads), self.out, self.cfg)
        return {e.source: e for e in entries}

    def age(self, sid: str, days: float) -> None:
        """Move the clip's render time ``days`` into the past (as if rendered then)."""
        path = self.out / "clips" / f"{sid}.json"
        record = json.loads(path.read_text("utf-8"))
        when = datetime.now(UTC) - timedelta(days=days)
        record["rendered_at"] = when.isoformat(timespec="seconds")
        path.write_text(json.dumps(record), "utf-8")

    def sidecar(self, stem: str, **data: object) -> None:
        (self.uploads / f"{stem}.json").write_text(json.dumps(data), "utf-8")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """Uploads (one good clip, one that is not a video) and the output of one run."""
    root = tmp_path_factory.mktemp("retention")
    uploads, out = root / "uploads", root / "out"
    uploads.mkdir()
    mg.make_clip(uploads / "ada.mp4", duration=2, size=(320, 180))
    (uploads / "ada.json").write_text(json.dumps({"consent": True, "name": "Ada"}), "utf-8")
    (uploads / "notvideo.mp4").write_text("just text, not a video\n", "utf-8")
    (uploads / "notvideo.json").write_text(json.dumps({"consent": True}), "utf-8")
    entries = {e.source: e for e in process_batch(LocalSource(uploads), out, load_config())}
    assert entries["ada.mp4"].status == "accepted"
    assert entries["notvideo.mp4"].status == "rejected"
    return uploads, out, entries["ada.mp4"].id


@pytest.fixture
def campaign(rendered: tuple[Path, Path, str], tmp_path: Path) -> Campaign:
    uploads, out, _ = rendered
    shutil.copytree(uploads, tmp_path / "uploads")  # copy2 keeps mtimes: records still match
    shutil.copytree(out, tmp_path / "out")
    cfg = load_config(overrides={"upload": {"keep_originals_days": 30}})
    return Campaign(tmp_path / "uploads", tmp_path / "out", cfg)


def _retire(c: Campaign, sid: str) -> None:
    c.age(sid, 31)
    c.run()
    assert not (c.uploads / "ada.mp4").exists()


def test_an_old_original_is_deleted_its_sidecar_kept_and_the_clip_stays(
    campaign: Campaign, rendered: tuple[Path, Path, str], caplog: pytest.LogCaptureFixture
) -> None:
    sid = rendered[2]
    sidecar = (campaign.uploads / "ada.json").read_bytes()
    campaign.run()  # rendered just now: kept
    assert (campaign.uploads / "ada.mp4").is_file()

    campaign.age(sid, 31)
    caplog.clear()
    entries = campaign.run()
    assert not (campaign.uploads / "ada.mp4").exists()
    assert (campaign.uploads / "ada.json").read_bytes() == sidecar
    marker = json.loads((campaign.uploads / f"ada.mp4{RETIRED_SUFFIX}").read_text("utf-8"))
    assert marker["id"] == sid and "Ada" not in json.dumps(marker)
    assert entries["ada.mp4"].status == "accepted" and entries["ada.mp4"].original_deleted
    said = [r.getMessage() for r in caplog.records if r.name == "processing.retention"]
    assert any(sid in m for m in said) and not any("ada" in m.lower() for m in said)

    clip = campaign.out / "clips" / f"{sid}.mp4"
    before = clip.stat().st_mtime_ns
    again = campaign.run()["ada.mp4"]  # the next run reuses the render
    assert (again.status, again.cached, again.original_deleted) == ("accepted", True, True)
    assert again.output == f"clips/{sid}.mp4" and clip.stat().st_mtime_ns == before
    report = json.loads((campaign.out / "report.json").read_text("utf-8"))
    assert [e["status"] for e in report["submissions"] if e["id"] == sid] == ["accepted"]


def test_anonymity_asked_after_deletion_excludes_the_clip_with_the_reason(
    campaign: Campaign, rendered: tuple[Path, Path, str]
) -> None:
    sid = rendered[2]
    _retire(campaign, sid)
    campaign.sidecar("ada", consent=True, name="Ada", anonymize=True)
    entry = campaign.run()["ada.mp4"]
    assert (entry.status, entry.code, entry.output) == ("excluded", "original_deleted", None)
    assert entry.reason and "anonymity" in entry.reason and "upload the video again" in entry.reason
    assert not (campaign.out / "clips" / f"{sid}.mp4").exists()  # it showed the face


def test_a_withdrawal_after_deletion_deletes_every_render(
    campaign: Campaign, rendered: tuple[Path, Path, str]
) -> None:
    sid = rendered[2]
    _retire(campaign, sid)
    campaign.sidecar("ada", consent=False, name="Ada")
    entry = campaign.run()["ada.mp4"]
    assert (entry.status, entry.code) == ("excluded", "consent_withdrawn")
    left = sorted(p.name for p in (campaign.out / "clips").iterdir() if p.stem == sid)
    assert left == []


def test_unrendered_rejected_recent_or_kept_forever_originals_stay(
    campaign: Campaign, rendered: tuple[Path, Path, str], caplog: pytest.LogCaptureFixture
) -> None:
    sid = rendered[2]
    campaign.age(sid, 29)  # not yet due
    assert campaign.run()["notvideo.mp4"].status == "rejected"
    assert (campaign.uploads / "ada.mp4").is_file()
    assert (campaign.uploads / "notvideo.mp4").is_file()

    forever = load_config(overrides={"upload": {"keep_originals_days": 0}})
    campaign.cfg = forever
    campaign.age(sid, 3650)
    campaign.run()
    assert (campaign.uploads / "ada.mp4").is_file()
    assert not list(campaign.uploads.glob(f"*{RETIRED_SUFFIX}"))
    with caplog.at_level(logging.INFO):
        assert not [r for r in caplog.records if r.name == "processing.retention"]


def test_a_file_replaced_under_the_same_name_is_not_deleted(
    campaign: Campaign, rendered: tuple[Path, Path, str]
) -> None:
    sid = rendered[2]
    campaign.age(sid, 31)
    report = json.loads((campaign.out / "report.json").read_text("utf-8"))
    entries = [Entry.from_dict(e) for e in report["submissions"]]
    original = (campaign.uploads / "ada.mp4").read_bytes()
    (campaign.uploads / "ada.mp4").write_bytes(original[:-1] + b"!")  # a new upload, same name
    source, dest = LocalSource(campaign.uploads), LocalOutput(campaign.out)
    assert retention.sweep(source, dest, campaign.cfg, entries) == []
    assert (campaign.uploads / "ada.mp4").is_file()

    (campaign.uploads / "ada.mp4").write_bytes(original)
    assert retention.sweep(source, dest, campaign.cfg, entries) == [sid]
    assert not (campaign.uploads / "ada.mp4").exists()


def test_the_process_flow_sweeps_and_its_cache_keeps_the_clip(
    campaign: Campaign, rendered: tuple[Path, Path, str], prefect_server: str
) -> None:
    from flows.campaign import process_submissions
    from flows.params import BatchParams

    sid = rendered[2]
    params = BatchParams(source=str(campaign.uploads), out=str(campaign.out))
    process_submissions(params)  # fills the task cache while the original is there
    campaign.age(sid, 31)
    process_submissions(params)
    assert not (campaign.uploads / "ada.mp4").exists()
    assert (campaign.uploads / "ada.json").is_file()
    for _ in range(2):  # the retired submission, then from the task cache
        entries = {e.source: e for e in process_submissions(params)}
        assert (entries["ada.mp4"].status, entries["ada.mp4"].original_deleted) == (
            "accepted",
            True,
        )
    campaign.sidecar("ada", consent=True, name="Ada", anonymize=True)
    entry = {e.source: e for e in process_submissions(params)}["ada.mp4"]
    assert (entry.status, entry.code) == ("excluded", "original_deleted")


# ------------------------------------------------------------------ s3:// uploads

s3_server = test_s3.s3_server  # the moto server process, started once per session
s3 = test_s3.s3


def test_a_bucket_original_is_deleted_and_served_from_its_render_by_another_worker(
    s3: Any, tmp_path: Path
) -> None:
    test_s3._seed(s3, tmp_path / "media", 1)
    cfg = load_config(test_s3._config(tmp_path))
    source = open_source(test_s3.UPLOADS, ignore=cfg.ingest.ignore, cfg=cfg)
    dest = open_output(test_s3.RENDERS, cfg)
    (first,) = process_batch(source, dest, cfg)
    assert first.status == "accepted" and "2027/clip0.mp4" in test_s3._objects(s3, "uploads")

    staged = Campaign(tmp_path / "unused", dest.root, cfg)
    staged.age(first.id, 31)
    process_batch(source, open_output(test_s3.RENDERS, cfg), cfg)
    left = set(test_s3._objects(s3, "uploads"))
    assert left == {"2027/clip0.json", f"2027/clip0.mp4{RETIRED_SUFFIX}"}

    other = load_config(test_s3._config(tmp_path, staging="other-worker"))
    (again,) = process_batch(source, open_output(test_s3.RENDERS, other), other)
    assert (again.status, again.cached, again.original_deleted) == ("accepted", True, True)
    assert test_s3._report(s3)["submissions"][0]["status"] == "accepted"
