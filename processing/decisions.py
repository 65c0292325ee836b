"""Editors' decisions: which rendered clips go into the compilation, and in what order.

The review page exports ``decisions.json``::

    {"version": 1, "editor": "Sam", "decided_at": "2027-03-20T18:04:00+00:00",
     "order": ["<id>", ...],                      # approved clips, in running order
     "decisions": {"<id>": "approved" | "rejected", ...}}

:func:`apply_decisions` checks it against ``OUT/report.json`` and records it in
``OUT/decisions.json`` as ``{"current": {...}, "history": [...]}``: every
applied file, oldest first (the last :data:`MAX_HISTORY`), each with
``applied_at`` and ``applied_by``; ``current`` is the last one. Editor names
are cleaned like sidecar text and cut to :data:`MAX_EDITOR` characters. The
compilation reads it with :func:`load_decisions`.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import state, untrusted_json
from .errors import ReelError
from .report import Entry, read_report
from .sidecar import clean_text
from .storage import LocalOutput

VERSION = 1
FILE_NAME = "decisions.json"
CHOICES = ("approved", "rejected")
#: An exported file larger than this is refused unread (10,000 clips take about 0.5 MB).
MAX_FILE_BYTES = 4 << 20
#: The recorded ``decisions.json`` keeps every applied file, so it may grow larger.
MAX_RECORD_BYTES = 64 << 20
#: How much of a bad value or how many unknown ids a refusal quotes.
_SHOWN_CHARS, _SHOWN_IDS = 60, 5
#: Applied files kept in the history (oldest dropped first): the file is read on
#: every compile and review, and must not grow without end.
MAX_HISTORY = 200
#: Longest editor name kept (after control and invisible characters are removed).
MAX_EDITOR = 100


class DecisionsError(ReelError):
    """A decisions file that cannot be applied; the message says what is wrong."""


@dataclass(frozen=True)
class Decisions:
    """The decisions in force for one output folder."""

    editor: str
    decided_at: str
    order: tuple[str, ...]
    """Approved clip ids in the editors' running order."""
    decisions: Mapping[str, str] = field(default_factory=dict)
    """Every decided id → ``"approved"`` or ``"rejected"``."""
    applied_at: str | None = None
    applied_by: str | None = None

    @property
    def approved(self) -> tuple[str, ...]:
        """Same as :attr:`order`."""
        return self.order

    @property
    def rejected(self) -> tuple[str, ...]:
        return tuple(i for i, d in self.decisions.items() if d == "rejected")

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "version": VERSION,
            "editor": self.editor,
            "decided_at": self.decided_at,
            "order": list(self.order),
            "decisions": dict(self.decisions),
        }
        if self.applied_at is not None:
            d["applied_at"] = self.applied_at
            d["applied_by"] = self.applied_by
        return d


def reviewable_ids(out: Path) -> dict[str, bool]:
    """Every submission id in ``out/report.json`` → whether it has a rendered clip.

    Raises:
        DecisionsError: There is no readable report.
    """
    try:
        report = read_report(out)
    except state.StateError as exc:
        raise DecisionsError(str(exc)) from exc
    return {s.id: bool(s.output) for s in report.entries}


