"""The editors' review page: ``OUT/review/index.html``.

One self-contained HTML file (styles and script inline, posters and contact
sheets as ``data:`` URIs, system fonts) that works opened from disk, from a web
server, or through presigned S3 URLs: every other file it names (the clips, the
compilation) goes through a ``url_for(relative_key) -> str`` hook, relative
links by default. A Content-Security-Policy keeps the page from loading
anything else.

It shows the compilation preview with its chapters (when
``OUT/compilation/manifest.json`` exists and still matches the report and the
decisions; otherwise it says why and shows no player), the running order of approved clips,
one card per rendered submission (poster, contact sheet, player, contributor
text, status, quality flags) and the rejected submissions with their reasons.
Editors approve, reject and reorder there and export ``decisions.json``, which
``reel review apply`` records (:mod:`processing.decisions`).
"""

from __future__ import annotations

import base64
import html
import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from . import review_compilation, review_faces, state
from .decisions import Decisions, DecisionsError, apply_decisions, load_decisions
from .errors import FFmpegError
from .fsutil import atomic_output
from .quality import RULES
from .sheets import SHEET_FRAMES, prune_pictures, thumb_key, thumbs

__all__ = ["Decisions", "apply_decisions", "build_review", "load_decisions", "page_path"]

log = logging.getLogger(__name__)

UrlFor = Callable[[str], str]
"""Turns a key relative to the output folder (``clips/<id>.mp4``) into a URL the page can use."""

#: Where the page and its cached pictures live, relative to the output folder.
PAGE = "review/index.html"
MEDIA = "review/media"

#: Clips named on a duplicate flag; the rest are counted.
DUPLICATES_SHOWN = 4

_LANG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")


def page_path(out: Path) -> Path:
    return out / PAGE


def relative_url(key: str) -> str:
    """The default hook: ``key`` relative to ``review/index.html``."""
    return "../" + quote(key)


def build_review(
    out: Path,
    *,
    url_for: UrlFor | None = None,
    inline_images: bool = True,
) -> Path:
    """Write ``out/review/index.html`` from ``out/report.json`` and return its path.

    Args:
        out: The output folder ``reel process`` wrote.
        url_for: Maps keys relative to ``out`` to URLs (presigned ones on S3);
            by default links are relative to the page.
        inline_images: Embed posters and contact sheets as ``data:`` URIs (the
            page then needs nothing but the clips); otherwise they are linked
            through ``url_for`` as ``review/media/…``.

    Raises:
        ReelError: There is no readable ``report.json``.
    """
    url = url_for or relative_url
    report = state.load_report(out)  # a StateError (a ReelError) says what to run
    subs = [s for s in report.get("submissions") or [] if isinstance(s, dict) and s.get("id")]
    size = (report.get("targets") or {}).get("size") or [1920, 1080]
    frame = (int(size[0]), int(size[1]))

    withdrawn = [_withdrawn(s) for s in subs if s.get("consent") is False]
    subs = [s for s in subs if s.get("consent") is not False]
    rendered = [s for s in subs if s.get("output") and (out / str(s["output"])).is_file()]
    refused = [s for s in subs if s not in rendered]
    pictures = {s["id"]: _pictures(out, s, frame, url, inline_images) for s in rendered}
    prune_pictures(out / MEDIA, {_thumb_key(out, s) for s in rendered})
    try:
        decisions = load_decisions(out)
    except DecisionsError as exc:
        log.warning("review page: ignoring decisions: %s", exc)
        decisions = None

    media_urls = [url(str(s["output"])) for s in rendered]
    manifest = review_compilation.read_for_page(out, report)
    if manifest is not None and not manifest["stale"]:
        media_urls.append(url(manifest["output"]))
    image_urls = [u for p in pictures.values() for u in p.values() if not u.startswith("data:")]

    names = {str(s["id"]): _display_name(s) for s in rendered + withdrawn}
    data = _script_data(report, out, rendered + withdrawn, decisions)
    body = "\n".join(
        [
            _toolbar(report, len(rendered), len(refused)),
            '<main id="main">',
            _keys_help(),
            review_compilation.section(manifest, url, names),
            _order_section(),
            _section(
                "review",
                f"Rendered clips ({len(rendered)})",
                [_card(s, pictures[s["id"]], url, names) for s in rendered],
                "No rendered clips yet.",
            ),
            _section(
                "rejected",
                f"Rejected by the pipeline ({len(refused)})",
                [_rejected_card(s) for s in refused],
                "No submission was rejected.",
            ),
            _section(
                "withdrawn",
                f"Consent withdrawn ({len(withdrawn)})",
                [_rejected_card(s) for s in withdrawn],
                "No contributor withdrew consent.",
            ),
            "</main>",
        ]
    )
    page = _document(body, data, media_urls, image_urls)
    dst = page_path(out)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(dst) as part:
        part.write_text(page, "utf-8")
    return dst


