"""Storage backends behind one interface (:class:`~processing.storage.base.Source`)."""

from __future__ import annotations

from pathlib import Path

from .base import Source, Upload, display_key
from .local import LocalSource

__all__ = ["LocalSource", "Source", "Upload", "display_key", "open_source"]


def open_source(uri: str | Path, ignore: tuple[str, ...] = ()) -> Source:
    """The source for ``uri``: a folder path (``s3://`` arrives with the S3 backend)."""
    text = str(uri)
    if text.startswith("s3://"):
        raise NotImplementedError("s3:// sources are not available yet; use a folder")
    return LocalSource(Path(text), ignore=ignore)
