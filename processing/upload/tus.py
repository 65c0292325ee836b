"""Resumable uploads: the tus protocol (tuspyserver) behind this project's own checks.

tuspyserver speaks tus 1.0 (creation, HEAD for the offset, PATCH chunks, the
offset saved when a connection drops). In front of it :class:`TusGuard`
admits only what the page needs and refuses the rest before a byte is stored:

* POST (create): CSRF token, a known ticket from ``/start``, ``Upload-Length``
  at most ``upload.max_mb`` (starts are counted at ``/start``); no body
  (creation-with-upload), no deferred length, no concatenation.
* PATCH: CSRF token, the per-address byte limit (counted from
  ``Content-Length`` before reading), and for the first chunk the container
  sniffed from its first bytes (:mod:`.sniff`): a text file renamed ``.mp4``
  is refused and what was created for it deleted.
* HEAD and OPTIONS as tus needs them; nothing else (no download, no listing,
  no termination).
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from .guard import CSRF_COOKIE, CSRF_HEADER, Csrf, RateLimit
from .sniff import NEEDED, container
from .store import FolderStore, UnknownLink

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_ALLOWED = {"POST", "PATCH", "HEAD", "OPTIONS"}


def tus_app(store: FolderStore, max_bytes: int, keep_days: int) -> ASGIApp:
    """The tus server (a FastAPI sub-application of tuspyserver's router) for ``store``.

    ``keep_days``: an unfinished upload expires (410) after this many days,
    as :meth:`.store.FolderStore.sweep` deletes it.
    """
    from fastapi import FastAPI, HTTPException
    from tuspyserver import create_tus_router

    # tuspyserver logs each HEAD at INFO with the upload's metadata (its ticket).
    logging.getLogger("tuspyserver").setLevel(logging.WARNING)

    def pre_create(metadata: dict[str, str], info: dict[str, Any]) -> None:
        if not store.has_ticket(metadata.get("ticket", "")):
            raise HTTPException(status_code=403, detail="bad_token")

    def complete(path: str, metadata: dict[str, str]) -> None:
        data = Path(path)
        with data.open("rb") as fh:
            ext = container(fh.read(NEEDED))
        ticket = metadata.get("ticket", "")
        if ext is None:  # checked on the first chunk already; never trust one check
            _discard(data)
            store.forget(ticket)
            raise HTTPException(status_code=415, detail="not_video")
        try:
            uid = store.finish(data, ticket, ext)
        except UnknownLink:
            raise HTTPException(status_code=403, detail="bad_token") from None
        data.with_name(data.name + ".info").unlink(missing_ok=True)
        log.info("upload %s arrived (%s)", uid, ext)

    api = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    api.include_router(
        create_tus_router(
            prefix="files",
            files_dir=str(store.tus),
            max_size=max_bytes,
            days_to_keep=keep_days,
            pre_create_hook=pre_create,
            on_upload_complete=complete,
        )
    )
    return api


def _discard(data: Path) -> None:
    data.unlink(missing_ok=True)
    data.with_name(data.name + ".info").unlink(missing_ok=True)


def _metadata_ticket(value: str) -> str:
    """The ``ticket`` from a tus ``Upload-Metadata`` header (``key base64,key base64``)."""
    for pair in value.split(","):
        key, _, encoded = pair.strip().partition(" ")
        if key == "ticket":
            try:
                return base64.b64decode(encoded, validate=True).decode()
            except ValueError:
                return ""
    return ""


class TusGuard:
    """ASGI middleware in front of the tus server (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        store: FolderStore,
        csrf: Csrf,
        *,
        max_bytes: int,
        volume: RateLimit,
    ):
        self.app, self.store, self.csrf = app, store, csrf
        self.max_bytes, self.volume = max_bytes, volume

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method = (headers.get("x-http-method-override") or str(scope["method"])).upper()
        refusal = self._check(scope, method, headers)
        if refusal:
            status, code = refusal
            if code in ("too_large", "not_video"):
                self.store.forget(_metadata_ticket(headers.get("upload-metadata", "")))
            return await _refuse(send, status, code)
        if method == "PATCH" and headers.get("upload-offset") == "0":
            return await self._sniffed(scope, receive, send)
        return await self.app(scope, receive, send)

    def _check(self, scope: Scope, method: str, headers: dict[str, str]) -> tuple[int, str] | None:
        if method not in _ALLOWED:
            return 405, "not_allowed"
        if method in ("HEAD", "OPTIONS"):
            return None
        if not self.csrf.valid(_cookie(headers, CSRF_COOKIE), headers.get(CSRF_HEADER)):
            return 403, "bad_token"
        address = (scope.get("client") or ("?", 0))[0]
        if method == "POST":
            length = headers.get("upload-length", "")
            if "upload-concat" in headers or "upload-defer-length" in headers:
                return 400, "not_allowed"
            if int(headers.get("content-length") or 0) > 0:
                return 400, "not_allowed"  # creation-with-upload would skip the sniffing
            if not length.isdigit():
                return 400, "not_allowed"
            if int(length) > self.max_bytes:
                return 413, "too_large"
            return None  # starts are counted at /start, which issues the ticket
        size = headers.get("content-length", "")
        if not size.isdigit() or int(size) > self.max_bytes:
            return 413, "too_large"
        if not self.volume.take(address, int(size)):
            return 429, "rate_limited"
        return None

    async def _sniffed(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read the first chunk's first bytes, refuse a non-video, else replay them to tus."""
        held: list[Message] = []
        head, more = b"", True
        while more and len(head) < NEEDED:
            message = await receive()
            held.append(message)
            if message["type"] != "http.request":
                break
            head += message.get("body", b"")
            more = message.get("more_body", False)
        if container(head[:NEEDED]) is None:
            uid = scope["path"].rstrip("/").rsplit("/", 1)[-1]
            self._drop_upload(uid)
            return await _refuse(send, 415, "not_video")

        async def replay() -> Message:
            return held.pop(0) if held else await receive()

        await self.app(scope, replay, send)

    def _drop_upload(self, uid: str) -> None:
        """Delete a refused upload's tus files and its ticket (the uid is checked, not trusted)."""
        if not uid.isalnum():
            return
        data = self.store.tus / uid
        try:
            info = json.loads(data.with_name(uid + ".info").read_text("utf-8"))
            self.store.forget(str(info.get("metadata", {}).get("ticket", "")))
        except (OSError, ValueError, AttributeError):
            pass
        _discard(data)


def _cookie(headers: dict[str, str], name: str) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


async def _refuse(send: Send, status: int, code: str) -> None:
    body = json.dumps({"error": code}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"tus-resumable", b"1.0.0"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