def validate(data: Any, known: Mapping[str, bool]) -> Decisions:
    """Check an exported decisions file against the batch it is for.

    Args:
        data: The parsed JSON.
        known: :func:`reviewable_ids` of the batch.

    Raises:
        DecisionsError: With every problem found, one per line.
    """
    if not isinstance(data, dict):
        raise DecisionsError("decisions file must hold a JSON object")
    problems: list[str] = []
    if data.get("version") != VERSION:
        problems.append(f"version must be {VERSION}, got {_shown(data.get('version'))}")
    editor = data.get("editor", "")
    if not isinstance(editor, str):
        problems.append("editor must be a string")
        editor = ""
    decided_at = data.get("decided_at")
    if not isinstance(decided_at, str) or not _is_iso(decided_at):
        problems.append(f"decided_at must be an ISO-8601 date and time, got {_shown(decided_at)}")
    decisions = data.get("decisions")
    order = data.get("order")
    if not isinstance(decisions, dict):
        problems.append('decisions must be an object of id → "approved" or "rejected"')
        decisions = {}
    if not isinstance(order, list) or not all(isinstance(i, str) for i in order):
        problems.append("order must be a list of clip ids")
        order = []
    unknown = sorted({*decisions, *order} - set(known))
    if unknown:
        problems.append(
            f"unknown clip id{'s' if len(unknown) > 1 else ''} {_shown_ids(unknown)}: "
            "not in this output folder's report.json (decisions made on another batch?)"
        )
    for sid, choice in decisions.items():
        if choice not in CHOICES:
            problems.append(
                f'{_shown_id(sid)}: decision must be "approved" or "rejected", got {_shown(choice)}'
            )
        elif choice == "approved" and known.get(sid) is False:
            problems.append(f"{sid}: cannot be approved, it was rejected and has no rendered clip")
    approved = [i for i, c in decisions.items() if c == "approved"]
    if len(set(order)) != len(order):
        problems.append("order lists a clip more than once")
    not_approved = [i for i in order if decisions.get(i) != "approved" and i in known]
    if not_approved:
        problems.append(f"order lists clips that are not approved: {_shown_ids(not_approved)}")
    missing = [i for i in approved if i not in order]
    if missing:
        problems.append(f"approved clips missing from order: {_shown_ids(missing)}")
    if problems:
        raise DecisionsError("invalid decisions file:\n  " + "\n  ".join(problems))
    return Decisions(
        editor=clean_text(editor, MAX_EDITOR),
        decided_at=str(decided_at),
        order=tuple(order),
        decisions=dict(decisions),
    )


def apply_decisions(
    source: Path | Mapping[str, Any],
    out: Path,
    *,
    applied_by: str | None = None,
    now: datetime | None = None,
) -> Decisions:
    """Validate decisions and record them in ``out/decisions.json``, keeping the history.

    Args:
        source: An exported ``decisions.json`` or its parsed content.
        out: The output folder the decisions are for.
        applied_by: Who applies them; the file's editor, else the OS user, by default.
        now: The time recorded as ``applied_at`` (for tests).

    Raises:
        DecisionsError: The file is unreadable (missing, too large, not UTF-8
            JSON, nested too deep) or does not fit the batch.
    """
    data = _read_export(source) if isinstance(source, Path) else dict(source)
    decided = validate(data, reviewable_ids(out))
    who = clean_text(applied_by or decided.editor or _os_user(), MAX_EDITOR)
    stamp = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    record = Decisions(
        editor=decided.editor,
        decided_at=decided.decided_at,
        order=decided.order,
        decisions=decided.decisions,
        applied_at=stamp,
        applied_by=who,
    )
    with _locked(out):
        history = _read(out).get("history", [])
        history = [*history, record.as_dict()][-MAX_HISTORY:]
        state.write_decisions(out, {"current": record.as_dict(), "history": history})
    return record


def load_decisions(out: Path) -> Decisions | None:
    """The decisions in force for ``out``, or None when none were applied.

    Raises:
        DecisionsError: ``out/decisions.json`` exists but is damaged.
    """
    cur = _read(out).get("current")
    if cur is None:
        return None
    if (
        not isinstance(cur, dict)
        or not isinstance(cur.get("order"), list)
        or not isinstance(cur.get("decisions") or {}, dict)
    ):
        raise DecisionsError(f"{out / FILE_NAME} is damaged: no current order and decisions")
    return Decisions(
        editor=clean_text(str(cur.get("editor", "")), MAX_EDITOR),
        decided_at=str(cur.get("decided_at", "")),
        order=tuple(str(i) for i in cur["order"]),
        decisions={str(k): str(v) for k, v in (cur.get("decisions") or {}).items()},
        applied_at=cur.get("applied_at"),
        applied_by=clean_text(str(cur["applied_by"]), MAX_EDITOR)
        if cur.get("applied_by")
        else None,
    )


def history(out: Path) -> list[dict[str, Any]]:
    """Every recorded change for ``out``, oldest first, each with who and when.

    Raises:
        DecisionsError: ``out/decisions.json`` exists but is damaged.
    """
    return [h for h in _read(out).get("history", []) if isinstance(h, dict)]


