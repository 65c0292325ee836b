"""``report.json`` read into typed values: one reader, one error, a bad entry left out with why.

No media: reports are written by :func:`processing.report.write_report` (the
pipeline's writer) or by hand where a hostile or damaged file is the point.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from processing import quality
from processing.config import load_config
from processing.report import Entry, Report, read_report, write_report
from processing.review import render_review
from processing.state import StateError

GOOD = {
    "id": "a" * 16,
    "source": "ada.mp4",
    "status": "rejected",
    "code": "corrupt",
    "reason": "not a video",
    "duration": 2,
    "warnings": ["w1"],
}


def _write(out: Path, report: object) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report), "utf-8")


def test_the_writers_entries_come_back_equal(tmp_path: Path) -> None:
    entries = [
        Entry(id="a" * 16, source="ada.mp4", status="accepted", output="clips/a.mp4",
              duration=2.5, consent=True, flags={"dark": {"raised": False, "value": 0.4}},
              copies=[{"source": "ada.mp4"}], warnings=["quiet"], anonymize=True),
        Entry(id="b" * 16, source="bo.mov", status="rejected", code="corrupt", reason="bad"),
    ]  # fmt: skip
    write_report(tmp_path, "uploads/", load_config(), entries)
    report = read_report(tmp_path)
    assert report.entries == tuple(entries)
    assert (report.source, report.frame, report.skipped) == ("uploads/", (1920, 1080), ())
    assert report.generated_at.startswith("20")


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ([1, 2], "not a JSON object"),
        ({"source": "x.mp4", "status": "accepted"}, "no id"),
        ({"id": "", "status": "accepted"}, "no id"),
        ({**GOOD, "id": "c" * 16, "duration": "long"}, "duration is not"),
        ({**GOOD, "id": "c" * 16, "anonymize": 1}, "anonymize is not"),
        ({**GOOD, "id": "c" * 16, "consent": "yes"}, "consent is not"),
        ({**GOOD, "id": "c" * 16, "warnings": ["ok", 3]}, "warnings is not"),
        ({**GOOD, "id": "c" * 16, "flags": ["dark"]}, "flags is not"),
        ({**GOOD, "id": "c" * 16, "output_i": True}, "output_i is not"),
    ],
)
def test_a_malformed_entry_is_left_out_with_its_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, bad: object, why: str
) -> None:
    _write(tmp_path, {"source": "up/", "submissions": [bad, GOOD, {**GOOD, "future": 1}]})
    with caplog.at_level(logging.WARNING, "processing.report"):
        report = read_report(tmp_path)
    assert [e.id for e in report.entries] == [GOOD["id"], GOOD["id"]]
    assert report.entries[0].duration == 2 and report.entries[0].warnings == ["w1"]
    [reason] = report.skipped
    assert reason.startswith("submission 1: ") and why in reason
    assert [r.getMessage() for r in caplog.records if r.name == "processing.report"] == [
        f"{tmp_path / 'report.json'}: left out {reason}"
    ]


def test_a_hand_written_entry_without_source_or_status_is_read(tmp_path: Path) -> None:
    _write(tmp_path, {"submissions": [{"id": "a" * 16, "output": "clips/a.mp4"}]})
    [entry] = read_report(tmp_path).entries
    assert (entry.id, entry.source, entry.status, entry.output) == ("a" * 16, "", "", "clips/a.mp4")


@pytest.mark.parametrize(
    ("content", "why"),
    [(None, "has no report.json"), ("{not json", "cannot read"), ("[1]", "not a JSON object")],
)
def test_an_unreadable_report_is_one_error(tmp_path: Path, content: str | None, why: str) -> None:
    if content is not None:
        (tmp_path / "report.json").write_text(content, "utf-8")
    with pytest.raises(StateError, match=why):
        read_report(tmp_path)


def test_the_review_page_shows_the_good_entries_of_a_damaged_report(tmp_path: Path) -> None:
    """A wrong-typed field used to reach ``float()`` in the page's card and stop the build."""
    bad = {**GOOD, "id": "c" * 16, "source": "cy.mp4", "duration": "two seconds"}
    _write(tmp_path, {"source": "up/", "submissions": [bad, GOOD]})
    page = render_review(tmp_path)
    assert f'id="r-{GOOD["id"]}"' in page and "ada.mp4" in page and "2.0 s" in page
    assert "c" * 16 not in page and "cy.mp4" not in page


def test_report_is_frozen(tmp_path: Path) -> None:
    _write(tmp_path, {"submissions": [GOOD]})
    report = read_report(tmp_path)
    assert isinstance(report, Report)
    with pytest.raises(AttributeError):
        report.entries[0].status = "accepted"  # type: ignore[misc]


def test_duplicate_flags_are_new_entries_and_the_old_ones_stay_as_they_were() -> None:
    q = load_config().quality
    prints = {"fingerprint": [f"{h:016x}" for h in (0x0F0F0F0F0F0F0F0F, 0xFFFF0000FFFF0000) * 8]}
    dark = {"dark": {"raised": False, "value": 0.4, "threshold": 0.1}}
    a = Entry(id="a" * 16, source="a.mp4", status="accepted", flags=dict(dark), quality=prints)
    b = Entry(id="b" * 16, source="b.mp4", status="accepted", flags=dict(dark), quality=prints)
    c = Entry(id="c" * 16, source="c.mp4", status="rejected")
    marked = quality.mark_duplicates([a, b, c], q)
    assert [e.id for e in marked] == [a.id, b.id, c.id] and marked[2] is c
    assert marked[0].flags is not None and marked[0].flags["duplicate"]["of"] == [b.id]
    assert marked[0].flags["duplicate"]["raised"] and list(marked[0].flags) == ["dark", "duplicate"]
    assert a.flags == dark and b.flags == dark  # what the caller holds is not changed
