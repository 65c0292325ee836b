"""The compilation and its companion files, published as one set.

Each build writes its files (video, chapters, credits, subtitles, and any
re-normalized segment) into its own folder ``compilation/<build-id>/``; then
``compilation/manifest.json``, the one pointer readers follow, is replaced
atomically (:func:`os.replace`). A crash before that leaves the previous set in
force and whole; after it, the new one. Superseded and orphaned builds are
removed afterwards (:func:`prune`), never before the switch.

A build folder is locked (``flock``) while it is written, so that pruning
never removes the folder of a build still running in another process.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .fsutil import remove_orphaned_parts, write_json

log = logging.getLogger(__name__)

FOLDER = "compilation"
MANIFEST = f"{FOLDER}/manifest.json"
#: Companion files of the video, by suffix after its stem.
SIDECARS = (".chapters.txt", ".credits.txt", ".srt", ".vtt")
_BUILD = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")
#: Folders under the output whose partial files a compile or page build may leave.
_PART_FOLDERS = ("", FOLDER, f"{FOLDER}/cards", "review", "review/media")


def new_build_id() -> str:
    """A sortable, unique folder name for one build (UTC time and 32 random bits)."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(4)


def read_manifest(out: Path) -> dict[str, Any] | None:
    """The manifest in force, or None when there is none or it cannot be read."""
    try:
        data = json.loads((out / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("output"), str) else None


def set_files(manifest: dict[str, Any]) -> list[str]:
    """The files of the set a manifest points to (relative to the output), video first.

    Manifests written before sets had their own folder list no ``files``: the
    video's stem and the known suffixes name them.
    """
    listed = manifest.get("files")
    if isinstance(listed, list) and all(isinstance(f, str) for f in listed):
        return [str(f) for f in listed]
    output = str(manifest["output"])
    stem = output.rsplit(".", 1)[0]
    return [output, *(stem + ext for ext in SIDECARS)]


@contextlib.contextmanager
def building(out: Path) -> Iterator[Path]:
    """A new, locked build folder; removed with everything in it if the block fails."""
    folder = out / FOLDER / new_build_id()
    folder.mkdir(parents=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield folder
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        os.close(fd)


def switch(out: Path, manifest: dict[str, Any]) -> None:
    """Make ``manifest`` (and the set it lists) the one in force: one atomic replace."""
    missing = [f for f in set_files(manifest) if not (out / f).is_file()]
    if missing:  # pragma: no cover - the build wrote them just before
        raise FileNotFoundError(f"cannot publish a set with missing files: {missing}")
    write_json(out / MANIFEST, manifest)


def withdraw(out: Path) -> list[str]:
    """Remove the manifest in force, then its set; return what was removed (relative)."""
    manifest = read_manifest(out)
    if manifest is None:
        return []
    (out / MANIFEST).unlink(missing_ok=True)
    files = set_files(manifest)
    for rel in files:
        (out / rel).unlink(missing_ok=True)
    prune(out)
    return [MANIFEST, *files]


def prune(out: Path) -> list[str]:
    """Remove every build and legacy file not in force, and partial files of dead writers.

    A build folder locked by a running build is kept.

    Returns:
        The removed builds and files, relative to ``out``.
    """
    folder = out / FOLDER
    removed: list[str] = []
    if folder.is_dir():
        manifest = read_manifest(out)
        keep = set(set_files(manifest)) if manifest else set()
        for path in sorted(folder.iterdir()):
            rel = path.relative_to(out).as_posix()
            if path.is_dir() and _BUILD.match(path.name):
                if not any(k.startswith(rel + "/") for k in keep) and _unlocked(path):
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(rel)
            elif path.is_file() and path.name.startswith("remembrance-") and rel not in keep:
                path.unlink(missing_ok=True)  # a set published before builds had folders
                removed.append(rel)
            elif path.is_dir() and path.name == "conformed":
                shutil.rmtree(path, ignore_errors=True)  # old layout: re-encoded clip copies
                removed.append(rel)
    for sub in _PART_FOLDERS:
        if (out / sub).is_dir():
            removed += [p.relative_to(out).as_posix() for p in remove_orphaned_parts(out / sub)]
    if removed:
        log.info("removed %d superseded or partial compilation file(s)", len(removed))
    return removed


def _unlocked(folder: Path) -> bool:
    """Whether no running build holds ``folder`` (see :func:`building`)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True
