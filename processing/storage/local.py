"""Uploads in a local folder (the default source)."""

from __future__ import annotations

import contextlib
import fnmatch
import os
import stat
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from ..fsutil import atomic_output
from .base import RETIRED_SUFFIX, Output, Source, StorageError, Upload


class LocalSource(Source):
    """Every file below ``root`` that is not ignored and not a sidecar.

    Symbolic links are never followed (a link could point anywhere on the
    machine); they are listed with a ``problem`` so the report shows them.
    """

    def __init__(self, root: Path, ignore: tuple[str, ...] = ()):
        self.root = Path(root)
        self.uri = str(self.root)
        self.ignore = ignore

    def list_uploads(self) -> list[Upload]:
        if not self.root.is_dir():
            # Not an OSError: a missing folder is not a transient failure to retry.
            raise StorageError(f"source folder {self.root} does not exist")
        files: list[tuple[str, os.stat_result]] = []
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                full = os.path.join(dirpath, name)
                files.append((os.path.relpath(full, self.root), os.lstat(full)))
        keys = {rel for rel, _ in files}
        uploads = []
        for rel, st in files:
            name = os.path.basename(rel)
            if rel.lower().endswith(".json") or any(
                fnmatch.fnmatch(name, pat) for pat in self.ignore
            ):
                continue
            sidecar = os.path.splitext(rel)[0] + ".json"
            problem = None
            if stat.S_ISLNK(st.st_mode):
                problem = "symbolic link: not followed (upload the file itself)"
            elif not stat.S_ISREG(st.st_mode):
                problem = "not a regular file"
            uploads.append(
                Upload(
                    key=rel.replace(os.sep, "/"),
                    size=st.st_size,
                    modified=datetime.fromtimestamp(st.st_mtime, UTC),
                    sidecar_key=sidecar.replace(os.sep, "/") if sidecar in keys else None,
                    problem=problem,
                )
            )
        uploads.sort(key=lambda u: (u.modified, u.key))
        return uploads

    def read_sidecar(self, upload: Upload, max_bytes: int) -> bytes | None:
        if upload.sidecar_key is None:
            return None
        path = self.root / upload.sidecar_key
        if path.is_symlink() or not path.is_file():
            return None
        with path.open("rb") as fh:
            return fh.read(max_bytes + 1)

    @contextlib.contextmanager
    def local_copy(self, upload: Upload, workdir: Path) -> Iterator[Path]:
        yield self.root / upload.key

    def retired(self, max_bytes: int) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                path = Path(dirpath) / name
                if not name.endswith(RETIRED_SUFFIX) or path.is_symlink():
                    continue
                rel = path.relative_to(self.root).as_posix()
                with path.open("rb") as fh:
                    found[rel[: -len(RETIRED_SUFFIX)]] = fh.read(max_bytes + 1)
        return found

    def retire(self, upload: Upload, marker: bytes) -> None:
        path = self.root / upload.key
        with atomic_output(path.with_name(path.name + RETIRED_SUFFIX)) as tmp:
            tmp.write_bytes(marker)
        path.unlink(missing_ok=True)


class LocalOutput(Output):
    """Results in a local folder: the folder is the output, nothing to fetch or publish."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.uri = str(self.root)

    def exists(self, rel: str) -> bool:
        return (self.root / rel).is_file()

    def fetch(self, rels: Iterable[str], *, mirror: bool = False) -> None:
        return None

    def publish(self, rels: Iterable[str]) -> None:
        return None

    def listing(self, prefix: str) -> list[str]:
        base = self.root / prefix.rpartition("/")[0]
        found = [p for p in base.rglob("*") if p.is_file()] if base.is_dir() else []
        rels = (p.relative_to(self.root).as_posix() for p in found)
        return sorted(r for r in rels if r.startswith(prefix))

    def remove(self, rels: Iterable[str]) -> None:
        for rel in rels:
            (self.root / rel).unlink(missing_ok=True)

    def url_for(self, rel: str) -> str:
        return (self.root / rel).resolve().as_uri()

    def location(self, rel: str) -> str:
        return str(self.root / rel)
