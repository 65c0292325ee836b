"""Raw uploads do not live forever: an original goes N days after its clip was rendered.

An original upload still holds the phone's GPS and device tags. At the end of
``reel process`` (:func:`processing.sequences.finish_batch`), :func:`sweep`
deletes each original whose clip was rendered and recorded more than
``upload.keep_originals_days`` ago (0 keeps them forever). Beside it, first, it
writes a retirement marker (``<key>.reel-retired.json``: submission id, render
key, times; no name). The sidecar stays: it is the contributor's consent
record, and the private link of the upload page rewrites it.

On later runs intake turns each marker whose original is gone into a
submission that only its existing render can serve (:func:`retired_uploads`):
while the render key is the same, the clip is reused as before; when the clip
would have to be rendered again (anonymity asked later, settings changed) it is
excluded with :data:`GONE` (:func:`processing.clip.retired.unservable`). A withdrawal
(``"consent": false``) still deletes every render (:mod:`processing.consent`).
"""

from __future__ import annotations

import json
import logging
import posixpath
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import state
from .errors import Rejection
from .report import Entry
from .storage import Output, Source, Upload, display_key

if TYPE_CHECKING:
    from .config import Config

log = logging.getLogger(__name__)

GONE = "original_deleted"
MARKER_MAX = 4096
_SID = re.compile(r"^[0-9a-f]{16}$")


def retired_uploads(source: Source, uploads: Iterable[Upload]) -> dict[str, Upload]:
    """Submission id -> an upload standing for its deleted original, from the markers.

    A marker whose original is still listed is ignored (a run stopped between
    writing the marker and deleting the original; the next sweep finishes it).
    """
    listed = {u.key for u in uploads}
    found: dict[str, Upload] = {}
    unreadable = 0
    for key, raw in sorted(source.retired(MARKER_MAX).items()):
        if key in listed:
            continue
        parsed = _parse(raw)
        if parsed is None:
            unreadable += 1
            continue
        sid, submitted = parsed
        sidecar = posixpath.splitext(key)[0] + ".json"
        found.setdefault(sid, Upload(key=key, size=0, modified=submitted, sidecar_key=sidecar))
    if unreadable:  # counted, not named: a key can carry an anonymous contributor's name
        log.warning("%d retirement marker(s) could not be read and were skipped", unreadable)
    return found


def _parse(raw: bytes) -> tuple[str, datetime] | None:
    """A marker's submission id and upload time, or None when it is not a marker we wrote."""
    try:
        data = json.loads(raw[:MARKER_MAX])
        sid, when = data["id"], datetime.fromisoformat(data["submitted_at"])
    except (ValueError, TypeError, KeyError, RecursionError):
        return None
    if not isinstance(sid, str) or not _SID.match(sid):
        return None
    return sid, when if when.tzinfo else when.replace(tzinfo=UTC)


def sweep(source: Source, dest: Output, cfg: Config, entries: list[Entry]) -> list[str]:
    """Delete the originals kept past ``upload.keep_originals_days``; returns the submission ids.

    Only an original whose clip is rendered and recorded (the record under the
    entry's render key, the clip in the output) and whose bytes are still
    those of the submission (hashed again: a file replaced under the same name
    is a new upload) is deleted. The caller marks their entries ``original_deleted``
    (:func:`processing.sequences.finish_batch`).
    """
    days = cfg.upload.keep_originals_days
    if days <= 0:
        return []
    cutoff = datetime.now(UTC) - timedelta(days=days)
    due = {e.id: e for e in entries if _due(e, dest, cutoff)}
    if not due:  # the usual run: nothing old enough, so no second listing of the uploads
        return []
    owner = {key: e.id for e in due.values() for key in (e.source, *e.duplicates)}
    done: dict[str, int] = {}
    work = dest.root / ".work"
    for upload in source.list_uploads():
        sid = owner.get(upload.key)
        if sid is None or upload.problem or display_key(upload.key) != upload.key:
            continue
        try:
            same = source.digest(upload, work)[:16] == sid
        except Rejection:  # replaced or deleted since: not the bytes that were rendered
            continue
        if same:
            source.retire(upload, _marker(sid, due[sid], upload))
            done[sid] = done.get(sid, 0) + 1
    for sid, count in done.items():
        # By id only: a file name can carry an anonymous contributor's name.
        log.info(
            "deleted the original upload of %s (%d file(s)): rendered more than %d day(s) ago "
            "(upload.keep_originals_days); its sidecar is kept",
            sid,
            count,
            days,
        )
    return sorted(done)


def _due(e: Entry, dest: Output, cutoff: datetime) -> bool:
    """Whether ``e``'s clip is rendered and recorded, and was rendered before ``cutoff``."""
    if e.output is None or not e.render_key:
        return False
    record = state.read_record(dest.root, e.id)
    if record is None or record.get("render_key") != e.render_key:
        return False
    when = rendered_at(record, state.record_path(dest.root, e.id))
    return when is not None and when <= cutoff and dest.exists(e.output)


def rendered_at(record: dict[str, Any], path: Path) -> datetime | None:
    """When the record's clip was rendered.

    Records written before ``rendered_at`` existed fall back to the record
    file's modification time, which is never earlier (a later copy of it
    only keeps the original longer).
    """
    text = record.get("rendered_at")
    try:
        when = datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        when = None
    if when is None:
        try:
            return datetime.fromtimestamp(path.stat().st_mtime, UTC)
        except OSError:
            return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _marker(sid: str, e: Entry, upload: Upload) -> bytes:
    data = {
        "id": sid,
        "render_key": e.render_key,
        "submitted_at": upload.modified.isoformat(),
        "rendered_at": e.rendered_at,
        "deleted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "why": "original deleted after upload.keep_originals_days; the sidecar is kept",
    }
    return (json.dumps(data, indent=2) + "\n").encode()
