"""Reuse a rendered clip only when its record and the file on disk agree.

A record (``clips/<id>.json``) says what a clip is: its render key (content,
caption inputs, settings, anonymity) and the file's ``[size, mtime_ns]`` and
SHA-256 when it was checked. A clip replaced since (another run's render, a
copy fetched from a bucket that differs) is not what the record describes,
and is rendered again rather than published under the wrong record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import state
from .clip.files import ClipFiles
from .fsutil import sha256_file
from .storage import Output


def reusable_record(files: ClipFiles, rkey: str, dest: Output) -> dict[str, Any] | None:
    """The clip's record if it was rendered under ``rkey`` and describes the clip there.

    A clip in this folder is reused only when it is the file its record
    describes (size and mtime, else its SHA-256): a clip another run replaced
    (say, unblurred under a record saying anonymized) is rendered again.
    Otherwise the published record is fetched, so that a worker with an empty
    staging folder skips what another worker finished and published.
    """
    data = _clip_record(files, rkey, dest)
    if data is not None and not _renditions_present(data, files, dest):
        return None  # a rendition it lists is gone: render again rather than publish a gap
    return data


def _clip_record(files: ClipFiles, rkey: str, dest: Output) -> dict[str, Any] | None:
    out, sid, clip = files.out, files.sid, files.clip
    data = _record(out, sid, rkey)
    if data is not None and clip.is_file():
        return data if _describes(data, clip) else None
    dest.fetch([files.record_key])
    data = _record(out, sid, rkey)
    if data is None:
        return None
    if clip.is_file():
        return data if _describes(data, clip) else None
    return data if dest.exists(files.clip_key) else None


def _renditions_present(record: dict[str, Any], files: ClipFiles, dest: Output) -> bool:
    """Every social rendition the record lists is here or at ``dest``."""
    listed = record.get("renditions")
    if not isinstance(listed, dict):
        return True
    for aspect in listed:
        key = files.rendition_key(aspect)
        if not (files.out / key).is_file() and not dest.exists(key):
            return False
    return True


def _record(out: Path, sid: str, rkey: str) -> dict[str, Any] | None:
    data = state.read_record(out, sid)
    if data is None or data.get("render_key") != rkey:
        return None
    return data


def _describes(record: dict[str, Any], clip: Path) -> bool:
    """The clip is the record's: same size and mtime, or (fetched from a bucket) same SHA-256."""
    if state.record_matches_file(record, clip):
        return True
    streams = record.get("streams")
    digest = streams.get("sha256") if isinstance(streams, dict) else None
    if not isinstance(digest, str):
        return False
    try:
        return sha256_file(clip) == digest
    except OSError:
        return False
