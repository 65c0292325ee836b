"""Where uploads come from: one small interface, one implementation per backend."""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True)
class Upload:
    """One uploaded file as the source lists it (nothing read yet)."""

    key: str
    """Path relative to the source root, ``/``-separated, for display and reports."""
    size: int
    modified: datetime
    """When it was uploaded (UTC); the default compilation order."""
    sidecar_key: str | None = None
    etag: str | None = None
    problem: str | None = None
    """Set when the source refuses to open this entry (for example a symlink)."""


class Source(abc.ABC):
    """A collection of uploads. Sources are read-only: originals are never changed."""

    uri: str

    @abc.abstractmethod
    def list_uploads(self) -> list[Upload]:
        """Every candidate upload, sidecars paired, in a stable order."""

    @abc.abstractmethod
    def read_sidecar(self, upload: Upload, max_bytes: int) -> bytes | None:
        """The sidecar's bytes, at most ``max_bytes + 1`` of them, or None."""

    @abc.abstractmethod
    @contextlib.contextmanager
    def local_copy(self, upload: Upload, workdir: Path) -> Iterator[Path]:
        """A local path to read the upload from, valid inside the ``with`` block.

        A local source yields the original itself (read only); a remote one
        downloads into ``workdir`` and removes the copy afterwards.
        """


def display_key(key: str) -> str:
    """``key`` as valid UTF-8 text (undecodable bytes become U+FFFD)."""
    return key.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
