"""Intake: uploads into submissions, and what a submission's render depends on.

Uploads are identified by their content, and what every copy of one video asked is merged.

The same bytes may arrive more than once, under different names, with
different sidecars: the contributor re-uploads asking to be anonymous, or to
withdraw. The most protective request wins: anonymity asked by any copy
applies, and a consent withdrawn by any copy is withdrawn. Every copy and what
it asked stays listed in the report (``copies``) so editors see who asked what.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import photo
from ..captions import CaptionSpec, shorten
from ..config import Config
from ..errors import Rejection
from ..report import Entry
from ..retention import retired_uploads
from ..sidecar import UNREADABLE, Sidecar, parse_sidecar
from ..storage import Source, Upload, display_key
from . import still

#: The name an anonymized clip's caption shows.
ANONYMOUS = "Anonymous"


@dataclass(frozen=True)
class Copy:
    """One upload of a submission's bytes and what its own sidecar asked."""

    key: str
    sidecar: Sidecar
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.key, **self.sidecar.as_dict(), "warnings": list(self.warnings)}


@dataclass
class Submission:
    """An upload identified by its content, with the sidecar in force.

    ``sidecar`` is :func:`merge` of every copy's; ``upload`` is the oldest copy.
    """

    id: str
    upload: Upload
    sidecar: Sidecar
    warnings: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    copies: list[Copy] = field(default_factory=list)
    retired: bool = False
    """No original is left (retention deleted it): only its existing render can serve it."""

    @property
    def key(self) -> str:
        """The upload's key as shown to people (controls escaped)."""
        return display_key(self.upload.key)

    @property
    def photo(self) -> bool:
        """A still photo, made into a clip before the stages (:mod:`.still`)."""
        return photo.is_photo(self.upload.key)

    def facts(self) -> dict[str, Any]:
        """The entry fields the submission decides: upload time, the sidecar in force, copies."""
        sc = self.sidecar
        return {
            "submitted_at": self.upload.modified.isoformat(),
            "name": sc.name,
            "consent": sc.consent,
            "language": sc.language,
            "message": sc.message,
            "anonymize": sc.anonymize,
            "duplicates": list(self.duplicates),
            "copies": [c.as_dict() for c in self.copies],
            "original_deleted": self.retired,
        }

    def rejected(self, code: str, reason: str) -> Entry:
        """The entry of this submission refused with ``reason``."""
        return Entry(
            id=self.id,
            source=self.key,
            status="rejected",
            reason=reason,
            code=code,
            **self.facts(),
            warnings=list(self.warnings),
        )


def submission_id(digest: str) -> str:
    """A submission's id: the first 16 hex digits of its SHA-256."""
    return digest[:16]


def merge(copies: list[Copy]) -> Sidecar:
    """The sidecar in force for copies of one video: the most protective request wins.

    Anonymous if any copy asks it; consent ``False`` if any copy withdraws it,
    ``True`` if some copy gives it and none withdraws it, else ``None``. Name,
    message and language come from the oldest copy that has them (an anonymous
    clip never shows the name).
    """
    asked = [c.sidecar for c in copies]
    consents = [s.consent for s in asked]
    consent = False if False in consents else (True if True in consents else None)
    return Sidecar(
        name=next((s.name for s in asked if s.name), None),
        consent=consent,
        language=next((s.language for s in asked if s.language), None),
        message=next((s.message for s in asked if s.message), None),
        anonymize=any(s.anonymize for s in asked),
    )


def identify(
    source: Source, uploads: Iterable[Upload], cfg: Config, workdir: Path
) -> tuple[list[Submission], list[Entry]]:
    """Hash every upload; fold identical bytes into one submission, merging their sidecars.

    Originals deleted by retention come back from their markers as submissions
    marked ``retired`` (only their existing render can serve them).

    Returns:
        The submissions to process, and entries for uploads refused outright.
    """
    uploads = list(uploads)
    found: dict[str, list[tuple[Upload, Copy]]] = {}
    refused: list[Entry] = []
    for upload in uploads:
        key = display_key(upload.key)
        rid = "x" + hashlib.sha256(upload.key.encode("utf-8", "surrogateescape")).hexdigest()[:15]
        if upload.problem:
            refused.append(_refused(rid, key, "not_a_file", upload.problem, upload))
            continue
        try:
            digest = source.digest(upload, workdir)
        except Rejection as rej:  # replaced while listed, or over the size limit
            refused.append(_refused(rid, key, rej.code, rej.reason, upload))
            continue
        sidecar, warnings = _read_sidecar(source, upload, cfg)
        found.setdefault(submission_id(digest), []).append(
            (upload, Copy(key, sidecar, tuple(warnings)))
        )
    live = set(found)  # a submission with any original left renders as usual
    for sid, upload in retired_uploads(source, uploads).items():
        sidecar, warnings = _read_sidecar(source, upload, cfg)
        copy = Copy(display_key(upload.key), sidecar, tuple(warnings))
        found.setdefault(sid, []).append((upload, copy))
    return [_submission(sid, group, sid not in live) for sid, group in found.items()], refused


