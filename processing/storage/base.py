"""Where uploads come from and results go: small interfaces, one implementation per backend."""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..errors import ReelError
from ..fsutil import sha256_file


class StorageError(ReelError):
    """The store refused a request (missing bucket, access denied, bad URI).

    The message says what to fix; retrying does not help.
    """


class StoreUnavailable(StorageError, ConnectionError):
    """The store could not be reached or answered with throttling or a server error.

    Transient: orchestration retries it (it is a ``ConnectionError``, so an
    ``OSError``), and a run that stops on it can simply be run again.
    """


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


#: Written beside a sidecar when the original upload ``<key>`` is deleted (retention):
#: ``<key>`` + this suffix. It ends in ``.json``, so no source lists it as an upload.
RETIRED_SUFFIX = ".reel-retired.json"


class Source(abc.ABC):
    """A collection of uploads. Originals are never changed; retention may delete them whole."""

    uri: str

    def retired(self, max_bytes: int) -> dict[str, bytes]:
        """Every retirement marker: the deleted original's key -> the marker's first bytes."""
        return {}

    def retire(self, upload: Upload, marker: bytes) -> None:
        """Write ``upload``'s retirement marker (complete or not at all), then delete the upload.

        The sidecar stays. The marker goes first: a run that stops in between
        leaves the original with a marker, which intake ignores while the
        original is there.

        Raises:
            StorageError: This source cannot delete uploads.
        """
        raise StorageError(f"{self.uri}: this source cannot delete uploads")

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

        Raises:
            Rejection: The upload cannot be read as listed (changed since, too large).
        """

    def digest(self, upload: Upload, workdir: Path) -> str:
        """Hex SHA-256 of the upload's bytes (a remote source may stream them instead).

        Raises:
            Rejection: The upload cannot be read as listed (changed since, too large).
        """
        with self.local_copy(upload, workdir) as path:
            return sha256_file(path)


class Output(abc.ABC):
    """Where results are published.

    The pipeline always writes into the local folder :attr:`root`. For a local
    output that folder *is* the output; a remote one stages there and keeps
    the shared state (clip records, clips, report) in the store, which is what
    every worker consults. Paths are ``/``-separated and relative to the
    output (``clips/<id>.mp4``).
    """

    uri: str
    root: Path
    remote: bool = False

    @abc.abstractmethod
    def exists(self, rel: str) -> bool:
        """Whether ``rel`` is published."""

    @abc.abstractmethod
    def fetch(self, rels: Iterable[str], *, mirror: bool = False) -> None:
        """Bring the published copies of ``rels`` into :attr:`root` where they differ.

        Args:
            rels: Files to fetch; those not published are skipped.
            mirror: Also delete the local copy of a file that is not published
                (for state the store is the truth of, such as ``decisions.json``).
        """

    @abc.abstractmethod
    def publish(self, rels: Iterable[str]) -> None:
        """Publish the local files ``rels`` in the order given (those missing locally are skipped).

        A reader sees each file complete or not at all; files already published
        with the same content are not sent again.
        """

    @abc.abstractmethod
    def listing(self, prefix: str) -> list[str]:
        """Every published file whose path starts with ``prefix`` (``compilation/``)."""

    @abc.abstractmethod
    def remove(self, rels: Iterable[str]) -> None:
        """Unpublish ``rels`` in the order given, and delete their local copies.

        Files that are not published are skipped. Remove a pointer (a manifest)
        before the files it names, so a reader never follows it to a gap.
        """

    @abc.abstractmethod
    def url_for(self, rel: str) -> str:
        """A link to ``rel`` for editors (a presigned URL for a remote output)."""

    @abc.abstractmethod
    def location(self, rel: str) -> str:
        """Where ``rel`` lives, for messages (a path or an ``s3://`` URI)."""


def display_key(key: str) -> str:
    """``key`` as valid UTF-8 text (undecodable bytes become U+FFFD)."""
    return key.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
