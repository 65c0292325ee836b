"""One editor's change in the review app, recorded at once as the decisions in force.

Each change (approve, reject, clear, a new running order) is applied on top of
the decisions in force and recorded by :func:`processing.decisions.apply_decisions`,
so the history says who changed what and when, change by change. What may not
go into the film is refused here, with the reason the page shows:
:func:`approval_refusal`.

The caller holds the output's campaign lock (and serialises its own threads).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import state
from .decisions import (
    VERSION,
    Decisions,
    DecisionsError,
    apply_decisions,
    history,
    load_decisions,
)
from .report import Entry, read_report

#: History entries the page shows (newest first).
HISTORY_SHOWN = 5


class ChangeRefused(DecisionsError):
    """A change the editor may not make; the message is shown to them as it is."""


def approval_refusal(entry: Entry) -> str | None:
    """Why clip ``entry`` (a report entry) may not be approved, or None when it may.

    Refused: a clip without consent (or whose consent was withdrawn), any clip
    the pipeline did not accept, and an anonymity request the clip does not
    honour (no anonymization record, or faces found by the check after the encode).
    """
    if entry.consent is False:
        return "the contributor withdrew consent: this clip may not be used"
    if entry.code == "no_consent":
        return 'no consent: the sidecar does not say "consent": true, so it cannot go in the film'
    if entry.status != "accepted" or not entry.output:
        why = entry.reason or entry.status or "not accepted"
        return f"not accepted by the pipeline: {why}"
    if entry.anonymize:
        info = entry.anonymization
        if not isinstance(info, dict):
            return "the contributor asked to be anonymized and this clip was not: render it again"
        found = info.get("faces_found")
        if isinstance(found, int) and not isinstance(found, bool) and found > 0:
            return (
                f"the contributor asked to be anonymized and the check after the encode "
                f"found {found} face(s) in this clip"
            )
    return None


def refusals(out: Path) -> dict[str, str]:
    """Every clip of ``out`` that may not be approved → why."""
    try:
        entries = read_report(out).entries
    except state.StateError:  # nothing processed yet: nothing to refuse
        return {}
    return {e.id: r for e in entries if (r := approval_refusal(e)) is not None}


def apply_change(
    out: Path, action: Mapping[str, Any], editor: str, *, now: datetime | None = None
) -> Decisions:
    """Apply one change on top of the decisions in force and record it, by ``editor``.

    ``action`` is ``{"action": "decide", "id": ID, "choice": "approved" | "rejected" | None}``
    (approving puts the clip last in the running order) or
    ``{"action": "order", "order": [ID, ...]}``: the approved clips in a new order.

    Raises:
        ChangeRefused: The change is malformed, names an unknown clip, approves a
            clip that may not go in, or reorders clips that are not the approved ones.
        DecisionsError: The decisions on record are damaged.
    """
    current = load_decisions(out)
    decisions = dict(current.decisions) if current else {}
    order = list(current.order) if current else []
    kind = action.get("action")
    if kind == "decide":
        decisions, order = _decide(out, decisions, order, action)
    elif kind == "order":
        order = _reorder(order, action.get("order"))
    else:
        raise ChangeRefused('action must be "decide" or "order"')
    record = {
        "version": VERSION,
        "editor": editor,
        "decided_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
        "order": order,
        "decisions": decisions,
    }
    return apply_decisions(record, out, applied_by=editor, now=now)


def _decide(
    out: Path, decisions: dict[str, str], order: list[str], action: Mapping[str, Any]
) -> tuple[dict[str, str], list[str]]:
    sid, choice = action.get("id"), action.get("choice")
    entries = read_report(out).by_id()
    if not isinstance(sid, str) or sid not in entries:
        raise ChangeRefused("no such clip in this output")
    if choice not in ("approved", "rejected", None):
        raise ChangeRefused('choice must be "approved", "rejected" or null')
    if choice == "approved":
        refusal = approval_refusal(entries[sid])
        if refusal:
            raise ChangeRefused(f"cannot approve: {refusal}")
        if sid not in order:
            order.append(sid)
        decisions[sid] = "approved"
        return decisions, order
    order = [i for i in order if i != sid]
    if choice is None:
        decisions.pop(sid, None)
    else:
        decisions[sid] = choice
    return decisions, order


def _reorder(order: list[str], new: Any) -> list[str]:
    if not isinstance(new, list) or not all(isinstance(i, str) for i in new):
        raise ChangeRefused("order must be a list of clip ids")
    if len(set(new)) != len(new) or set(new) != set(order):
        raise ChangeRefused(
            "the running order changed meanwhile (another editor?): the page now shows it"
        )
    return list(new)


def page_state(out: Path) -> dict[str, Any]:
    """What the app's page shows of the decisions: those in force and the latest changes."""
    current = load_decisions(out)
    return {
        "decisions": current.as_dict() if current else None,
        "history": [
            {"by": h.get("applied_by"), "at": h.get("applied_at")}
            for h in reversed(history(out)[-HISTORY_SHOWN:])
        ],
    }
