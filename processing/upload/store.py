"""Where the upload page keeps what contributors send: a folder target.

Layout under the target (the uploads folder ``reel process`` reads)::

    web/<id>/<id>.<ext>        the video, extension from its bytes (:mod:`.sniff`)
    web/<id>/<id>.json         its sidecar (:mod:`processing.sidecar` reads it)
    .reel-upload/tickets/      a started upload's form, until its bytes are complete
    .reel-upload/tus/          bytes still arriving (the tus server's files)
    .reel-upload/ready/<id>/   a finished upload being assembled
    .reel-upload/links/        private links: SHA-256 of the token -> upload id

Hidden folders are skipped by ``reel process``. A finished upload is put
together in ``ready/<id>/`` (video moved in, sidecar written and synced), then
that folder is renamed to ``web/<id>`` in one step: a reader of the uploads
sees the video and its sidecar together or neither. Nothing a client sends
becomes part of a path: ids, tickets and tokens are made here.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ReelError
from ..fsutil import atomic_output

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger(__name__)

WEB = "web"
WORK = ".reel-upload"


class UnknownLink(Exception):
    """A private link or ticket that names nothing here."""


@dataclass(frozen=True)
class Stats:
    """What staff see: how many uploads arrived and when the last one did."""

    count: int
    last: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "last": self.last.isoformat() if self.last else None}

    def line(self) -> str:
        """One line for staff (the review app's header, the nightly run's summary)."""
        if not self.count:
            return "No uploads through the upload page yet"
        last = self.last.strftime("%Y-%m-%d %H:%M UTC") if self.last else "unknown"
        return f"{self.count} uploads through the upload page, the last at {last}"


def _digest(token: str) -> str:
    # Only digests are stored: a copy of the folder does not hand out working links.
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def changed(data: dict[str, Any], what: str) -> None:
    """Apply a private link's ``withdraw`` or ``hide`` to a sidecar's ``data``, recording when."""
    if what == "withdraw":
        data["consent"] = False
    elif what == "hide":
        data["anonymize"] = True
    else:
        raise ValueError(what)
    data.setdefault("changed", []).append({"what": what, "at": _now()})


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class FolderStore:
    """Uploads into a local folder (``upload.target``)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.work = self.root / WORK
        self.tus = self.work / "tus"
        for name in ("tickets", "tus", "ready", "links"):
            (self.work / name).mkdir(parents=True, exist_ok=True)
        (self.root / WEB).mkdir(parents=True, exist_ok=True)

    # ---------------------------------------------------------------- tickets

    def start(self, sidecar: dict[str, Any]) -> tuple[str, str]:
        """Record a started upload's form; returns its ticket and its private link token."""
        ticket, link = secrets.token_urlsafe(24), secrets.token_urlsafe(32)
        body = {"sidecar": sidecar, "link": _digest(link), "started": _now()}
        self._write_json(self._ticket_path(ticket), body)
        return ticket, link

    def has_ticket(self, ticket: str) -> bool:
        return self._ticket_path(ticket).is_file()

    def forget(self, ticket: str) -> None:
        """Drop a ticket whose upload was refused: nothing the contributor typed stays."""
        self._ticket_path(ticket).unlink(missing_ok=True)

    def _ticket_path(self, ticket: str) -> Path:
        return self.work / "tickets" / f"{_digest(ticket)}.json"

    # ---------------------------------------------------------------- finishing

    def finish(self, data: Path, ticket: str, ext: str) -> str:
        """Put a completely received upload in place with its sidecar; returns its id.

        Raises:
            UnknownLink: The ticket is unknown (used already, or never issued).
        """
        path = self._ticket_path(ticket)
        try:
            body = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            raise UnknownLink("unknown ticket") from None
        uid = secrets.token_hex(8)
        folder = self.work / "ready" / uid
        folder.mkdir()
        os.replace(data, folder / f"{uid}.{ext}")
        self._write_json(folder / f"{uid}.json", body["sidecar"])
        self._write_json(self.work / "links" / f"{body['link']}.json", {"id": uid})
        _sync_dir(folder)
        os.rename(folder, self.root / WEB / uid)  # video and sidecar appear together
        _sync_dir(self.root / WEB)
        path.unlink(missing_ok=True)
        return uid

    # ---------------------------------------------------------------- private links

    def change(self, token: str, what: str) -> dict[str, Any]:
        """Apply a contributor's later request (``withdraw`` or ``hide``) to their sidecar.

        The sidecar is rewritten in place (temporary file, then rename), so the
        next ``reel process`` reads it: ``"consent": false`` withdraws the clip
        and deletes its renders (:mod:`processing.consent`), ``"anonymize": true``
        blurs it.

        Raises:
            UnknownLink: The token names no finished upload.
        """
        uid = self.upload_of(token)
        sidecar = self.root / WEB / uid / f"{uid}.json"
        with self._locked():
            data = json.loads(sidecar.read_text("utf-8"))
            changed(data, what)
            self._write_json(sidecar, data)
        return dict(data)

    def upload_of(self, token: str) -> str:
        """The id of the finished upload a private link token belongs to.

        Raises:
            UnknownLink: No finished upload has this token.
        """
        link = self.work / "links" / f"{_digest(token)}.json"
        try:
            uid = str(json.loads(link.read_text("utf-8"))["id"])
        except (FileNotFoundError, ValueError, KeyError):
            raise UnknownLink("unknown link") from None
        if not (self.root / WEB / uid / f"{uid}.json").is_file():
            raise UnknownLink("upload no longer here")
        return uid

    def sidecar(self, token: str) -> dict[str, Any]:
        uid = self.upload_of(token)
        data: dict[str, Any] = json.loads(
            (self.root / WEB / uid / f"{uid}.json").read_text("utf-8")
        )
        return data

    def sweep(self, max_age_seconds: float) -> int:
        """Delete tickets and unfinished uploads older than ``max_age_seconds``; returns how many.

        An abandoned upload still holds what the contributor typed and the
        bytes they sent (with the phone's location tags): neither is kept
        for an upload that never finished.
        """
        cutoff = time.time() - max_age_seconds
        removed = 0
        for folder in (self.work / "tickets", self.tus, self.tus / ".locks"):
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed

    # ---------------------------------------------------------------- helpers

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with (self.work / "lock").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    @staticmethod
    def _write_json(path: Path, data: Any) -> None:
        with atomic_output(path) as tmp, tmp.open("w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False, indent=2)
            fh.flush()
            os.fsync(fh.fileno())


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def arrivals(root: str | Path, cfg: Config | None = None) -> str:
    """:meth:`Stats.line` of ``root``, or "" when it cannot be read (no target is not an error)."""
    if not str(root).startswith("s3://") and not Path(root).is_dir():
        return ""
    try:
        return stats(root, cfg).line()
    except (ReelError, OSError) as exc:
        log.warning("upload count of %s not read: %s", root, str(exc).splitlines()[0])
        return ""


def stats(root: str | Path, cfg: Config | None = None) -> Stats:
    """How many uploads arrived through the page into ``root``, and when the last one did.

    ``root`` is a folder or ``s3://bucket/prefix`` (reached with ``cfg``'s
    ``[storage]`` settings). Reads only (a wrong folder is not created): for
    staff, ``reel upload stats``.
    """
    if str(root).startswith("s3://"):
        from ..storage.s3client import S3Settings
        from .s3store import S3Store

        settings = S3Settings.from_config(cfg.storage) if cfg else S3Settings()
        return S3Store(str(root), settings, max_bytes=0, presign_seconds=60).stats()
    web = Path(root) / WEB
    times = (
        [p.stat().st_mtime for p in web.iterdir() if p.is_dir() and not p.is_symlink()]
        if web.is_dir()
        else []
    )
    return Stats(len(times), datetime.fromtimestamp(max(times), UTC) if times else None)
