"""The review page's cards: one per rendered clip (player, pictures, flags, text, buttons)
and one per submission the pipeline rejected or whose consent was withdrawn.

Contributor text is escaped here and nowhere else; a hashtag inside it is isolated
(``<bdi>``) so right-to-left text around it cannot move its ``#``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

from . import review_faces
from .quality import RULES
from .report import Entry
from .review_changes import approval_refusal
from .sheets import SHEET_FRAMES

UrlFor = Callable[[str], str]

#: Clips named on a duplicate flag; the rest are counted.
DUPLICATES_SHOWN = 4

_HASHTAG = re.compile(r"(#\w+)")
_LANG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")


def display_name(s: Entry) -> str:
    if s.consent is False:
        return f"Consent withdrawn ({s.id})"
    if s.anonymize:  # the page is published: an anonymous contributor stays unnamed
        return f"Anonymous ({s.id})"
    return s.name if s.name else f"No name given ({s.source or s.id})"


def e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _lang_attr(lang: Any) -> str:
    return f' lang="{e(lang)}"' if isinstance(lang, str) and _LANG.match(lang) else ""


def _meta(s: Entry) -> str:
    status = s.status or "unknown"
    parts = [
        f'<span class="status status-{e(status)}" data-status="{e(status)}">{e(status)}</span>'
    ]
    if s.language:
        parts.append(f"language <span{_lang_attr(s.language)}>{e(s.language)}</span>")
    if s.duration:
        parts.append(f"{float(s.duration):.1f} s")
    if s.consent is not None:
        parts.append("consent given" if s.consent else "no consent")
    if s.anonymize:
        parts.append("asked to be anonymized")
    if not s.anonymize:  # an upload's file name may be the contributor's name
        parts.append(f"<code>{e(s.source or '')}</code>")
    return '<p class="meta">' + " · ".join(parts) + "</p>"


def _text_blocks(s: Entry) -> str:
    out = []
    if s.message:
        out.append(
            f'<blockquote class="message" dir="auto"{_lang_attr(s.language)}>'
            f"{_isolate_hashtags(s.message)}</blockquote>"
        )
    if s.reason:
        what = "Excluded" if s.status == "excluded" else "Reason"
        out.append(
            f'<p class="reason reason-{e(s.status)}" dir="auto">'
            f"<strong>{what}:</strong> {e(s.reason)}</p>"
        )
    warnings = [_unnamed(w, s) for w in s.warnings]
    if warnings:
        out.append(
            '<ul class="warnings" aria-label="Warnings">'
            + "".join(f"<li>{e(w)}</li>" for w in warnings)
            + "</ul>"
        )
    return "".join(out)


def _isolate_hashtags(text: str) -> str:
    """``text`` escaped, each hashtag in its own ``<bdi>``: right-to-left text around
    ``#100forJustice`` must not carry the ``#`` to its far end."""
    parts = _HASHTAG.split(text)
    return "".join(f"<bdi>{e(p)}</bdi>" if i % 2 else e(p) for i, p in enumerate(parts))


def _unnamed(text: str, s: Entry) -> str:
    """``text`` without the upload names of an anonymous contributor (names can identify)."""
    if not s.anonymize:
        return text
    keys = {s.source, *(c.get("source") for c in s.copies)}
    for key in sorted((k for k in keys if isinstance(k, str) and k), key=len, reverse=True):
        text = text.replace(key, "an upload")
    return text


def _flags(s: Entry, names: dict[str, str]) -> str:
    flags = s.flags
    if not flags:
        return '<p class="muted">Quality flags not measured.</p>'
    chips, rows = [], []
    for name, rule in RULES.items():
        f = flags.get(name)
        if not isinstance(f, dict):
            continue
        value, limit = _amount(f.get("value"), rule.unit), _amount(f.get("threshold"), rule.unit)
        when = f"{'below' if rule.below else 'at or above'} {limit}"
        if f.get("raised"):
            text = f"{e(rule.label)}: {e(value)} {e(rule.measure)}"
            if name == "duplicate" and isinstance(f.get("of"), list) and f["of"]:
                links = ", ".join(
                    f'<a href="#c-{e(i)}" dir="auto">{e(names.get(str(i), i))}</a>'
                    for i in f["of"][:DUPLICATES_SHOWN]
                )
                if len(f["of"]) > DUPLICATES_SHOWN:
                    links += f" and {len(f['of']) - DUPLICATES_SHOWN} more"
                text = f"{e(rule.label)} of {links} ({e(value)} {e(rule.measure)})"
            chips.append(
                f'<li class="flag" data-flag="{e(name)}" title="flagged {e(when)}">{text}</li>'
            )
        rows.append(
            f"<tr><th scope=row>{e(rule.label)}</th>"
            f"<td class=num>{e(value)} {e(rule.measure)}</td>"
            f"<td>{'<strong>raised</strong>' if f.get('raised') else 'ok'}</td>"
            f"<td class=num>{e(when)}</td></tr>"
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


def card(s: Entry, pics: dict[str, str], url: UrlFor, names: dict[str, str]) -> str:
    sid = e(s.id)
    name = e(display_name(s))
    poster = f' poster="{e(pics["poster"])}"' if pics.get("poster") else ""
    sheet = (
        f'<img class="sheet" src="{e(pics["sheet"])}" width="960" height="270" '
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
<video controls preload="metadata" playsinline src="{e(url(str(s.output)))}"{poster}
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


def _refusal_note(s: Entry) -> str:
    refusal = approval_refusal(s)
    if not refusal:
        return ""
    return f'<p class="refusal" dir="auto"><strong>Cannot be approved:</strong> {e(refusal)}</p>'


def rejected_card(s: Entry) -> str:
    sid = e(s.id)
    return f"""<article class="card rejected" id="r-{sid}" tabindex="-1" aria-labelledby="rt-{sid}">
<h3 id="rt-{sid}" dir="auto">{e(display_name(s))}</h3>
{_meta(s)}
<p class="meta">code <code>{e(s.code or "")}</code></p>
{_text_blocks(s)}
</article>"""
