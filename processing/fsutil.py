"""Atomic writes: a final path holds a complete file or nothing."""

from __future__ import annotations

import contextlib
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
    :func:`os.replace` is atomic) and is removed if the block raises.
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".part", dir=dst.parent)
    os.close(fd)
    part = Path(tmp)
    try:
        yield part
        os.replace(part, dst)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
        raise


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
