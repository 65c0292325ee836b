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
``reel review apply`` records (:mod:`processing.decisions`). The same cards in
the review app's shell (:class:`~processing.review_shell.AppShell`, served by
``reel review serve``) save every change on the server instead.
"""

from __future__ import annotations

import base64
import html
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from . import review_compilation, review_faces, state
from .decisions import Decisions, DecisionsError, apply_decisions, load_decisions
from .errors import FFmpegError
from .fsutil import atomic_output
from .quality import RULES
from .review_changes import approval_refusal
from .review_shell import AppShell, Shell, StaticShell
from .sheets import SHEET_FRAMES, prune_pictures, thumb_key, thumbs

__all__ = [
    "AppShell",
    "Decisions",
    "apply_decisions",
    "build_review",
    "load_decisions",
    "page_path",
    "render_review",
]

log = logging.getLogger(__name__)

UrlFor = Callable[[str], str]
"""Turns a key relative to the output folder (``clips/<id>.mp4``) into a URL the page can use."""

#: Where the page and its cached pictures live, relative to the output folder.
PAGE = "review/index.html"
MEDIA = "review/media"

#: Clips named on a duplicate flag; the rest are counted.
DUPLICATES_SHOWN = 4

_HASHTAG = re.compile(r"(#\w+)")
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
    """Write ``out/review/index.html`` (the offline page) from ``out/report.json``; return its path.

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
    page = render_review(out, url_for=url_for, inline_images=inline_images)
    dst = page_path(out)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(dst) as part:
        part.write_text(page, "utf-8")
    return dst


def render_review(
    out: Path,
    *,
    url_for: UrlFor | None = None,
    inline_images: bool = True,
    shell: Shell | None = None,
) -> str:
    """The review page of ``out`` as HTML, in ``shell`` (the offline page's by default).

    Raises:
        ReelError: There is no readable ``report.json``.
    """
    url = url_for or relative_url
    frame_shell = shell or StaticShell()
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
            frame_shell.toolbar(report, len(rendered), len(refused)),
            '<main id="main">',
            frame_shell.keys_help(),
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
    return frame_shell.document(body, data, media_urls, image_urls)


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
                "refusal": approval_refusal(s),
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
    parts = [
        f'<span class="status status-{_e(status)}" data-status="{_e(status)}">{_e(status)}</span>'
    ]
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
            f"{_isolate_hashtags(str(s['message']))}</blockquote>"
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


def _isolate_hashtags(text: str) -> str:
    """``text`` escaped, each hashtag in its own ``<bdi>``: right-to-left text around
    ``#100forJustice`` must not carry the ``#`` to its far end."""
    parts = _HASHTAG.split(text)
    return "".join(f"<bdi>{_e(p)}</bdi>" if i % 2 else _e(p) for i, p in enumerate(parts))


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
{_refusal_note(s)}
<p class="save-error" role="alert" dir="auto"></p>
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


def _refusal_note(s: dict[str, Any]) -> str:
    refusal = approval_refusal(s)
    if not refusal:
        return ""
    return f'<p class="refusal" dir="auto"><strong>Cannot be approved:</strong> {_e(refusal)}</p>'


def _rejected_card(s: dict[str, Any]) -> str:
    sid = _e(s["id"])
    return f"""<article class="card rejected" id="r-{sid}" tabindex="-1" aria-labelledby="rt-{sid}">
<h3 id="rt-{sid}" dir="auto">{_e(_display_name(s))}</h3>
{_meta(s)}
<p class="meta">code <code>{_e(s.get("code") or "")}</code></p>
{_text_blocks(s)}
</article>"""
