"""The review page's compilation section: a preview only while the compilation is fresh.

The manifest in force (:mod:`processing.compilation_set`) is compared with the
report and the decisions (:func:`processing.freshness.assess`): a compilation
older than the consents and decisions it depends on gets no player, no
chapters and no link, only the reasons and what to run.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .compilation_set import MANIFEST, read_manifest
from .freshness import assess
from .report import Report

log = logging.getLogger(__name__)

UrlFor = Callable[[str], str]


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def read_for_page(out: Path, report: Report) -> dict[str, Any] | None:
    """The compilation's manifest, reduced to what the page shows; None if absent or unusable.

    ``stale`` lists why it no longer matches the report and the decisions
    (:func:`processing.freshness.assess`); such a compilation is not previewed.
    """
    path = out / MANIFEST
    if not path.is_file():
        return None
    raw = read_manifest(out)
    if raw is None:
        log.warning("review page: ignoring %s: unreadable or without an output", path)
        return None
    segments = []
    for seg in raw.get("segments") or []:
        if not isinstance(seg, dict):
            continue
        try:
            start = float(seg.get("start", 0.0))
            duration = float(seg.get("duration") or 0.0)
        except (TypeError, ValueError):
            continue
        segments.append(
            {
                "kind": str(seg.get("kind") or "clip"),
                "id": seg.get("id"),
                "label": str(seg.get("label") or seg.get("id") or seg.get("kind") or ""),
                "start": start,
                "duration": duration,
            }
        )
    left_out = _once_each([x for x in raw.get("left_out") or [] if isinstance(x, dict)])
    stale = assess(raw, report, out)
    return {
        "output": raw["output"],
        "segments": segments,
        "left_out": left_out,
        "built_at": raw.get("built_at"),
        "stale": stale.harmful + stale.outdated,
        "renditions": _renditions(out, raw),
        "post": _post_beside(out, str(raw["output"])),
    }


def _renditions(out: Path, raw: dict[str, Any]) -> list[dict[str, Any]]:
    """The social renditions the manifest lists, each with its post text read for the page."""
    found: list[dict[str, Any]] = []
    for r in raw.get("renditions") or []:
        if not isinstance(r, dict):
            continue
        if r.get("skipped"):
            found.append({"aspect": str(r.get("aspect")), "skipped": str(r["skipped"])})
        elif isinstance(r.get("output"), str):
            post = r.get("post") if isinstance(r.get("post"), str) else None
            found.append(
                {
                    "aspect": str(r.get("aspect")),
                    "part": r.get("part"),
                    "parts": r.get("parts"),
                    "output": r["output"],
                    "post": _read_text(out / post) if post else None,
                }
            )
    return found


def _post_beside(out: Path, output: str) -> str | None:
    return _read_text((out / output).parent / "post.txt")


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _once_each(left: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per clip left out (an excluded clip the editors approved is listed
    twice in the manifest: excluded, and approved but not accepted); reasons joined."""
    by_id: dict[str, dict[str, Any]] = {}
    for x in left:
        key = str(x.get("id"))
        if key in by_id:
            reasons = [by_id[key].get("reason"), x.get("reason")]
            by_id[key] = {**by_id[key], "reason": "; ".join(str(r) for r in reasons if r)}
        else:
            by_id[key] = dict(x)
    return list(by_id.values())


def _clock(seconds: float) -> str:
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"


