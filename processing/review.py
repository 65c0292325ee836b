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
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from . import review_compilation
from .decisions import Decisions, DecisionsError, apply_decisions, load_decisions
from .errors import FFmpegError
from .fsutil import atomic_output
from .report import Entry, Report, read_report
from .review_cards import card, display_name, rejected_card
from .review_cards import e as _e
from .review_changes import approval_refusal
from .review_shell import AppShell, Shell, StaticShell
from .sheets import Thumbs, prune_pictures, thumb_key, thumbs

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
    report = read_report(out)  # a StateError (a ReelError) says what to run
    subs = list(report.entries)

    withdrawn = [_withdrawn(s) for s in subs if s.consent is False]
    subs = [s for s in subs if s.consent is not False]
    rendered = [s for s in subs if s.output and (out / s.output).is_file()]
    refused = [s for s in subs if s not in rendered]
    pictures = {s.id: _pictures(out, s, report.frame, url, inline_images) for s in rendered}
    prune_pictures(out / MEDIA, {_thumb_key(out, s) for s in rendered})
    decisions = _decisions_or_none(out)

    media_urls = [url(str(s.output)) for s in rendered]
    manifest = review_compilation.read_for_page(out, report)
    if manifest is not None and not manifest["stale"]:
        media_urls.append(url(manifest["output"]))
    image_urls = [u for p in pictures.values() for u in p.values() if not u.startswith("data:")]

    names = {s.id: display_name(s) for s in rendered + withdrawn}
    data = _script_data(report, out, rendered + withdrawn, decisions)
    body = "\n".join(
        [
            frame_shell.toolbar(report, len(rendered), len(refused)),
            '<main id="main">',
            frame_shell.keys_help(),
            review_compilation.section(
                manifest, url, names, in_app=isinstance(frame_shell, AppShell)
            ),
            _order_section(),
            *_clip_sections(rendered, refused, withdrawn, pictures, url, names),
            "</main>",
        ]
    )
    return frame_shell.document(body, data, media_urls, image_urls)


def _decisions_or_none(out: Path) -> Decisions | None:
    """The editors' decisions in ``out``; unreadable ones are logged and left out of the page."""
    try:
        return load_decisions(out)
    except DecisionsError as exc:
        log.warning("review page: ignoring decisions: %s", exc)
        return None


def _clip_sections(
    rendered: list[Entry],
    refused: list[Entry],
    withdrawn: list[Entry],
    pictures: dict[str, dict[str, str]],
    url: UrlFor,
    names: dict[str, str],
) -> list[str]:
    """The rendered, rejected and consent-withdrawn sections of the page."""
    return [
        _section(
            "review",
            f"Rendered clips ({len(rendered)})",
            [card(s, pictures[s.id], url, names) for s in rendered],
            "No rendered clips yet.",
        ),
        _section(
            "rejected",
            f"Rejected by the pipeline ({len(refused)})",
            [rejected_card(s) for s in refused],
            "No submission was rejected.",
        ),
        _section(
            "withdrawn",
            f"Consent withdrawn ({len(withdrawn)})",
            [rejected_card(s) for s in withdrawn],
            "No contributor withdrew consent.",
        ),
    ]


# --------------------------------------------------------------------- data


def _script_data(
    report: Report, out: Path, clips: list[Entry], decisions: Decisions | None
) -> dict[str, Any]:
    """What the page's script starts from (withdrawn clips too, so their decisions are kept)."""
    return {
        "batch": report.source + "|" + str(out.name),
        "clips": {
            s.id: {
                "name": display_name(s),
                "duration": float(s.duration or 0.0),
                "status": s.status,
                "refusal": approval_refusal(s),
            }
            for s in clips
        },
        "decisions": decisions.as_dict() if decisions else None,
    }


def clip_pictures(
    out: Path, s: Entry, frame: tuple[int, int], keyframe_seconds: float | None = None
) -> Thumbs:
    """Make (or find) the poster and contact sheet the page shows for the rendered clip ``s``.

    The clip's task calls it once the clip is done (outside the encode slot,
    while other clips encode), so the page built after the batch finds them made.
    ``keyframe_seconds`` (``output.keyframe_seconds``, for the clip it just
    encoded) lets a long enough clip's pictures be its keyframes, decoded alone.

    Raises:
        FFmpegError: The clip could not be decoded.
    """
    duration = float(s.duration or 0.0)
    return thumbs(
        out / str(s.output),
        out / MEDIA,
        _thumb_key(out, s),
        frame=frame,
        duration=duration,
        keyframe_seconds=keyframe_seconds,
        timeout=60 + 5 * duration,
        log_file=out / "logs" / f"{s.id}.log",
    )


def _pictures(
    out: Path, s: Entry, frame: tuple[int, int], url: UrlFor, inline: bool
) -> dict[str, str]:
    """``poster`` and ``sheet`` URLs of one clip (empty when they cannot be made)."""
    try:
        th = clip_pictures(out, s, frame)
    except FFmpegError as exc:
        log.warning("review page: no pictures for %s: %s", s.id, exc.args[0])
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


def _thumb_key(out: Path, s: Entry) -> str:
    return thumb_key(out / str(s.output), s.id, s.render_key)


def _withdrawn(s: Entry) -> Entry:
    """What the page may show of a submission whose contributor withdrew consent.

    No name, message, file name, warnings or clip: the id, the status and why.
    """
    return Entry(
        id=s.id,
        source="",
        status=s.status,
        code=s.code,
        reason=s.reason,
        consent=s.consent,
        duration=s.duration,
        submitted_at=s.submitted_at,
    )


# --------------------------------------------------------------------- markup


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
