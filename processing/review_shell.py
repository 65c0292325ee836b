"""The review page's frame: toolbar, keyboard help and the HTML document around the cards.

Two shells around the same cards and script:

* :class:`StaticShell`: the offline page (``OUT/review/index.html``): styles and
  script inline, a Content-Security-Policy in a ``<meta>`` allowing exactly the
  places its links point to, decisions exported as ``decisions.json``.
* :class:`AppShell`: the page ``reel review serve`` serves: styles and script
  from the app (its CSP header forbids anything inline), the signed-in editor,
  "Send the cut" and "Sign out" instead of the name field and the export.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from .report import Report


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _blob(data: dict[str, Any]) -> str:
    """JSON for a ``<script type="application/json">``: it can close no element, open no comment."""
    return (
        json.dumps(data, ensure_ascii=False)
        .replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
    )


def _summary_line(report: Report, rendered: int, refused: int) -> str:
    made = _e(report.generated_at)
    return f"""<div class="top"><p class="muted">{rendered} rendered, {refused} rejected ·
report of {made} · page built {_e(datetime.now(UTC).isoformat(timespec="seconds"))}</p></div>"""


_KEYS = [
    ("<kbd>J</kbd> / <kbd>↓</kbd>", "next clip"),
    ("<kbd>K</kbd> / <kbd>↑</kbd>", "previous clip"),
    ("<kbd>A</kbd>", "approve the clip (adds it to the end of the running order)"),
    ("<kbd>R</kbd>", "reject the clip"),
    ("<kbd>U</kbd>", "clear the decision"),
    ("<kbd>[</kbd> or <kbd>Alt</kbd>+<kbd>↑</kbd>", "move the approved clip earlier"),
    ("<kbd>]</kbd> or <kbd>Alt</kbd>+<kbd>↓</kbd>", "move the approved clip later"),
    ("<kbd>P</kbd>", "play or pause the clip"),
]


def _keys_help(extra: list[tuple[str, str]], closing: str) -> str:
    keys = [*_KEYS, *extra]
    keys += [
        ("<kbd>?</kbd>", "show or hide this list"),
        ("<kbd>Tab</kbd>", "reach every button; Enter or Space presses it"),
    ]
    rows = "".join(f"<dt>{k}</dt><dd>{d}</dd>" for k, d in keys)
    return f"""<details id="keys"><summary>Keyboard shortcuts</summary>
<p>Shortcuts act on the clip that has focus (click a card or move with J and K). They
are off while you type in a text field; in a video player the arrow keys seek.</p>
<dl>{rows}</dl>
<p>{closing}</p></details>"""


@dataclass(frozen=True)
class StaticShell:
    """The offline page: everything inline, decisions exported as a file."""

    def toolbar(self, report: Report, rendered: int, refused: int) -> str:
        return f"""<a class="skip" href="#review">Skip to the clips</a>
<div class="toolbar"><div class="top">
  <h1>Clip review</h1>
  <label for="editor">Your name</label>
  <input id="editor" name="editor" autocomplete="name" placeholder="recorded with your decisions">
  <button type="button" id="export" class="primary">Export decisions.json <kbd>E</kbd></button>
  <button type="button" id="help-toggle" aria-controls="keys">Keys <kbd>?</kbd></button>
  <p id="status" role="status" aria-live="polite"></p>
</div></div>
{_summary_line(report, rendered, refused)}"""

    def keys_help(self) -> str:
        return _keys_help(
            [("<kbd>E</kbd>", "export decisions.json")],
            "Decisions are kept in this browser until you export them. Then run "
            "<code>reel review apply decisions.json --out OUTPUT_FOLDER</code>; the compilation "
            "uses only approved clips, in this order. With <code>reel review serve</code> "
            "every change is saved at once instead.",
        )

    def document(self, body: str, data: dict[str, Any], media: list[str], images: list[str]) -> str:
        css = resources.files("processing").joinpath("review.css").read_text("utf-8")
        js = resources.files("processing").joinpath("review.js").read_text("utf-8")
        csp = (
            f"default-src 'none'; img-src data: {origins(images) if images else ''}; "
            f"media-src {origins(media)}; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
            "base-uri 'none'; form-action 'none'"
        )
        return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{_e(csp)}">
<meta name="referrer" content="no-referrer">
<title>Clip review · supportreel</title>
<style>
{css}</style>
</head>
<body>
{body}
<script type="application/json" id="review-data">{_blob(data)}</script>
<script>
{js}</script>
</body>
</html>
"""


@dataclass(frozen=True)
class AppShell:
    """The served page: the signed-in editor, saves on the server, "Send the cut".

    Args:
        editor: The signed-in editor's name (recorded with each change).
        csrf: The session's CSRF token, sent back with every change.
        can_send: Whether the app can resume or start a Prefect run.
        arrivals: How many uploads came through the upload page, and when the last did.
    """

    editor: str
    csrf: str
    can_send: bool = True
    arrivals: str = ""

    def toolbar(self, report: Report, rendered: int, refused: int) -> str:
        send = (
            '<button type="button" id="send" class="primary">Send the cut</button>'
            if self.can_send
            else ""
        )
        return f"""<a class="skip" href="#review">Skip to the clips</a>
<div class="toolbar"><div class="top">
  <h1>Clip review</h1>
  <p class="who">Signed in as <strong dir="auto">{_e(self.editor)}</strong></p>
  {f'<p class="arrivals" id="arrivals">{_e(self.arrivals)}</p>' if self.arrivals else ""}
  {send}
  <button type="button" id="help-toggle" aria-controls="keys">Keys <kbd>?</kbd></button>
  <form method="post" action="/logout" class="logout">
    <input type="hidden" name="csrf" value="{_e(self.csrf)}">
    <button type="submit">Sign out</button></form>
  <p id="status" role="status" aria-live="polite"></p>
</div></div>
{_summary_line(report, rendered, refused)}"""

    def keys_help(self) -> str:
        return _keys_help(
            [],
            "Every change is saved on the server at once, with your name and the time. "
            "<strong>Send the cut</strong> hands the decisions to the paused campaign run "
            "(or builds the compilation when no run waits); the preview above then shows it.",
        )

    def document(self, body: str, data: dict[str, Any], media: list[str], images: list[str]) -> str:
        data = {**data, "app": {"csrf": self.csrf, "editor": self.editor}}
        return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>Clip review · supportreel</title>
<link rel="stylesheet" href="/static/review.css">
<script src="/static/review.js" defer></script>
</head>
<body>
{body}
<script type="application/json" id="review-data">{_blob(data)}</script>
</body>
</html>
"""


Shell = StaticShell | AppShell


def origins(urls: list[str]) -> str:
    """CSP sources allowing exactly the places ``urls`` point to."""
    sources = set()
    for u in urls:
        parts = urlsplit(u)
        if parts.scheme in ("http", "https") and parts.netloc:
            sources.add(f"{parts.scheme}://{parts.netloc}")
        elif parts.scheme == "file":
            sources.add("file:")
        elif not parts.scheme:
            # Relative links: the page's own origin ('self' does not cover file: pages).
            sources.update(("'self'", "file:"))
    return " ".join(sorted(sources)) or "'none'"
