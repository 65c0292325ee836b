"""The campaign's state and its one owner: who may write an output, and how it is read.

* :func:`campaign_lock`: one writer at a time per output. A folder is locked
  with ``fcntl`` (:mod:`.lock`); a bucket also takes a lease object with S3
  conditional writes (:mod:`.lease`). Every command that changes an output
  (process, compile, review) holds it for its whole run.
* :mod:`.store`: the only reader and writer of ``report.json``, the clip
  records and ``decisions.json``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..storage import Output
from .lock import StateLocked, folder_lock
from .store import (
    DECISIONS,
    REPORT,
    StateError,
    file_signature,
    read_record,
    read_report_document,
    record_matches_file,
    record_path,
    update_report,
    write_decisions,
    write_record,
    write_report,
)

if TYPE_CHECKING:
    from ..config import Config

__all__ = [
    "DECISIONS",
    "REPORT",
    "StateError",
    "StateLocked",
    "campaign_lock",
    "file_signature",
    "read_record",
    "read_report_document",
    "record_matches_file",
    "record_path",
    "update_report",
    "write_decisions",
    "write_record",
    "write_report",
]

#: Used when no configuration is at hand (orchestration.lock_wait_seconds, lease_seconds).
DEFAULT_WAIT_SECONDS = 3600.0
DEFAULT_LEASE_SECONDS = 120.0

_leases: set[str] = set()


@contextlib.contextmanager
def campaign_lock(dest: Output, command: str, cfg: Config | None = None) -> Iterator[None]:
    """Be the one writer of ``dest`` while the block runs (re-entrant within a process).

    A second run waits, saying who holds the output (``host:pid``, command,
    since when), for ``orchestration.lock_wait_seconds``, then refuses.

    Raises:
        StateLocked: Another run held the output for the whole wait.
    """
    wait = cfg.orchestration.lock_wait_seconds if cfg else DEFAULT_WAIT_SECONDS
    lease_seconds = cfg.orchestration.lease_seconds if cfg else DEFAULT_LEASE_SECONDS
    with folder_lock(dest.root, command, wait):
        if not dest.remote or dest.uri in _leases:  # a folder, or held further up this process
            yield
            return
        from ..storage.s3output import S3Output
        from .lease import bucket_lease

        assert isinstance(dest, S3Output)
        with bucket_lease(dest, command, wait, lease_seconds):
            _leases.add(dest.uri)
            try:
                yield
            finally:
                _leases.discard(dest.uri)
