"""The editors' approval step of a campaign run, as plain values.

A paused campaign run offers the accepted clips by name (:func:`choices`) and
takes either "the decisions saved in the review app" (the campaign state,
``OUT/decisions.json``) or a list of those names. :func:`settle` turns what the
editor sent into the compilation's order, or refuses it with a reason the run
shows when it waits again: a wrong answer never fails the run.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from . import state
from .decisions import VERSION, DecisionsError, apply_decisions, load_decisions
from .errors import ReelError
from .report import Entry, read_report

#: What a clip of someone who asked to stay anonymous is called wherever staff or editors look.
ANONYMOUS = "Anonymous supporter"


class ApprovalRefused(ReelError):
    """What the editor sent cannot be compiled; the message says why and what to do."""


@dataclass(frozen=True)
class Choice:
    """One accepted clip as the approval form offers it."""

    label: str
    """``"<n>. <public name>"``: unique, and never an anonymous contributor's name."""
    id: str


def public_name(entry: Entry) -> str:
    """The name a clip goes by in the Prefect UI: never an anonymous contributor's.

    Mirrors the review page: an anonymous contributor is only "Anonymous
    supporter", and the upload's file name (which may name the person) is not shown.
    """
    if entry.anonymize:
        return ANONYMOUS
    if entry.consent is False:
        return "Consent withdrawn"
    return entry.name if entry.name else f"No name given ({entry.source})"


def choices(entries: Sequence[Entry]) -> list[Choice]:
    """Every accepted clip, in submission order, numbered so that equal names stay apart."""
    accepted = sorted(
        (e for e in entries if e.status == "accepted"), key=lambda e: (e.submitted_at or "", e.id)
    )
    return [
        Choice(label=f"{n}. {public_name(e)}"[:200], id=e.id) for n, e in enumerate(accepted, 1)
    ]


def settle(
    out: Path, offered: Sequence[Choice], *, use_saved: bool, clips: Sequence[str], editor: str
) -> list[str]:
    """The compilation's order for what the editor sent, recorded in the campaign state.

    Args:
        out: The (local or staged) output folder.
        offered: The choices the form offered.
        use_saved: Take the decisions saved in the review app.
        clips: Otherwise the chosen labels, in running order.
        editor: Who sent them (recorded with a choice by name).

    Raises:
        ApprovalRefused: Nothing is saved, a name is unknown or listed twice, or a
            clip cannot be compiled any more (consent withdrawn since the pause).
    """
    try:
        current = read_report(out).by_id()
    except state.StateError as exc:
        raise ApprovalRefused(str(exc)) from exc
    try:
        if use_saved:
            return _saved_order(out, current)
        order = _chosen(offered, clips)
        _check_usable(order, current)
        accepted = [c.id for c in offered]
        decisions = {sid: "rejected" for sid in accepted} | {sid: "approved" for sid in order}
        record = {
            "version": VERSION,
            "editor": editor,
            "decided_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "order": order,
            "decisions": decisions,
        }
        return list(apply_decisions(record, out, applied_by=editor or None).order)
    except DecisionsError as exc:  # the state refused them: say so, do not fail the run
        raise ApprovalRefused(str(exc).replace("\n  ", " ")) from exc


def _saved_order(out: Path, current: Mapping[str, Entry]) -> list[str]:
    saved = load_decisions(out)
    if saved is None:
        raise ApprovalRefused(
            "no decisions are saved in the review app yet: approve and order the clips there "
            "(or untick 'use the decisions saved in the review app' and choose them here)"
        )
    if not saved.order:
        raise ApprovalRefused(
            "the decisions saved in the review app approve no clip: approve at least one"
        )
    _check_usable(list(saved.order), current)
    return list(saved.order)


def _chosen(offered: Sequence[Choice], clips: Sequence[str]) -> list[str]:
    by_label = {c.label: c.id for c in offered}
    if not clips:
        raise ApprovalRefused(
            "no clip chosen: choose the clips for the compilation in order, or tick "
            "'use the decisions saved in the review app'"
        )
    unknown = [c for c in clips if c not in by_label]
    if unknown:
        hints = []
        for name in unknown[:3]:
            close = difflib.get_close_matches(name, list(by_label), n=1, cutoff=0.5)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ApprovalRefused(f"no clip is called {', '.join(hints)}: choose from the list")
    twice = sorted({c for c in clips if list(clips).count(c) > 1})
    if twice:
        raise ApprovalRefused(f"listed more than once: {', '.join(map(repr, twice))}")
    return [by_label[c] for c in clips]


def _check_usable(order: Sequence[str], current: Mapping[str, Entry]) -> None:
    """Refuse clips the compilation would have to leave out (no consent, not rendered)."""
    problems = []
    for sid in order:
        s = current.get(sid)
        if s is None:
            problems.append(f"{sid} is not a clip of this output (decisions of another batch?)")
        elif s.status != "accepted" or not s.output:
            why = s.reason or s.status
            problems.append(f"{public_name(s)} ({sid}) cannot be compiled: {why}")
    if problems:
        raise ApprovalRefused("; ".join(problems))
