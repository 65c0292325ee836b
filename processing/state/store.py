"""The campaign's files as one owner reads and writes them.

Where the truth lives, for one output (``OUT``):

* ``report.json``: every submission of the last processing run, with what each
  copy of it asked (sidecars), and the last compilation's summary. Readers
  (the review page, the compilation, the flows) get it typed from
  :func:`processing.report.read_report` (one reader, one error: :class:`StateError`),
  which alone reads the document here (:func:`read_report_document`); it is written
  whole by :func:`write_report` and changed in place only by :func:`update_report`,
  which reads it again first.
* ``clips/<id>.json``: one rendered clip's record, trusted only while the clip
  on disk is the file it describes (:func:`record_matches_file`).
* ``decisions.json``: the editors' decisions in force and their history
  (:mod:`processing.decisions` validates them; :func:`write_decisions` stores them).

Every write is atomic (a temporary file, then :func:`os.replace`). A
read-modify-write from two processes is made safe by the campaign lock
(:func:`processing.state.campaign_lock`), which each command holds; the lock
here only orders the threads of one process.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..clip.files import ClipFiles
from ..errors import ReelError
from ..fsutil import write_json

REPORT = "report.json"
DECISIONS = "decisions.json"

_threads = threading.RLock()


class StateError(ReelError):
    """A state file is missing or unreadable; the message says what to run or fix."""


def read_report_document(out: Path) -> dict[str, Any]:
    """``OUT/report.json`` as the JSON object stored.

    Only :func:`processing.report.read_report` (which types it) and
    :func:`update_report` call this; every other module reads the typed report.

    Raises:
        StateError: There is none yet, or it cannot be read as a JSON object.
    """
    path = Path(out) / REPORT
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError as exc:
        raise StateError(f"{out} has no {REPORT}: run `reel process` first") from exc
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise StateError(f"cannot read {path}: {str(exc)[:200]}") from exc
    if not isinstance(data, dict):
        raise StateError(f"cannot read {path}: not a JSON object")
    return data


def write_report(out: Path, report: dict[str, Any]) -> Path:
    """Replace ``OUT/report.json`` with ``report`` (atomically); return its path."""
    path = Path(out) / REPORT
    with _threads:
        write_json(path, report)
    return path


def update_report(out: Path, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Read ``OUT/report.json`` as it is now, apply ``change`` to it, write it back.

    Never a copy read earlier: a clip another run added in between stays.

    Raises:
        StateError: There is no readable report to change.
    """
    with _threads:
        report = read_report_document(out)
        change(report)
        write_report(out, report)
    return report


def record_path(out: Path, sid: str) -> Path:
    return ClipFiles(Path(out), sid).record


def read_record(out: Path, sid: str) -> dict[str, Any] | None:
    """Clip ``sid``'s record, or None when there is none or it is unreadable."""
    try:
        data = json.loads(record_path(out, sid).read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def write_record(out: Path, sid: str, record: dict[str, Any]) -> None:
    """Write clip ``sid``'s record (atomically), after its clip is in place."""
    with _threads:
        write_json(record_path(out, sid), record)


def file_signature(path: Path) -> list[int] | None:
    """``[size, mtime_ns]`` of ``path``, as records store it; None when it is missing."""
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def record_matches_file(record: dict[str, Any], clip: Path) -> bool:
    """Whether ``clip`` on disk is the very file ``record`` describes (size and mtime).

    A clip replaced by another run (say, unblurred over a record that says
    anonymized) no longer matches, and the record is not reused.
    """
    streams = record.get("streams")
    recorded = streams.get("file") if isinstance(streams, dict) else None
    return recorded is not None and file_signature(clip) == list(recorded)


def write_decisions(out: Path, data: dict[str, Any]) -> None:
    """Replace ``OUT/decisions.json`` (atomically) with the decisions in force and history."""
    with _threads:
        write_json(Path(out) / DECISIONS, data)
