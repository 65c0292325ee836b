"""The contributor upload page as a Starlette application (``reel upload serve``).

Routes: ``/`` the page, ``/start`` the form (before any video byte), ``/files``
the tus server (:mod:`.tus`) for a folder target, or ``/s3/sign``,
``/s3/parts`` and ``/s3/finish`` (:mod:`.s3routes`) for an ``s3://`` target, ``/l/<token>`` a
contributor's private link, ``/static/<name>`` the page's own script and style.
Nothing lists uploads.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from ..config import Config
from ..sidecar import MAX_TEXT, clean_text
from ..storage.s3client import SCHEME, S3Settings
from ..web.guard import SecurityHeaders
from . import page
from .guard import CSRF_COOKIE, CSRF_HEADER, HEADERS, Csrf, RateLimit, csp
from .s3routes import S3Routes
from .s3store import S3Store
from .sniff import container
from .store import FolderStore, UnknownLink
from .tus import ASGIApp, Receive, Scope, Send, TusGuard, tus_app

#: The page's files by the only names they are served under (no path from a request).
STATIC = {
    "tus.min.js": "application/javascript; charset=utf-8",
    "uppy.min.js": "application/javascript; charset=utf-8",
    "upload-s3.js": "application/javascript; charset=utf-8",
    "upload.js": "application/javascript; charset=utf-8",
    "upload.css": "text/css; charset=utf-8",
}
_MAX_FORM = 8192
#: Seconds between two sweeps of abandoned uploads (:meth:`.store.FolderStore.sweep`).
_SWEEP_EVERY = 600.0


class UploadSite:
    """State shared by the routes: settings, texts, the store, the guards."""

    def __init__(self, cfg: Config, target: str):
        up = cfg.upload
        self.cfg = cfg
        self.texts = cfg.upload_text
        self.langs = {code: t["lang_name"] for code, t in self.texts.items()}
        self.max_bytes = up.max_mb * 1024 * 1024
        self.store: FolderStore | S3Store = (
            S3Store(
                target,
                S3Settings.from_config(cfg.storage),
                max_bytes=self.max_bytes,
                presign_seconds=up.presign_seconds,
            )
            if target.startswith(SCHEME)
            else FolderStore(Path(target))
        )
        self.mode = "s3" if isinstance(self.store, S3Store) else "folder"
        self.csrf = Csrf()
        self.starts = RateLimit(up.starts_per_hour)
        self.volume = RateLimit(up.mb_per_hour * 1024 * 1024)
        self.swept = time.monotonic()
        self.store.sweep(up.abandoned_days * 86400)

    def lang(self, request: Request) -> str:
        asked = request.query_params.get("lang", "")
        if asked in self.texts:
            return asked
        for part in request.headers.get("accept-language", "").split(","):
            code = part.split(";")[0].strip().lower()[:2]
            if code in self.texts:
                return code
        return "en"

    def html(self, request: Request, render: Any, status: int = 200) -> Response:
        """``render(csrf_token)`` as a page, giving the browser its CSRF cookie if it has none."""
        cookie = request.cookies.get(CSRF_COOKIE) or ""
        fresh = not cookie
        cookie = cookie or Csrf.new_cookie()
        response = HTMLResponse(render(self.csrf.token(cookie)), status_code=status)
        if fresh:
            response.set_cookie(
                CSRF_COOKIE, cookie, httponly=True, samesite="strict",
                secure=request.url.scheme == "https", path="/",
            )  # fmt: skip
        return response

    # ------------------------------------------------------------------ routes

    async def index(self, request: Request) -> Response:
        lang = self.lang(request)
        sizes = {
            "max_bytes": self.max_bytes,
            "chunk_bytes": self.cfg.upload.chunk_kb * 1024,
            "keep_days": self.cfg.upload.keep_originals_days,
        }
        return self.html(
            request,
            lambda tok: page.upload_page(self.texts[lang], lang, self.langs, tok, sizes, self.mode),
        )

    async def start(self, request: Request) -> Response:
        """Check the form and record it; the video follows through tus with the ticket."""
        csrf = request.headers.get(CSRF_HEADER)
        if not self.csrf.valid(request.cookies.get(CSRF_COOKIE), csrf):
            return _error(403, "bad_token")
        raw = await request.body()
        if len(raw) > _MAX_FORM:
            return _error(413, "too_large")
        try:
            form = json.loads(raw)
            size, head = int(form["size"]), base64.b64decode(form["head"], validate=True)
        except (ValueError, KeyError, TypeError, binascii.Error):
            return _error(400, "failed")
        if not isinstance(form, dict) or form.get("website"):
            return _error(400, "failed")  # the honeypot was filled: not a person
        address = request.client.host if request.client else "?"
        if size > self.max_bytes:
            return _error(413, "too_large")
        if container(head) is None:
            return _error(415, "not_video")
        if not self.starts.take(address):
            return _error(429, "rate_limited")
        if time.monotonic() - self.swept > _SWEEP_EVERY:
            self.swept = time.monotonic()
            self.store.sweep(self.cfg.upload.abandoned_days * 86400)
        if isinstance(self.store, S3Store):
            # The bytes never pass through here: the whole declared size is counted now.
            if size < 1:
                return _error(400, "failed")
            if not self.volume.take(address, size):
                return _error(429, "rate_limited")
            wanted = self.cfg.upload.chunk_kb * 1024
            ticket, link, part = await run_in_threadpool(
                self.store.start, self.sidecar(form), size, wanted
            )
            return JSONResponse({"ticket": ticket, "link": f"/l/{link}", "part": part})
        ticket, link = self.store.start(self.sidecar(form))
        return JSONResponse({"ticket": ticket, "link": f"/l/{link}"})

    def sidecar(self, form: dict[str, Any]) -> dict[str, Any]:
        """The sidecar for what was entered (:mod:`processing.sidecar` reads it)."""
        text = {
            key: clean_text(form[key], MAX_TEXT[key]) or None
            if isinstance(form.get(key), str)
            else None
            for key in ("name", "message", "language")
        }
        if text["language"] not in {c for c, _ in page.SPOKEN}:
            text["language"] = None
        consent = form.get("consent") is True
        return {
            **text,
            # An unticked box is no consent (null): the clip is rendered for review but
            # kept out of the compilation. false is reserved for a withdrawal.
            "consent": True if consent else None,
            "anonymize": form.get("anonymize") is True,
            "consent_version": self.cfg.upload.consent_version if consent else None,
            "consent_time": datetime.now(UTC).isoformat(timespec="seconds") if consent else None,
            "via": "upload page",
        }

    async def link(self, request: Request) -> Response:
        """A contributor's private link: see the choices in force, withdraw or hide."""
        lang, token = self.lang(request), request.path_params["token"]
        path, notice = f"/l/{token}", ""
        try:
            state = self.store.sidecar(token)
        except UnknownLink:
            t = self.texts[lang]
            return self.html(
                request, lambda _: page.link_page(t, lang, self.langs, "/", None, None), 404
            )
        if request.method == "POST":
            raw = await request.body()  # a tiny url-encoded form: no multipart parser needed
            form = {k: v[0] for k, v in parse_qs(raw[:_MAX_FORM].decode("latin-1")).items()}
            if not self.csrf.valid(request.cookies.get(CSRF_COOKIE), form.get("csrf")):
                return _error(403, "bad_token")
            action = form.get("action", "")
            if action in ("withdraw", "hide"):
                state = self.store.change(token, action)
                notice = self.texts[lang]["withdrawn" if action == "withdraw" else "hidden"]
        t = self.texts[lang]
        return self.html(
            request, lambda tok: page.link_page(t, lang, self.langs, path, tok, state, notice)
        )

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return Response("not found", status_code=404, media_type="text/plain")
        data = resources.files(__package__).joinpath("static", name).read_bytes()
        return Response(data, media_type=STATIC[name])


