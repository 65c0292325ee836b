"""The review app's small pages: sign-in and errors (no script; the app's stylesheet)."""

from __future__ import annotations

import html

from starlette.responses import HTMLResponse


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _page(
    title: str, body: str, status: int = 200, headers: dict[str, str] | None = None
) -> HTMLResponse:
    return HTMLResponse(
        f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>{_e(title)} · supportreel</title>
<link rel="stylesheet" href="/static/review.css">
</head>
<body><main class="login">{body}</main></body>
</html>
""",
        status_code=status,
        headers=headers,
    )


def login(
    error: str | None = None, status: int = 200, retry_after: int | None = None
) -> HTMLResponse:
    """The sign-in form, with ``error`` above it."""
    shown = f'<p class="error" role="alert">{_e(error)}</p>' if error else ""
    headers = {"retry-after": str(retry_after)} if retry_after else None
    return _page(
        "Sign in",
        f"""<h1>Clip review</h1>
<p class="muted">Sign in with the account staff gave you.</p>
{shown}
<form method="post" action="/login">
<label for="user">Account name</label>
<input id="user" name="user" autocomplete="username" autocapitalize="none" spellcheck="false"
 required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit" class="primary">Sign in</button>
</form>""",
        status,
        headers,
    )


def error(status: int, text: str) -> HTMLResponse:
    """A one-line error page."""
    return _page("Error", f'<h1>Clip review</h1><p class="error">{_e(text)}</p>', status)
