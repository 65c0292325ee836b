"""``reel review serve``: the review page of one output, served to signed-in editors.

Editors approve, reject and reorder as on the offline page; every change is
sent at once, checked (:func:`processing.review_changes.apply_change` refuses
what may not go in the film) and recorded in the campaign state under the
output's lock, with the editor's name and the time. "Send the cut" hands the
saved decisions to Prefect through an injected :class:`CutSender` (the
``flows`` package has the Prefect one), so this package imports no Prefect.

Nothing but the sign-in page and the stylesheet answers without a session.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from .. import publish, review_changes, state
from ..config import Config
from ..decisions import DecisionsError
from ..errors import ReelError
from ..report import read_report
from ..review import render_review
from ..review_shell import AppShell
from ..storage import Output
from ..upload import store as upload_store
from . import accounts, guard, media, pages

log = logging.getLogger(__name__)

#: How long a save waits for the output's lock (a processing run holds it for its whole run).
SAVE_LOCK_WAIT = 10.0
MAX_JSON_BYTES = 256 << 10
_RUN_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True)
class RunNews:
    """What the page says about the run "Send the cut" resumed or started."""

    run_id: str
    message: str
    final: bool = False
    """The run will not change any more by itself (finished, failed, or paused again)."""
    ok: bool = False
    """It finished and the compilation it built is in place."""


class CutSender(Protocol):
    """Hands the saved decisions to the orchestrator (see ``flows.review_send``)."""

    def send(self, out: str, editor: str) -> RunNews:
        """Resume the paused campaign run of ``out``, or start building its compilation."""

    def status(self, run_id: str) -> RunNews:
        """Where the run stands now."""


Handler = Callable[[Request, guard.Session], Awaitable[Response]]


class ReviewApp:
    """The app's state: one output, its accounts file, sessions, the save lock."""

    def __init__(
        self,
        dest: Output,
        accounts_file: Path,
        cfg: Config,
        sender: CutSender | None,
        sessions: guard.Sessions,
    ):
        self.dest = dest
        self.accounts_file = accounts_file
        self.sender = sender
        self.sessions = sessions
        self.logins = guard.RateLimit(attempts=5, window=300.0)
        # The campaign lock is shared by the threads of a process: this one makes
        # two editors' saves (two request threads) take turns.
        self.saving = threading.Lock()
        orchestration = dataclasses.replace(cfg.orchestration, lock_wait_seconds=SAVE_LOCK_WAIT)
        self.cfg = dataclasses.replace(cfg, orchestration=orchestration)

    # ----------------------------------------------------------------- access

    def signed_in(
        self, handler: Handler, *, page: bool = False, form: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        """``handler`` for signed-in editors only; changes also need the CSRF token.

        Args:
            page: Send a browser without a session to the sign-in page (else 401).
            form: ``handler`` checks the token itself, from its form.
        """

        async def endpoint(request: Request) -> Response:
            session = self.sessions.get(request)
            if session is None:
                if page:
                    return RedirectResponse("/login", status_code=303)
                return JSONResponse({"error": "sign in first"}, status_code=401)
            try:
                if not form:
                    guard.check_csrf(request, session)
                return await handler(request, session)
            except guard.GuardRefusal as exc:
                return JSONResponse({"error": exc.reason}, status_code=exc.status)

        return endpoint

    async def login_form(self, request: Request) -> Response:
        if self.sessions.get(request) is not None:
            return RedirectResponse("/", status_code=303)
        return pages.login()

    async def login(self, request: Request) -> Response:
        try:
            guard.check_origin(request)
            form = await guard.parse_form(request)
        except guard.GuardRefusal as exc:
            return pages.error(exc.status, exc.reason)
        user = form.get("user", "").strip().lower()[:64]
        keys = [f"addr:{guard.client_address(request)}", f"user:{user}"]
        wait = self.logins.retry_after(keys)
        if wait > 0:
            return pages.login(
                f"Too many failed sign-ins: try again in {int(wait) + 1} s.", 429, int(wait) + 1
            )
        try:
            editor = await run_in_threadpool(
                accounts.check, self.accounts_file, user, form.get("password", "")
            )
        except accounts.AccountsError as exc:
            log.warning("sign-in refused: %s", exc)
            return pages.error(503, "Sign-in is not set up: ask staff to add editors.")
        if editor is None:
            self.logins.failed(keys)
            return pages.login("Wrong account name or password.", 401)
        response = RedirectResponse("/", status_code=303)
        self.sessions.start(response, editor.user, editor.name)
        return response

    async def logout(self, request: Request, session: guard.Session) -> Response:
        try:
            form = await guard.parse_form(request)
            guard.check_csrf(request, session, form.get("csrf"))
        except guard.GuardRefusal as exc:
            return pages.error(exc.status, exc.reason)
        response = RedirectResponse("/login", status_code=303)
        self.sessions.end(request, response)
        return response

    # ----------------------------------------------------------------- pages

    async def page(self, request: Request, session: guard.Session) -> Response:
        can_send = self.sender is not None
        try:
            arrivals = await run_in_threadpool(
                upload_store.arrivals, self.cfg.upload.target, self.cfg
            )
            shell = AppShell(session.display, session.csrf, can_send, arrivals)
            html = await run_in_threadpool(self._render, shell)
        except ReelError as exc:
            return pages.error(503, str(exc).splitlines()[0])
        return Response(html, media_type="text/html; charset=utf-8")

    def _render(self, shell: AppShell) -> str:
        if self.dest.remote:  # the clips are needed locally for the posters and sheets
            publish.stage_report(self.dest)
            entries = read_report(self.dest.root).entries
            publish.stage_for_review(self.dest, entries)
        return render_review(
            self.dest.root, url_for=lambda rel: "/media/" + rel, inline_images=False, shell=shell
        )

    async def media(self, request: Request, session: guard.Session) -> Response:
        rel = str(request.path_params["path"])
        response = await run_in_threadpool(media.media_response, self.dest, rel)
        if response is None:
            return JSONResponse({"error": "no such file"}, status_code=404)
        return response

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        kinds = {"review.js": "text/javascript", "review.css": "text/css"}
        if name not in kinds:
            return JSONResponse({"error": "no such file"}, status_code=404)
        text = resources.files("processing").joinpath(name).read_text("utf-8")
        return Response(text, media_type=f"{kinds[name]}; charset=utf-8")

    # ----------------------------------------------------------------- decisions

    async def decisions(self, request: Request, session: guard.Session) -> Response:
        if request.method == "GET":
            return await self._answer(lambda: review_changes.page_state(self.dest.root))
        body = await request.body()
        if len(body) > MAX_JSON_BYTES:
            return JSONResponse({"error": "change too large"}, status_code=413)
        try:
            change = json.loads(body)
        except ValueError:
            return JSONResponse({"error": "expected a JSON change"}, status_code=400)
        if not isinstance(change, dict):
            return JSONResponse({"error": "expected a JSON object"}, status_code=400)
        return await self._answer(lambda: self._save(change, session.display))

    def _save(self, change: dict[str, Any], editor: str) -> dict[str, Any]:
        with self.saving, state.campaign_lock(self.dest, "review app", self.cfg):
            publish.stage_report(self.dest)  # the store's decisions are the truth
            review_changes.apply_change(self.dest.root, change, editor)
            self.dest.publish([publish.DECISIONS])
        log.info("review app: %s saved %s", editor, change.get("action"))
        return review_changes.page_state(self.dest.root)

    async def _answer(self, work: Callable[[], dict[str, Any]]) -> Response:
        try:
            return JSONResponse(await run_in_threadpool(work))
        except state.StateLocked as exc:
            return JSONResponse({"error": f"not saved, the output is busy: {exc}"}, status_code=409)
        except (DecisionsError, state.StateError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)

    # ----------------------------------------------------------------- the cut

    async def send(self, request: Request, session: guard.Session) -> Response:
        if self.sender is None:
            return JSONResponse({"error": "this app cannot reach Prefect"}, status_code=503)
        sender = self.sender
        try:
            news = await run_in_threadpool(sender.send, self.dest.uri, session.display)
        except ReelError as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        log.info("review app: %s sent the cut: %s", session.display, news.message)
        return JSONResponse(dataclasses.asdict(news))

    async def run(self, request: Request, session: guard.Session) -> Response:
        run_id = str(request.path_params["run_id"])
        if self.sender is None or not _RUN_ID.match(run_id):
            return JSONResponse({"error": "no such run"}, status_code=404)
        news = await run_in_threadpool(self.sender.status, run_id)
        return JSONResponse(dataclasses.asdict(news))


def create_app(
    dest: Output,
    accounts_file: Path,
    cfg: Config,
    *,
    sender: CutSender | None = None,
    secure_cookies: bool = True,
) -> Any:
    """The review app for ``dest``, wrapped in the security headers (an ASGI app for uvicorn).

    Args:
        dest: The output (``open_output``); a bucket's files are served by redirects.
        accounts_file: Editors' accounts (``reel review add-editor``).
        cfg: The campaign settings.
        sender: Resumes or starts the Prefect runs; None hides "Send the cut".
        secure_cookies: Mark the session cookie Secure (only plain-HTTP tests turn it off).
    """
    app = ReviewApp(dest, accounts_file, cfg, sender, guard.Sessions(secure=secure_cookies))
    auth = app.signed_in
    routes = [
        Route("/login", app.login_form, methods=["GET"]),
        Route("/login", app.login, methods=["POST"]),
        Route("/logout", auth(app.logout, form=True), methods=["POST"]),
        Route("/", auth(app.page, page=True), methods=["GET"]),
        Route("/static/{name}", app.static, methods=["GET"]),
        Route("/favicon.ico", lambda request: Response(status_code=204), methods=["GET"]),
        Route("/media/{path:path}", auth(app.media), methods=["GET"]),
        Route("/api/decisions", auth(app.decisions), methods=["GET", "POST"]),
        Route("/api/send", auth(app.send), methods=["POST"]),
        Route("/api/runs/{run_id}", auth(app.run), methods=["GET"]),
    ]
    media_origins = []
    if dest.remote:  # presigned redirects lead the browser to the store
        parts = urlsplit(dest.url_for("clips/x.mp4"))
        media_origins.append(f"{parts.scheme}://{parts.netloc}")
    return guard.SecurityHeaders(Starlette(routes=routes), guard.csp(media_origins))