def _read_export(path: Path) -> Any:
    """An exported decisions file, parsed; any file that is not one is a one-line refusal."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError as exc:
        raise DecisionsError(f"{path} does not exist") from exc
    except OSError as exc:
        raise DecisionsError(f"{path} cannot be read: {exc.strerror}") from exc
    if len(raw) > MAX_FILE_BYTES:
        raise DecisionsError(
            f"{path} is over {MAX_FILE_BYTES} bytes: not a decisions file from the review page"
        )
    try:
        return untrusted_json.load(raw, max_bytes=MAX_FILE_BYTES)
    except untrusted_json.BadJSON as exc:
        raise DecisionsError(f"{path} is not a usable decisions file: {exc}") from exc


def _read(out: Path) -> dict[str, Any]:
    path = out / FILE_NAME
    try:
        with path.open("rb") as fh:
            data = untrusted_json.load(fh.read(MAX_RECORD_BYTES + 1), max_bytes=MAX_RECORD_BYTES)
    except FileNotFoundError:
        return {}
    except (OSError, untrusted_json.BadJSON) as exc:
        raise DecisionsError(f"{path} is damaged ({exc}); restore it or remove it") from exc
    if not isinstance(data, dict) or not isinstance(data.get("history", []), list):
        raise DecisionsError(f"{path} is damaged: expected current and history")
    return data


def _locked(out: Path) -> AbstractContextManager[None]:
    """Two editors applying at once must not lose one history entry (the output's lock)."""
    return state.campaign_lock(LocalOutput(out), "reel review apply")


def _is_iso(text: str) -> bool:
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return "T" in text


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return os.environ.get("USER") or f"uid {os.getuid()}"


def _shown(value: Any) -> str:
    """``value`` quoted for a message: control characters escaped, cut short."""
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


def _shown_id(sid: str) -> str:
    """A clip id as it is when it looks like one, else quoted like :func:`_shown`."""
    return sid if sid.isprintable() and len(sid) <= 32 else _shown(sid)


def _shown_ids(ids: list[str]) -> str:
    more = len(ids) - _SHOWN_IDS
    return ", ".join(map(_shown_id, ids[:_SHOWN_IDS])) + (f" and {more} more" if more > 0 else "")


def compile_order(out: Path, *, approve_all: bool) -> tuple[list[str] | None, list[str]]:
    """Which clips the compilation takes, in order, and what the operator must be told.

    Editors' decisions stand. Without ``approve_all`` the order is the editors'
    approved order when decisions were recorded (clips nobody decided on stay
    out), else ``None`` (every accepted clip). With ``approve_all`` (unattended
    runs) it is the editors' approved order, then every accepted clip nobody
    decided on in submission order: a rejection stays a rejection.

    Returns:
        The order (``None`` for every accepted clip), and one line per clip that
        stays rejected and per approved clip left out for want of consent.

    Raises:
        DecisionsError: ``decisions.json`` is damaged (nothing is compiled on a guess).
    """
    decided = load_decisions(out)
    if decided is None:
        return None, []
    entries = _entries(out)
    order = list(decided.order)
    if approve_all:
        undecided = [
            s
            for sid, s in entries.items()
            if sid not in decided.decisions and s.status == "accepted" and s.output
        ]
        undecided.sort(key=lambda s: (s.submitted_at or "", s.id))
        order += [s.id for s in undecided]
    who = f"{decided.applied_by or decided.editor or 'an editor'} ({decided.applied_at or '?'})"
    notes = [
        f"{_shown_clip(sid, entries)} stays rejected by {who}"
        + ("; --approve-all approves only clips nobody decided on" if approve_all else "")
        for sid in decided.rejected
        if sid in entries
    ]
    return order, notes + _unconsented(decided, entries)


def approval_warnings(out: Path) -> list[str]:
    """One line per clip the decisions in force approve although it has no consent."""
    decided = load_decisions(out)
    if decided is None:
        return []
    return _unconsented(decided, _entries(out))


def _entries(out: Path) -> dict[str, Entry]:
    """The report's entries by id; none while there is no readable report."""
    try:
        return read_report(out).by_id()
    except state.StateError:
        return {}


def _unconsented(decided: Decisions, entries: Mapping[str, Entry]) -> list[str]:
    return [
        f"{_shown_clip(sid, entries)} is approved by the editors but has no consent "
        '(its sidecar does not say "consent": true): left out of the compilation'
        for sid in decided.order
        if (e := entries.get(sid)) is not None and e.code == "no_consent"
    ]


def _shown_clip(sid: str, entries: Mapping[str, Entry]) -> str:
    """``<id> (<upload>)`` with anything unprintable escaped (names reach a terminal)."""
    e = entries.get(sid)
    source = e.source if e is not None else ""
    text = f"{sid} ({source})" if source else sid
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