def section(
    manifest: dict[str, Any] | None,
    url: UrlFor,
    names: dict[str, str],
    *,
    in_app: bool = False,
) -> str:
    """The compilation section; ``in_app`` for the review app's wording (Send the cut)."""
    if manifest is None:
        todo = (
            "press <strong>Send the cut</strong> when the running order is ready"
            if in_app
            else "run <code>reel compile --out OUTPUT_FOLDER</code>, "
            "then build this page again (<code>reel review build</code>)"
        )
        return f"""<section id="compilation" aria-labelledby="comp-h">
<h2 id="comp-h">Compilation</h2>
<p class="empty">No compilation yet: {todo}.</p></section>"""
    if manifest["stale"]:
        return _stale_compilation(manifest, in_app)
    chapters = "".join(
        f'<li><button type="button" data-seek="{seg["start"]:.3f}">'
        f'<span class="t">{_clock(seg["start"])}</span> <span dir="auto">{_e(seg["label"])}</span>'
        f"</button></li>"
        for seg in manifest["segments"]
    )
    left = manifest["left_out"]
    left_html = ""
    if left:
        items = "".join(
            f'<li><span dir="auto">{_e(names.get(str(x.get("id")), x.get("id") or "?"))}</span>'
            f": {_e(x.get('reason') or '')}</li>"
            for x in left
        )
        left_html = (
            f"<details><summary>{len(left)} left out of the compilation</summary>"
            f"<ul>{items}</ul></details>"
        )
    built = f" · built {_e(manifest['built_at'])}" if manifest.get("built_at") else ""
    chapters = chapters or '<li class="empty">No chapters</li>'
    src = _e(url(manifest["output"]))
    return f"""<section id="compilation" aria-labelledby="comp-h">
<h2 id="comp-h">Compilation preview</h2>
<p class="muted"><code>{_e(manifest["output"])}</code>{built}</p>
<div class="preview">
  <video id="compilation-video" controls preload="metadata" playsinline src="{src}"
   aria-label="Compilation preview"></video>
  <nav aria-label="Chapters"><h3>Chapters</h3><ol class="chapters">{chapters}</ol></nav>
</div>{_post_html(manifest.get("post"), "Post text (YouTube)")}{left_html}
{renditions_html(manifest.get("renditions") or [], url)}</section>"""


def _post_html(text: str | None, title: str) -> str:
    if text is None:
        return ""
    return (
        f'<details class="post"><summary>{_e(title)}</summary>'
        f'<pre dir="auto">{_e(text)}</pre></details>'
    )


def renditions_html(renditions: list[dict[str, Any]], url: UrlFor) -> str:
    """Players for the vertical and square cuts (each part), with the text to post under each."""
    if not renditions:
        return ""
    items = []
    for r in renditions:
        name = f"{r['aspect']}" + (
            f" part {r['part']}/{r['parts']}" if (r.get("parts") or 1) > 1 else ""
        )
        if r.get("skipped"):
            items.append(f"<li><strong>{_e(name)}</strong>: not made: {_e(r['skipped'])}</li>")
            continue
        items.append(
            f'<li class="rendition"><h4>{_e(name)}</h4>'
            f'<video controls preload="none" playsinline src="{_e(url(r["output"]))}"'
            f' aria-label="{_e(name)} rendition"></video>'
            f'<p><a href="{_e(url(r["output"]))}" download>{_e(r["output"].rsplit("/", 1)[-1])}</a>'
            # The post text inline, to copy (the review app serves only the videos).
            f"</p>{_post_html(r.get('post'), 'Post text')}</li>"
        )
    return (
        '<h3 id="renditions-h">Social renditions</h3>'
        f'<ul class="renditions" aria-labelledby="renditions-h">{"".join(items)}</ul>'
    )


def _stale_compilation(manifest: dict[str, Any], in_app: bool) -> str:
    """No player, no chapters, no link: only why the compilation must be built again."""
    todo = (
        "Press <strong>Send the cut</strong>"
        if in_app
        else "Run\n<code>reel compile --out OUTPUT_FOLDER</code>"
    )
    reasons = "".join(f"<li>{_e(r)}</li>" for r in manifest["stale"])
    return f"""<section id="compilation" aria-labelledby="comp-h">
<h2 id="comp-h">Compilation</h2>
<p class="stale"><strong>The compilation in <code>{_e(manifest["output"])}</code> is older than
the consents and decisions it depends on, so it is not previewed here.</strong>
{todo} to build it again.</p>
<ul class="stale-reasons">{reasons}</ul></section>"""