# --------------------------------------------------------------------- data


def _script_data(
    report: dict[str, Any], out: Path, clips: list[dict[str, Any]], decisions: Decisions | None
) -> dict[str, Any]:
    """What the page's script starts from (withdrawn clips too, so their decisions are kept)."""
    return {
        "batch": str(report.get("source", "")) + "|" + str(out.name),
        "clips": {
            s["id"]: {
                "name": _display_name(s),
                "duration": float(s.get("duration") or 0.0),
                "status": s.get("status"),
            }
            for s in clips
        },
        "decisions": decisions.as_dict() if decisions else None,
    }


def _pictures(
    out: Path, s: dict[str, Any], frame: tuple[int, int], url: UrlFor, inline: bool
) -> dict[str, str]:
    """``poster`` and ``sheet`` URLs of one clip (empty when they cannot be made)."""
    key = _thumb_key(out, s)
    duration = float(s.get("duration") or 0.0)
    try:
        th = thumbs(
            out / str(s["output"]),
            out / MEDIA,
            key,
            frame=frame,
            duration=duration,
            timeout=60 + 5 * duration,
            log_file=out / "logs" / f"{s['id']}.log",
        )
    except FFmpegError as exc:
        log.warning("review page: no pictures for %s: %s", s["id"], exc.args[0])
        return {}
    if inline:
        return {
            name: "data:image/jpeg;base64," + base64.b64encode(p.read_bytes()).decode("ascii")
            for name, p in (("poster", th.poster), ("sheet", th.sheet))
        }
    return {
        "poster": url(f"{MEDIA}/{th.poster.name}"),
        "sheet": url(f"{MEDIA}/{th.sheet.name}"),
    }


def _thumb_key(out: Path, s: dict[str, Any]) -> str:
    return thumb_key(out / str(s["output"]), str(s["id"]), s.get("render_key"))


def _withdrawn(s: dict[str, Any]) -> dict[str, Any]:
    """What the page may show of a submission whose contributor withdrew consent.

    No name, message, file name, warnings or clip: the id, the status and why.
    """
    keep = ("id", "status", "code", "reason", "consent", "duration", "submitted_at")
    return {k: s.get(k) for k in keep}


def _display_name(s: dict[str, Any]) -> str:
    if s.get("consent") is False:
        return f"Consent withdrawn ({s['id']})"
    if s.get("anonymize"):  # the page is published: an anonymous contributor stays unnamed
        return f"Anonymous ({s['id']})"
    name = s.get("name")
    return str(name) if name else f"No name given ({s.get('source') or s['id']})"


# --------------------------------------------------------------------- markup


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _lang_attr(lang: Any) -> str:
    return f' lang="{_e(lang)}"' if isinstance(lang, str) and _LANG.match(lang) else ""


def _toolbar(report: dict[str, Any], rendered: int, refused: int) -> str:
    made = _e(report.get("generated_at") or "")
    return f"""<a class="skip" href="#review">Skip to the clips</a>
<div class="toolbar"><div class="top">
  <h1>Clip review</h1>
  <label for="editor">Your name</label>
  <input id="editor" name="editor" autocomplete="name" placeholder="recorded with your decisions">
  <button type="button" id="export" class="primary">Export decisions.json <kbd>E</kbd></button>
  <button type="button" id="help-toggle" aria-controls="keys">Keys <kbd>?</kbd></button>
  <p id="status" role="status" aria-live="polite"></p>
</div></div>
<div class="top"><p class="muted">{rendered} rendered, {refused} rejected · report of {made} ·
page built {_e(datetime.now(UTC).isoformat(timespec="seconds"))}</p></div>"""


