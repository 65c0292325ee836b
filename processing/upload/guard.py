"""What keeps a public page usable by strangers and hard to abuse.

* CSRF: a random cookie (``HttpOnly``, ``SameSite=Strict``) and, in the page, a
  token that is its HMAC under a per-process secret; every request that
  changes something carries the token (a header, or a form field) and is
  refused unless it matches the cookie. Another site can neither read the
  token nor make the browser send the cookie.
* Rate limits per client address over a rolling hour: uploads started, bytes.
* Headers: a strict Content-Security-Policy (everything from this host only,
  no inline script or style), no referrer (the private link's token must not
  leak), no framing, no caching of pages.

The review app's guards (``processing/web/guard.py``) are for signed-in
editors; these are for anonymous visitors (no session to bind a token to). Both
send their headers through the review app's ``SecurityHeaders`` middleware.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import defaultdict, deque

CSRF_COOKIE = "reel_csrf"
CSRF_HEADER = "x-csrf-token"


def csp(connect: str = "") -> str:
    """Nothing is loaded from another host, no inline code runs, no form posts elsewhere.

    Args:
        connect: One more origin the page's script may send to (the bucket, with
            an ``s3://`` target); it is a destination for bytes, never a source
            of anything the page runs or shows.
    """
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        f"media-src 'self' blob:; connect-src 'self'{' ' + connect if connect else ''}; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )


#: Sent besides the CSP by :class:`processing.web.guard.SecurityHeaders`, with ``no-store``.
HEADERS = {
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "geolocation=(), microphone=(self), camera=(self)",
}


class Csrf:
    """Tokens bound to a browser's cookie by an HMAC under a secret made at start."""

    def __init__(self, secret: bytes | None = None):
        self._secret = secret or secrets.token_bytes(32)

    @staticmethod
    def new_cookie() -> str:
        return secrets.token_urlsafe(24)

    def token(self, cookie: str) -> str:
        return hmac.new(self._secret, cookie.encode(), hashlib.sha256).hexdigest()

    def valid(self, cookie: str | None, token: str | None) -> bool:
        if not cookie or not token:
            return False
        return hmac.compare_digest(self.token(cookie), token)


class RateLimit:
    """At most ``limit`` units per address in any rolling ``window`` seconds."""

    def __init__(self, limit: int, window: float = 3600.0):
        self.limit = limit
        self.window = window
        self._seen: dict[str, deque[tuple[float, int]]] = defaultdict(deque)
        self._lock = threading.Lock()

    def take(self, address: str, amount: int = 1) -> bool:
        """Count ``amount`` for ``address`` if it fits under the limit; False if it does not."""
        now = time.monotonic()
        with self._lock:
            seen = self._seen[address]
            while seen and seen[0][0] <= now - self.window:
                seen.popleft()
            if sum(n for _, n in seen) + amount > self.limit:
                return False
            seen.append((now, amount))
            return True
