"""The two routes of an ``s3://`` target: presigning one S3 request, and finishing.

The page's Uppy asks ``/s3/sign`` for each S3 request of its multipart upload
(create, each part, complete, abort) and gets a URL signed for
``upload.presign_seconds``, for that ticket's staging key only
(:meth:`.s3store.S3Store.sign`); listing the parts already sent, when
resuming, is answered by the app itself at ``/s3/parts``. When the bucket holds every part it calls
``/s3/finish``, where the object is checked and published
(:meth:`.s3store.S3Store.finish`). Both need the CSRF token and a ticket from
``/start``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from html import escape
from typing import TypeVar

from botocore import exceptions as bex
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .guard import CSRF_COOKIE, CSRF_HEADER, Csrf
from .s3store import Refused, S3Store
from .store import UnknownLink

log = logging.getLogger(__name__)
T = TypeVar("T")
_MAX_BODY = 2048
#: The header carrying the ticket on ``GET /s3/parts`` (kept out of URLs and logs).
TICKET = "x-upload-ticket"


class S3Routes:
    """``/s3/sign`` and ``/s3/finish`` for one :class:`.s3store.S3Store`."""

    def __init__(self, store: S3Store, csrf: Csrf):
        self.store, self.csrf = store, csrf

    async def _form(self, request: Request) -> dict[str, object] | Response:
        if not self.csrf.valid(request.cookies.get(CSRF_COOKIE), request.headers.get(CSRF_HEADER)):
            return _error(403, "bad_token")
        raw = await request.body()
        try:
            form = json.loads(raw[:_MAX_BODY]) if len(raw) <= _MAX_BODY else None
        except ValueError:
            form = None
        if not isinstance(form, dict) or not isinstance(form.get("ticket"), str):
            return _error(400, "failed")
        return form

    async def _in_store(self, what: str, call: Callable[..., T], *args: object) -> T | Response:
        """``call(*args)`` in a worker thread, its refusals and store errors as the page's answers.

        An unknown ticket is ``bad_token``; a refusal keeps its own status and
        code; a store error is logged by type only (never the ticket) and is
        ``failed``, which the page offers to try again.
        """
        try:
            return await run_in_threadpool(call, *args)
        except UnknownLink:
            return _error(403, "bad_token")
        except Refused as exc:
            return _error(exc.status, exc.code)
        except (bex.BotoCoreError, bex.ClientError) as exc:
            log.warning("%s failed: %s", what, type(exc).__name__)
            return _error(503, "failed")

    async def sign(self, request: Request) -> Response:
        form = await self._form(request)
        if isinstance(form, Response):
            return form
        upload_id, part = form.get("uploadId"), form.get("partNumber")
        url = await self._in_store(
            "signing",
            self.store.sign,
            str(form["ticket"]),
            str(form.get("method", "")).upper(),
            upload_id if isinstance(upload_id, str) else None,
            part if isinstance(part, int) and not isinstance(part, bool) else None,
        )
        return url if isinstance(url, Response) else JSONResponse({"url": url})

    async def parts(self, request: Request) -> Response:
        """S3's ``ListParts`` answer for the page's Uppy, from the app's own listing."""
        if not self.csrf.valid(request.cookies.get(CSRF_COOKIE), request.headers.get(CSRF_HEADER)):
            return _error(403, "bad_token")
        ticket = request.headers.get(TICKET, "")
        parts = await self._in_store("listing parts", self.store.parts, ticket)
        if isinstance(parts, Response):
            return parts
        body = "".join(
            f"<Part><PartNumber>{int(p['PartNumber'])}</PartNumber>"
            f"<ETag>{escape(str(p['ETag']))}</ETag><Size>{int(p['Size'])}</Size></Part>"
            for p in parts
        )
        xml = f'<?xml version="1.0" encoding="UTF-8"?><ListPartsResult>{body}</ListPartsResult>'
        return Response(xml, media_type="application/xml")

    async def finish(self, request: Request) -> Response:
        form = await self._form(request)
        if isinstance(form, Response):
            return form
        # On a store error the ticket and the staged bytes stay: "Try again" finishes it later.
        uid = await self._in_store("finishing an upload", self.store.finish, str(form["ticket"]))
        if isinstance(uid, Response):
            return uid
        log.info("upload %s arrived", uid)
        return JSONResponse({"ok": True})


def _error(status: int, code: str) -> JSONResponse:
    return JSONResponse({"error": code}, status_code=status)
