"""What every served page of supportreel needs before it does anything: the guard.

Generic pieces, shared by the review app and (later) the contributors' upload page:

* :class:`Sessions`: server-side sessions behind a random cookie that is
  ``Secure``, ``HttpOnly`` and ``SameSite=Strict`` (the ``__Host-`` prefix also
  pins it to this host and path ``/``). Nothing but the random id travels; a
  restart signs everybody out.
* CSRF: every session has its own token; :func:`check_csrf` refuses a change
  (any method but GET and HEAD) whose ``X-CSRF-Token`` header or ``csrf`` form
  field does not match, and one whose ``Origin`` names another host.
* :class:`RateLimit`: failed sign-ins per client address and per account name,
  in a sliding window.
* :class:`SecurityHeaders`: an ASGI middleware adding a strict
  Content-Security-Policy (no inline script or style, nothing from elsewhere
  but the media origins given), ``nosniff``, no referrer to other sites, no framing.
* :func:`parse_form`: a small ``application/x-www-form-urlencoded`` body reader
  (no multipart parser is installed, and none is needed).

Nothing here knows about clips or decisions.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The session cookie; ``__Host-`` makes browsers refuse it unless Secure, path / and no Domain.
COOKIE = "__Host-reel-session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD"})
#: Largest form body read (a sign-in form is a few hundred bytes).
MAX_FORM_BYTES = 16 << 10


class GuardRefusal(Exception):
    """A request the guard turns away; ``status`` and a one-line ``reason``."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class Session:
    """One signed-in person."""

    user: str
    """The account name."""
    display: str
    """The name recorded with their decisions."""
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    created: float = field(default_factory=time.monotonic)
    seen: float = field(default_factory=time.monotonic)


class Sessions:
    """Sessions kept in memory, by a random id (the cookie's value).

    Args:
        idle_seconds: A session unused this long is gone.
        max_seconds: A session older than this is gone, used or not.
        secure: Mark the cookie ``Secure`` (and ``__Host-``). Browsers accept
            that on ``http://127.0.0.1`` and ``http://localhost`` too, so only
            tests of plain-HTTP hosts need False.
    """

    def __init__(
        self, idle_seconds: float = 8 * 3600, max_seconds: float = 7 * 86400, secure: bool = True
    ):
        self.idle_seconds = idle_seconds
        self.max_seconds = max_seconds
        self.secure = secure
        self.cookie = COOKIE if secure else COOKIE.removeprefix("__Host-")
        self._by_id: dict[str, Session] = {}
        self._lock = threading.Lock()

    def start(self, response: Response, user: str, display: str) -> Session:
        """A new session for ``user``, its cookie set on ``response`` (a fresh id: no fixation)."""
        sid = secrets.token_urlsafe(32)
        session = Session(user=user, display=display)
        with self._lock:
            self._expire()
            self._by_id[sid] = session
        response.set_cookie(
            self.cookie,
            sid,
            max_age=int(self.max_seconds),
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="strict",
        )
        return session

    def get(self, request: Request) -> Session | None:
        """The request's live session, or None."""
        sid = request.cookies.get(self.cookie)
        if not sid:
            return None
        now = time.monotonic()
        with self._lock:
            session = self._by_id.get(sid)
            if session is None:
                return None
            if now - session.seen > self.idle_seconds or now - session.created > self.max_seconds:
                del self._by_id[sid]
                return None
            session.seen = now
            return session

    def end(self, request: Request, response: Response) -> None:
        """Forget the request's session and clear its cookie."""
        sid = request.cookies.get(self.cookie)
        with self._lock:
            self._by_id.pop(sid or "", None)
        response.delete_cookie(
            self.cookie, path="/", secure=self.secure, httponly=True, samesite="strict"
        )

    def _expire(self) -> None:
        now = time.monotonic()
        for sid, s in list(self._by_id.items()):
            if now - s.seen > self.idle_seconds or now - s.created > self.max_seconds:
                del self._by_id[sid]


def check_origin(request: Request) -> None:
    """Refuse a change sent from a page of another host (``Origin`` or ``Referer``).

    Compared with the ``Host`` header, not the scheme: behind a TLS proxy the
    browser's origin is ``https://`` while the app is spoken to in plain HTTP.

    Raises:
        GuardRefusal: 403 when the request names another host.
    """
    host = request.headers.get("host", "")
    origin = request.headers.get("origin") or request.headers.get("referer")
    if origin is None:
        return  # not a browser form or fetch; the CSRF token still has to match
    if origin == "null" or urlsplit(origin).netloc != host:
        raise GuardRefusal(403, "this change was sent from another site's page")


def check_csrf(request: Request, session: Session, form_token: str | None = None) -> None:
    """Refuse a change without this session's CSRF token (header or form field).

    Raises:
        GuardRefusal: 403 when the token is missing or wrong.
    """
    if request.method in SAFE_METHODS:
        return
    check_origin(request)
    token = request.headers.get(CSRF_HEADER) or form_token or ""
    if not hmac.compare_digest(token.encode(), session.csrf.encode()):
        raise GuardRefusal(403, "missing or wrong CSRF token: reload the page and try again")


class RateLimit:
    """At most ``attempts`` failures per key in ``window`` seconds.

    Keys are whatever the caller names (a client address, an account name);
    a success does not clear the count, so guessing slowly stays slow.
    """

    def __init__(self, attempts: int = 5, window: float = 300.0):
        self.attempts = attempts
        self.window = window
        self._fails: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, keys: Iterable[str]) -> float:
        """Seconds until one more attempt is allowed for all ``keys`` (0 when it is now)."""
        now = time.monotonic()
        wait = 0.0
        with self._lock:
            for key in keys:
                q = self._fails.get(key)
                if not q:
                    continue
                while q and now - q[0] > self.window:
                    q.popleft()
                if len(q) >= self.attempts:
                    wait = max(wait, self.window - (now - q[0]))
        return wait

    def failed(self, keys: Iterable[str]) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._fails.setdefault(key, deque()).append(now)


def csp(media_sources: Iterable[str] = ()) -> str:
    """A strict policy: all from this origin only, media also from ``media_sources``."""
    media = " ".join(["'self'", *sorted(set(media_sources))])
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"media-src {media}; connect-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )


#: The review app's headers besides the CSP (the upload page passes its own).
HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",  # no-referrer would make Origin "null"
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


class SecurityHeaders:
    """ASGI middleware: ``policy`` and ``headers`` on every response (errors included).

    Pages and API answers are ``no-store``: they carry contributor names and
    decisions, which a shared computer's cache must not keep.
    """

    def __init__(self, app: ASGIApp, policy: str, headers: Mapping[str, str] = HEADERS):
        self.app = app
        self.headers = [(b"content-security-policy", policy.encode())] + [
            (k.encode(), v.encode()) for k, v in headers.items()
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() not in {h for h, _ in self.headers}
                ]
                headers += self.headers
                if not any(k.lower() == b"cache-control" for k, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


async def parse_form(request: Request) -> dict[str, str]:
    """A urlencoded form body as a dict (first value of each field).

    Raises:
        GuardRefusal: 413 for a body over :data:`MAX_FORM_BYTES`, 415 for another type.
    """
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise GuardRefusal(415, "expected a form")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise GuardRefusal(413, "form too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError) as exc:
        raise GuardRefusal(400, "unreadable form") from exc
    out: dict[str, str] = {}
    for k, v in pairs:
        out.setdefault(k, v)
    return out


def client_address(request: Request) -> str:
    """The client's address (uvicorn puts the proxy's ``X-Forwarded-For`` here when trusted)."""
    return request.client.host if request.client else "unknown"
