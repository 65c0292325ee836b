"""The review page's anonymization block: which kind of blur a clip got, and what the check found.

An anonymized clip is hidden in one of two ways, and editors must be able to
tell them apart: its faces are blurred (with the whole picture blurred only
for the spans where detection was in doubt), or no face was found anywhere and
the whole clip is blurred (safe, but the picture says little). The block also
shows what the check after the encode looked at and found (issue 13).

Every number is the report's (``report.json`` entry ``anonymization``), in an
element with a ``data-key`` naming the report field, so a test can read it back.
Nothing here names the contributor or the upload: the block shows counts and
times only.
"""

from __future__ import annotations

import html
from typing import Any

from .report import Entry

__all__ = ["anonymization_block", "kind"]


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(info: dict[str, Any], key: str) -> str:
    """A field shown as it is in the report, marked with its name; a dash when missing."""
    v = info.get(key)
    shown = v if isinstance(v, int | float) and not isinstance(v, bool) else "–"
    return f'<span class="num" data-key="{_e(key)}">{_e(shown)}</span>'


def kind(info: dict[str, Any]) -> str:
    """``"whole-clip"``, ``"faces-and-spans"`` or ``"faces"``: which blur the clip got."""
    if info.get("whole_frame_blurred"):
        return "whole-clip"
    return "faces-and-spans" if info.get("uncertain_spans") else "faces"


_KIND_TEXT = {
    "whole-clip": "Whole clip blurred: no face was found anywhere in it",
    "faces-and-spans": "Faces blurred; the whole picture too where detection was in doubt",
    "faces": "Faces blurred",
}


def _spans(info: dict[str, Any]) -> str:
    spans = [s for s in info.get("uncertain_spans") or [] if isinstance(s, list) and len(s) == 3]
    if not spans:
        return "<dd>none</dd>"
    items = "".join(
        f'<li><span data-key="span_from">{_e(a)}</span>–<span data-key="span_to">{_e(b)}</span>'
        f' s (<span data-key="span_why">{_e(why)}</span>)</li>'
        for a, b, why in spans
    )
    return f'<dd><ul class="spans">{items}</ul></dd>'


def _by_detector(info: dict[str, Any]) -> str:
    by = info.get("faces_by_detector")
    if not isinstance(by, dict) or not by:
        return ""
    return " (" + ", ".join(f"{_e(k)}: {_e(v)}" for k, v in sorted(by.items())) + ")"


def anonymization_block(s: Entry) -> str:
    """The block for submission ``s`` (a report entry); empty when it was not anonymized."""
    info = s.anonymization
    if not s.anonymize or info is None:
        return ""
    k = kind(info)
    share = info.get("hidden_share")
    share_text = f"{share * 100:.0f}%" if isinstance(share, int | float) else "–"
    voice = "disguised" if info.get("voice_disguised") else "not disguised"
    return f"""<section class="anonymization anon-{k}" data-kind="{k}" aria-label="Anonymization">
<p class="anon-kind"><strong>{_KIND_TEXT[k]}</strong></p>
<dl>
<dt>Detection</dt><dd>a face found on {_num(info, "looks_with_faces")} of
{_num(info, "looks")} frames looked at; {_num(info, "scene_cuts")} scene cuts</dd>
<dt>Picture blurred</dt>
<dd><span data-key="hidden_share" data-value="{_e(share)}">{share_text}</span> on average</dd>
<dt>Whole picture blurred for</dt>{_spans(info)}
<dt>Check after the encode</dt><dd>{_num(info, "faces_found")} faces found on
{_num(info, "frames_checked")} frames checked{_by_detector(info)}</dd>
<dt>Voice</dt><dd>{voice}</dd>
</dl></section>"""
