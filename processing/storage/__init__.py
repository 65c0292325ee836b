"""Storage behind two small interfaces: :class:`Source` (uploads) and :class:`Output` (results).

Each has a local-folder implementation and an ``s3://`` one (boto3, imported
only when an ``s3://`` URI is opened).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .base import Output, Source, StorageError, StoreUnavailable, Upload, display_key
from .local import LocalOutput, LocalSource

if TYPE_CHECKING:
    from ..config import Config

__all__ = [
    "LocalOutput",
    "LocalSource",
    "Output",
    "Source",
    "StorageError",
    "StoreUnavailable",
    "Upload",
    "display_key",
    "open_output",
    "open_source",
]


def open_source(uri: str | Path, ignore: tuple[str, ...] = (), cfg: Config | None = None) -> Source:
    """The uploads at ``uri``: a folder, or ``s3://bucket/prefix``.

    Args:
        uri: Where the uploads are.
        ignore: Glob patterns of file names that are not uploads.
        cfg: Campaign settings (``[storage]`` and ``limits.max_file_bytes`` for S3).
    """
    text = str(uri)
    if text.startswith("s3://"):
        from .s3 import S3Source
        from .s3client import S3Settings

        return S3Source(
            text,
            ignore=ignore,
            settings=S3Settings.from_config(cfg.storage) if cfg else None,
            max_bytes=cfg.limits.max_file_bytes if cfg else None,
        )
    return LocalSource(Path(text), ignore=ignore)


def open_output(uri: str | Path, cfg: Config | None = None) -> Output:
    """Where results go: a folder, or ``s3://bucket/prefix`` staged in ``storage.staging_dir``."""
    text = str(uri)
    if text.startswith("s3://"):
        from .s3 import S3Output
        from .s3client import S3Settings

        staging = cfg.storage.staging_dir if cfg else ""
        return S3Output(
            text,
            Path(staging).expanduser() if staging else default_staging(),
            settings=S3Settings.from_config(cfg.storage) if cfg else None,
        )
    return LocalOutput(Path(text))


def default_staging() -> Path:
    """``$XDG_CACHE_HOME/supportreel/staging`` (``~/.cache/…`` by default)."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "supportreel" / "staging"


def check_separate(source: Source, out: Output) -> None:
    """Refuse an ``s3://`` output that shares keys with the uploads (they are never written).

    Raises:
        StorageError: The output prefix is the uploads prefix, or inside it, or around it.
    """
    if not (source.uri.startswith("s3://") and out.uri.startswith("s3://")):
        return
    from .s3client import overlaps

    if overlaps(source.uri, out.uri):
        raise StorageError(
            f"the output {out.uri} overlaps the uploads {source.uri}: uploads are never "
            "overwritten or deleted, so write the results under another prefix or bucket "
            "(for example s3://renders/2027/)"
        )
