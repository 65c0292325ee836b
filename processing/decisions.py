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

import contextlib
import fcntl
import getpass
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import ReelError
from .fsutil import write_json
from .sidecar import clean_text

VERSION = 1
FILE_NAME = "decisions.json"
CHOICES = ("approved", "rejected")
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
        report = json.loads((out / "report.json").read_text("utf-8"))
    except FileNotFoundError as exc:
        raise DecisionsError(f"{out} has no report.json: run `reel process` first") from exc
    except (OSError, ValueError) as exc:
        raise DecisionsError(f"cannot read {out / 'report.json'}: {exc}") from exc
    subs = report.get("submissions") if isinstance(report, dict) else None
    return {
        str(s["id"]): bool(s.get("output")) for s in subs or [] if isinstance(s, dict) and "id" in s
    }


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
        problems.append(f"version must be {VERSION}, got {data.get('version')!r}")
    editor = data.get("editor", "")
    if not isinstance(editor, str):
        problems.append("editor must be a string")
        editor = ""
    decided_at = data.get("decided_at")
    if not isinstance(decided_at, str) or not _is_iso(decided_at):
        problems.append(f"decided_at must be an ISO-8601 date and time, got {decided_at!r}")
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
            f"unknown clip id{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: "
            "not in this output folder's report.json (decisions made on another batch?)"
        )
    for sid, choice in decisions.items():
        if choice not in CHOICES:
            problems.append(f'{sid}: decision must be "approved" or "rejected", got {choice!r}')
        elif choice == "approved" and known.get(sid) is False:
            problems.append(f"{sid}: cannot be approved, it was rejected and has no rendered clip")
    approved = [i for i, c in decisions.items() if c == "approved"]
    if len(set(order)) != len(order):
        problems.append("order lists a clip more than once")
    not_approved = [i for i in order if decisions.get(i) != "approved" and i in known]
    if not_approved:
        problems.append(f"order lists clips that are not approved: {', '.join(not_approved)}")
    missing = [i for i in approved if i not in order]
    if missing:
        problems.append(f"approved clips missing from order: {', '.join(missing)}")
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
        DecisionsError: The file is unreadable or does not fit the batch.
    """
    if isinstance(source, Path):
        try:
            data = json.loads(source.read_text("utf-8"))
        except FileNotFoundError as exc:
            raise DecisionsError(f"{source} does not exist") from exc
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise DecisionsError(f"{source} is not a readable JSON file: {exc}") from exc
    else:
        data = dict(source)
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
        write_json(out / FILE_NAME, {"current": record.as_dict(), "history": history})
    return record


def load_decisions(out: Path) -> Decisions | None:
    """The decisions in force for ``out``, or None when none were applied.

    Raises:
        DecisionsError: ``out/decisions.json`` exists but is damaged.
    """
    cur = _read(out).get("current")
    if cur is None:
        return None
    if not isinstance(cur, dict) or not isinstance(cur.get("order"), list):
        raise DecisionsError(f"{out / FILE_NAME} is damaged: no current order")
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


def _read(out: Path) -> dict[str, Any]:
    path = out / FILE_NAME
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise DecisionsError(f"{path} is damaged ({exc}); restore it or remove it") from exc
    if not isinstance(data, dict) or not isinstance(data.get("history", []), list):
        raise DecisionsError(f"{path} is damaged: expected current and history")
    return data


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Two editors applying at once must not lose one history entry."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / f".{FILE_NAME}.lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


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
