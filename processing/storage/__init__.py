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
    "check_separate",
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
        from .s3client import S3Settings
        from .s3source import S3Source

        return S3Source(
            text,
            ignore=ignore,
            settings=S3Settings.from_config(cfg.storage) if cfg else None,
            max_bytes=cfg.limits.max_file_bytes if cfg else None,
        )
    folder = Path(text)
    if not folder.is_dir():  # refused before an output folder is made or a retry is spent
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise StorageError(f"source folder {folder} {what}: give the folder of uploads")
    return LocalSource(folder, ignore=ignore)


def open_output(uri: str | Path, cfg: Config | None = None) -> Output:
    """Where results go: a folder, or ``s3://bucket/prefix`` staged in ``storage.staging_dir``."""
    text = str(uri)
    if text.startswith("s3://"):
        from .s3client import S3Settings
        from .s3output import S3Output

        staging = cfg.storage.staging_dir if cfg else ""
        return S3Output(
            text,
            Path(staging).expanduser() if staging else default_staging(),
            settings=S3Settings.from_config(cfg.storage) if cfg else None,
        )
    folder = Path(text)
    if folder.exists() and not folder.is_dir():
        raise StorageError(
            f"output {folder} is a file, not a folder: give --out a folder "
            "(it is created if missing)"
        )
    return LocalOutput(folder)


def default_staging() -> Path:
    """``$XDG_CACHE_HOME/supportreel/staging`` (``~/.cache/…`` by default)."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "supportreel" / "staging"


def check_separate(source: Source, out: Output) -> None:
    """Refuse an output that overlaps the uploads, before any work is done.

    Results written among the uploads would be read back as uploads on the
    next run (clips re-ingested, records taken for sidecars), and uploads are
    never overwritten. Folders are compared after resolving symbolic links and
    ``..``; for an ``s3://`` output its local staging folder is compared with a
    local uploads folder. Two ``s3://`` locations overlap when they share a
    bucket and one prefix holds the other.

    Raises:
        StorageError: The output is the uploads, or inside them, or around them.
    """
    if isinstance(source, LocalSource):
        _check_folders(source.root, out)
        return
    if not (source.uri.startswith("s3://") and out.uri.startswith("s3://")):
        return
    from .s3client import overlaps

    if overlaps(source.uri, out.uri):
        raise StorageError(
            f"the output {out.uri} overlaps the uploads {source.uri}: uploads are never "
            "overwritten or deleted, so write the results under another prefix or bucket "
            "(for example s3://renders/2027/)"
        )


def _check_folders(uploads: Path, out: Output) -> None:
    src, dst = _real(uploads), _real(out.root)
    what = (
        f"the staging folder of {out.uri} (storage.staging_dir)"
        if out.remote
        else "the output folder"
    )
    if src == dst:
        problem = f"{what} {dst} is the uploads folder"
    elif dst.is_relative_to(src):
        problem = f"{what} {dst} is inside the uploads folder {src}"
    elif src.is_relative_to(dst):
        problem = f"the uploads folder {src} is inside {what} {dst}"
    else:
        return
    raise StorageError(
        f"{problem}: results there would be read back as new uploads on the next run; "
        f"write them outside the uploads (for example to {src.parent / (src.name + '-out')})"
    )


def _real(path: Path) -> Path:
    """``path`` absolute, with symbolic links and ``..`` resolved as far as they exist."""
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError):  # a symbolic link loop
        return Path(os.path.abspath(path))
