"""Whether the published compilation still matches the state it was built from.

The manifest records ``built_from``: for every clip in the compilation the
fields that decide what is shown of it (status, consent, anonymity, name,
message, the render key of the clip file), the accepted clips at the time,
and a digest of the editors' decisions in force. :func:`assess` compares that
with ``report.json`` and ``decisions.json`` now.

Two kinds of difference:

* **harmful**: the compilation shows someone it no longer may (consent
  withdrawn, now anonymous, renamed, re-rendered, rejected by the editors,
  gone from the uploads). The compilation must be withdrawn at once.
* **outdated**: the decisions or the pool of accepted clips changed, but
  nobody in it is harmed. The review page does not preview it and asks for
  ``reel compile``.

Reasons name clips by id only: they reach logs and the page.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .decisions import Decisions, DecisionsError, load_decisions
from .report import Entry, Report

#: Entry fields that change what the compilation shows of a clip.
STATE_FIELDS = ("status", "consent", "anonymize", "name", "message", "render_key")


@dataclass
class Staleness:
    """Why the compilation no longer matches (both lists empty when it does)."""

    harmful: list[str] = field(default_factory=list)
    outdated: list[str] = field(default_factory=list)

    @property
    def fresh(self) -> bool:
        return not self.harmful and not self.outdated


#: Contributor text is recorded as a digest: the manifest is published, and an
#: anonymous contributor's name must not travel in it.
_DIGESTED = ("name", "message")


def clip_state(entry: Entry | None) -> dict[str, Any]:
    """The fields of a report entry the compilation depends on (text as digests)."""
    state = {k: getattr(entry, k, None) for k in STATE_FIELDS}
    for k in _DIGESTED:
        text = state[k]
        if isinstance(text, str):
            state[k] = "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return state


def decisions_version(decisions: Decisions | None) -> str | None:
    """A digest of the decisions in force (None when there are none)."""
    if decisions is None:
        return None
    blob = json.dumps(decisions.as_dict(), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def built_from(report: Report, clip_ids: Iterable[str], out: Path) -> dict[str, Any]:
    """What a compilation of ``clip_ids`` is built from, for its manifest.

    Raises:
        DecisionsError: ``decisions.json`` is damaged.
    """
    entries = report.by_id()
    return {
        "clips": {sid: clip_state(entries.get(sid)) for sid in clip_ids},
        "accepted": _accepted(entries),
        "decisions": decisions_version(load_decisions(out)),
    }


def assess(manifest: dict[str, Any], report: Report, out: Path) -> Staleness:
    """Compare the manifest's ``built_from`` with the report and decisions now."""
    result = Staleness()
    entries = report.by_id()
    try:
        decisions = load_decisions(out)
    except DecisionsError:
        decisions = None
        result.harmful.append("decisions.json is damaged: editors' rejections cannot be checked")
    rejected = set(decisions.rejected) if decisions else set()
    recorded = manifest.get("built_from")
    if not isinstance(recorded, dict) or not isinstance(recorded.get("clips"), dict):
        result.harmful += _legacy_problems(manifest, entries, rejected)
        result.outdated.append("built by an older version that did not record its inputs")
        return result
    for sid, then in recorded["clips"].items():
        result.harmful += _clip_problems(str(sid), then, entries.get(str(sid)), rejected)
    if recorded.get("decisions") != decisions_version(decisions):
        result.outdated.append("the editors' decisions changed since it was built")
    if recorded.get("accepted") != _accepted(entries):
        result.outdated.append("the accepted clips changed since it was built")
    return result


def _clip_problems(sid: str, then: Any, now: Entry | None, rejected: set[str]) -> list[str]:
    if now is None:
        return [f"clip {sid} is no longer among the submissions"]
    problems = []
    if sid in rejected:
        problems.append(f"clip {sid} was rejected by the editors")
    if now.status != "accepted":
        why = now.code or now.status
        problems.append(f"clip {sid} is no longer accepted ({why})")
    if not isinstance(then, dict):
        return [*problems, f"clip {sid}: what it was built from is unreadable"]
    current = clip_state(now)
    changed = [k for k in STATE_FIELDS if k != "status" and then.get(k) != current.get(k)]
    if changed:
        problems.append(f"clip {sid}: {', '.join(changed)} changed since it was built")
    return problems


def _legacy_problems(
    manifest: dict[str, Any], entries: dict[str, Entry], rejected: set[str]
) -> list[str]:
    """The checks possible on a manifest without ``built_from``: status, rejection, label."""
    problems = []
    for seg in manifest.get("segments") or []:
        if not isinstance(seg, dict) or seg.get("kind") != "clip":
            continue
        sid = str(seg.get("id"))
        now = entries.get(sid)
        problems += _clip_problems(sid, clip_state(now) if now else None, now, rejected)
        if now and now.anonymize and now.name and seg.get("label") == now.name:
            problems.append(f"clip {sid} is named but its contributor asked to be anonymous")
    return problems


def _accepted(entries: dict[str, Entry]) -> list[str]:
    return sorted(sid for sid, e in entries.items() if e.status == "accepted")