def _refused(rid: str, key: str, code: str, reason: str, upload: Upload) -> Entry:
    """An upload refused before it became a submission (not a file, unreadable, too big)."""
    at = upload.modified.isoformat()
    return Entry(id=rid, source=key, status="rejected", reason=reason, code=code, submitted_at=at)


def _submission(sid: str, group: list[tuple[Upload, Copy]], retired: bool) -> Submission:
    copies = [c for _, c in group]
    merged = merge(copies)
    warnings = list(copies[0].warnings)
    for c in copies[1:]:
        warnings += [f"{c.key}: {w}" for w in c.warnings]
    if len(copies) > 1:
        warnings += _protective_notes(copies, merged)
    return Submission(
        sid,
        group[0][0],
        merged,
        warnings,
        duplicates=[c.key for c in copies[1:]],
        copies=copies,
        retired=retired,
    )


def _protective_notes(copies: list[Copy], merged: Sidecar) -> list[str]:
    """Say which copy's request made the merged sidecar stricter than the first copy's."""
    first, notes = copies[0].sidecar, []
    if merged.anonymize and not first.anonymize:
        who = ", ".join(c.key for c in copies if c.sidecar.anonymize)
        notes.append(f"anonymized because another upload of the same video asked it: {who}")
    if merged.consent is False and first.consent is not False:
        who = ", ".join(c.key for c in copies if c.sidecar.consent is False)
        notes.append(f"consent withdrawn by another upload of the same video: {who}")
    return notes


def _read_sidecar(source: Source, upload: Upload, cfg: Config) -> tuple[Sidecar, list[str]]:
    """The upload's sidecar; one that exists but cannot be read is the most protective."""
    try:
        raw = source.read_sidecar(upload, cfg.ingest.max_sidecar_bytes)
    except OSError as exc:  # permissions, a folder named like a sidecar; not the bucket's errors
        reason = exc.strerror or type(exc).__name__
        return UNREADABLE, [
            f"sidecar could not be read ({reason}): the clip is anonymized and has no "
            "consent until the sidecar can be read"
        ]
    return parse_sidecar(raw, max_bytes=cfg.ingest.max_sidecar_bytes)


def render_key(sub: Submission, cfg: Config) -> str:
    """What the rendered clip depends on: content, caption inputs and settings.

    A photo's clip also depends on the message drawn into it and the photo
    settings (:func:`.still.key_part`); a video's key has no such part, so
    it stays what it was.
    """
    parts: dict[str, Any] = {
        "id": sub.id,
        "settings": cfg.render_fingerprint(),
        "name": sub.sidecar.name,
        "anonymize": sub.sidecar.anonymize,
    }
    if sub.photo:
        parts["photo"] = still.key_part(sub.sidecar)
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def published_key(sub: Submission, cfg: Config) -> str:
    """What a submission's entry depends on beyond its pixels: every copy's request and the rules.

    The sidecar in force and each copy's (consent, anonymity, name, message,
    language), ``require_consent`` and every other setting: a cached result
    keyed on it is never reused after any of them changes.
    """
    parts: dict[str, Any] = {
        "render": render_key(sub, cfg),
        "sidecar": sub.sidecar.as_dict(),
        "copies": [c.as_dict() for c in sub.copies],
        "warnings": sub.warnings,
        "config": asdict(cfg) | {"source_file": None},
    }
    if sub.retired:  # only then, so the keys of every other submission stay as they were
        parts["retired"] = True
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def caption_spec(sub: Submission, cfg: Config) -> CaptionSpec:
    """The captions a clip carries: the hashtag and the contributor's name (or Anonymous)."""
    c = cfg.captions
    name = sub.sidecar.name
    if sub.sidecar.anonymize:
        name = ANONYMOUS
    return CaptionSpec(
        hashtag=cfg.campaign.hashtag if c.show_hashtag else None,
        name=shorten(name, c.max_name_chars) if (name and c.show_name) else None,
        font=c.font,
    )
