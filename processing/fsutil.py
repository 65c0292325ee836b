"""Atomic writes: a final path holds a complete file or nothing."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_output(dst: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``dst``; move it into place only on success.

    The temporary file lives in the destination folder (same filesystem, so
    :func:`os.replace` is atomic) and is removed if the block raises. It is
    locked while the block runs, so that :func:`remove_orphaned_parts` can tell
    it from the leftover of a writer that was killed.
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".part", dir=dst.parent)
    fcntl.flock(fd, fcntl.LOCK_EX)
    part = Path(tmp)
    try:
        yield part
        # mkstemp makes the file private (0600); outputs are meant to be served.
        os.chmod(part, 0o666 & ~_umask())
        os.replace(part, dst)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
        raise
    finally:
        os.close(fd)


def remove_orphaned_parts(folder: Path) -> list[Path]:
    """Delete the partial files of writers that died (SIGKILL, power cut) in ``folder``.

    A partial file whose writer is alive is locked (see :func:`atomic_output`)
    and kept; the lock of a dead process is gone with it.

    Returns:
        The files removed.
    """
    removed = []
    for part in sorted(folder.glob(".*.part")):
        try:
            fd = os.open(part, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue
        else:
            part.unlink(missing_ok=True)
            removed.append(part)
        finally:
            os.close(fd)
    return removed


@functools.cache
def _umask() -> int:
    """The process umask, read without changing it (os.umask would race other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def write_json(dst: Path, data: Any) -> None:
    """Write ``data`` as indented UTF-8 JSON, atomically."""
    with atomic_output(dst) as part:
        part.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", "utf-8")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks (memory stays flat for any size)."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