def _keys_help() -> str:
    keys = [
        ("<kbd>J</kbd> / <kbd>↓</kbd>", "next clip"),
        ("<kbd>K</kbd> / <kbd>↑</kbd>", "previous clip"),
        ("<kbd>A</kbd>", "approve the clip (adds it to the end of the running order)"),
        ("<kbd>R</kbd>", "reject the clip"),
        ("<kbd>U</kbd>", "clear the decision"),
        ("<kbd>[</kbd> or <kbd>Alt</kbd>+<kbd>↑</kbd>", "move the approved clip earlier"),
        ("<kbd>]</kbd> or <kbd>Alt</kbd>+<kbd>↓</kbd>", "move the approved clip later"),
        ("<kbd>P</kbd>", "play or pause the clip"),
        ("<kbd>E</kbd>", "export decisions.json"),
        ("<kbd>?</kbd>", "show or hide this list"),
        ("<kbd>Tab</kbd>", "reach every button; Enter or Space presses it"),
    ]
    rows = "".join(f"<dt>{k}</dt><dd>{d}</dd>" for k, d in keys)
    return f"""<details id="keys"><summary>Keyboard shortcuts</summary>
<p>Shortcuts act on the clip that has focus (click a card or move with J and K). They
are off while you type in a text field; in a video player the arrow keys seek.</p>
<dl>{rows}</dl>
<p>Decisions are kept in this browser until you export them. Then run
<code>reel review apply decisions.json --out OUTPUT_FOLDER</code>; the compilation
uses only approved clips, in this order.</p></details>"""


def _order_section() -> str:
    return """<section id="order" aria-labelledby="order-heading">
<h2 id="order-heading" tabindex="-1">Running order</h2>
<p id="order-summary" class="muted"></p>
<ol id="order-list"></ol></section>"""


def _section(sid: str, title: str, cards: list[str], empty: str) -> str:
    inner = (
        '<ul class="cards">' + "".join(f"<li>{c}</li>" for c in cards) + "</ul>"
        if cards
        else f'<p class="empty">{_e(empty)}</p>'
    )
    return (
        f'<section id="{sid}" aria-labelledby="{sid}-h">'
        f'<h2 id="{sid}-h">{_e(title)}</h2>{inner}</section>'
    )


def _meta(s: dict[str, Any]) -> str:
    status = str(s.get("status") or "unknown")
    parts = [f'<span class="status status-{_e(status)}">{_e(status)}</span>']
    if s.get("language"):
        parts.append(f"language <span{_lang_attr(s['language'])}>{_e(s['language'])}</span>")
    if s.get("duration"):
        parts.append(f"{float(s['duration']):.1f} s")
    if s.get("consent") is not None:
        parts.append("consent given" if s.get("consent") else "no consent")
    if s.get("anonymize"):
        parts.append("asked to be anonymized")
    if not s.get("anonymize"):  # an upload's file name may be the contributor's name
        parts.append(f"<code>{_e(s.get('source') or '')}</code>")
    return '<p class="meta">' + " · ".join(parts) + "</p>"


def _text_blocks(s: dict[str, Any]) -> str:
    out = []
    if s.get("message"):
        out.append(
            f'<blockquote class="message" dir="auto"{_lang_attr(s.get("language"))}>'
            f"{_e(s['message'])}</blockquote>"
        )
    if s.get("reason"):
        what = "Excluded" if s.get("status") == "excluded" else "Reason"
        out.append(
            f'<p class="reason reason-{_e(s.get("status"))}" dir="auto">'
            f"<strong>{what}:</strong> {_e(s['reason'])}</p>"
        )
    warnings = [_unnamed(w, s) for w in s.get("warnings") or [] if isinstance(w, str)]
    if warnings:
        out.append(
            '<ul class="warnings" aria-label="Warnings">'
            + "".join(f"<li>{_e(w)}</li>" for w in warnings)
            + "</ul>"
        )
    return "".join(out)


def _unnamed(text: str, s: dict[str, Any]) -> str:
    """``text`` without the upload names of an anonymous contributor (names can identify)."""
    if not s.get("anonymize"):
        return text
    copies = s.get("copies")
    copies = copies if isinstance(copies, list) else []
    keys = {s.get("source"), *(c.get("source") for c in copies if isinstance(c, dict))}
    for key in sorted((k for k in keys if isinstance(k, str) and k), key=len, reverse=True):
        text = text.replace(key, "an upload")
    return text