def _error(status: int, code: str) -> JSONResponse:
    return JSONResponse({"error": code}, status_code=status)


def create_app(cfg: Config, target: str | Path | None = None) -> ASGIApp:
    """The upload site for ``target`` (default ``upload.target``), headers included."""
    site = UploadSite(cfg, str(target or cfg.upload.target))
    if isinstance(site.store, S3Store):
        return _s3_app(site, site.store)
    files = TusGuard(
        tus_app(site.store, site.max_bytes, cfg.upload.abandoned_days),
        site.store,
        site.csrf,
        max_bytes=site.max_bytes,
        volume=site.volume,
    )
    app = Starlette(routes=_routes(site))
    app.state.site = site

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        # The tus routes live at /files in their own FastAPI app (tuspyserver's router).
        path = scope.get("path", "")
        routed = files if path == "/files" or path.startswith("/files/") else app
        await routed(scope, receive, send)

    return SecurityHeaders(dispatch, csp(), HEADERS)


def _routes(site: UploadSite) -> list[Route]:
    return [
        Route("/", site.index),
        Route("/start", site.start, methods=["POST"]),
        Route("/l/{token}", site.link, methods=["GET", "POST"]),
        Route("/static/{name}", site.static),
    ]


def _s3_app(site: UploadSite, store: S3Store) -> ASGIApp:
    """The site for an ``s3://`` target: no tus; the browser may also send to the bucket."""
    s3 = S3Routes(store, site.csrf)
    app = Starlette(
        routes=[
            *_routes(site),
            Route("/s3/sign", s3.sign, methods=["POST"]),
            Route("/s3/parts", s3.parts, methods=["GET"]),
            Route("/s3/finish", s3.finish, methods=["POST"]),
        ]
    )
    app.state.site = site
    return SecurityHeaders(app, csp(store.origin()), HEADERS)