def _flags(s: dict[str, Any], names: dict[str, str]) -> str:
    flags = s.get("flags")
    if not isinstance(flags, dict) or not flags:
        return '<p class="muted">Quality flags not measured.</p>'
    chips, rows = [], []
    for name, rule in RULES.items():
        f = flags.get(name)
        if not isinstance(f, dict):
            continue
        value, limit = _amount(f.get("value"), rule.unit), _amount(f.get("threshold"), rule.unit)
        when = f"{'below' if rule.below else 'at or above'} {limit}"
        if f.get("raised"):
            text = f"{_e(rule.label)}: {_e(value)} {_e(rule.measure)}"
            if name == "duplicate" and isinstance(f.get("of"), list) and f["of"]:
                links = ", ".join(
                    f'<a href="#c-{_e(i)}" dir="auto">{_e(names.get(str(i), i))}</a>'
                    for i in f["of"][:DUPLICATES_SHOWN]
                )
                if len(f["of"]) > DUPLICATES_SHOWN:
                    links += f" and {len(f['of']) - DUPLICATES_SHOWN} more"
                text = f"{_e(rule.label)} of {links} ({_e(value)} {_e(rule.measure)})"
            chips.append(
                f'<li class="flag" data-flag="{_e(name)}" title="flagged {_e(when)}">{text}</li>'
            )
        rows.append(
            f"<tr><th scope=row>{_e(rule.label)}</th>"
            f"<td class=num>{_e(value)} {_e(rule.measure)}</td>"
            f"<td>{'<strong>raised</strong>' if f.get('raised') else 'ok'}</td>"
            f"<td class=num>{_e(when)}</td></tr>"
        )
    chips_html = "".join(chips) or '<li class="flag flag-none">No quality flags</li>'
    return (
        f'<ul class="flags" aria-label="Quality flags">{chips_html}</ul>'
        '<details class="measures"><summary>Measurements</summary><table>'
        "<thead><tr><th>Check</th><th>Measured</th><th>Flag</th><th>Flagged when</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table></details>"
    )


def _amount(v: Any, unit: str) -> str:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return "–"
    if unit == "%":
        return f"{v * 100:.0f}%"
    if unit == "s":
        return f"{v:.1f} s"
    return f"{v:.3g}" if abs(v) < 10 else f"{v:.0f}"


def _card(s: dict[str, Any], pics: dict[str, str], url: UrlFor, names: dict[str, str]) -> str:
    sid = _e(s["id"])
    name = _e(_display_name(s))
    poster = f' poster="{_e(pics["poster"])}"' if pics.get("poster") else ""
    sheet = (
        f'<img class="sheet" src="{_e(pics["sheet"])}" width="960" height="270" '
        f'alt="Contact sheet of {name}: {SHEET_FRAMES} frames spread over the clip">'
        if pics.get("sheet")
        else '<p class="muted">No contact sheet.</p>'
    )
    return f"""<article class="card" id="c-{sid}" data-id="{sid}" tabindex="-1"
 aria-labelledby="t-{sid}">
<h3 id="t-{sid}" dir="auto">{name}</h3>
{_meta(s)}
<p class="decision-state">Not decided</p>
<video controls preload="metadata" playsinline src="{_e(url(str(s["output"])))}"{poster}
 aria-label="Clip: {name}"></video>
{sheet}
{review_faces.anonymization_block(s)}
{_flags(s, names)}
{_text_blocks(s)}
<div class="actions" role="group" aria-label="Decision for {name}">
<button type="button" class="approve" data-act="approve" aria-pressed="false">
Approve <kbd>A</kbd></button>
<button type="button" class="reject" data-act="reject" aria-pressed="false">
Reject <kbd>R</kbd></button>
<button type="button" data-act="earlier" disabled>Earlier <kbd>[</kbd></button>
<button type="button" data-act="later" disabled>Later <kbd>]</kbd></button>
</div></article>"""


def _rejected_card(s: dict[str, Any]) -> str:
    sid = _e(s["id"])
    return f"""<article class="card rejected" id="r-{sid}" tabindex="-1" aria-labelledby="rt-{sid}">
<h3 id="rt-{sid}" dir="auto">{_e(_display_name(s))}</h3>
{_meta(s)}
<p class="meta">code <code>{_e(s.get("code") or "")}</code></p>
{_text_blocks(s)}
</article>"""


def _origins(urls: list[str]) -> str:
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


def _document(body: str, data: dict[str, Any], media: list[str], images: list[str]) -> str:
    css = resources.files("processing").joinpath("review.css").read_text("utf-8")
    js = resources.files("processing").joinpath("review.js").read_text("utf-8")
    csp = (
        f"default-src 'none'; img-src data: {_origins(images) if images else ''}; "
        f"media-src {_origins(media)}; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
        "base-uri 'none'; form-action 'none'"
    )
    # JSON inside <script> must not be able to close the element or open a comment.
    blob = (
        json.dumps(data, ensure_ascii=False)
        .replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
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
<script type="application/json" id="review-data">{blob}</script>
<script>
{js}</script>
</body>
</html>
"""
